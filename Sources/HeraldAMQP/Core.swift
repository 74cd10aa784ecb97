internal import CHeraldAMQP
import Foundation
import Glibc
import Logging
import HeraldSupport

/// The rabbitmq-c connection and everything that depends on it, confined to the
/// connection's own thread: rabbitmq-c is not thread-safe and services heartbeats only
/// inside its calls, so this thread alternates between the inbox and the socket and
/// never runs anything else.
final class Core {
    /// A channel's bookkeeping.
    /// A class, changed where the table holds it: as a struct, every read of one field
    /// through the table copied it whole, and every change went through an accessor that
    /// allocated its frame (several times per delivery).
    private final class ChannelState {
        var confirms = false
        /// The delivery tag the broker will give the next publish (after confirm.select).
        var nextTag: UInt64 = 1
        /// Publishes awaiting the broker's ack, by delivery tag.
        var unconfirmed: [UInt64: OneShot<Void>] = [:]
        var oldestUnconfirmed: UInt64 = 1
        /// Tags whose message came back as unroutable; their ack reports the failure.
        var returned: [UInt64: BrokerError] = [:]
        var consumers: [String: ConsumerState] = [:]
        /// Consumers we cancelled, by tag. A delivery to one that reaches us after its
        /// cancel-ok (a quorum queue's deliveries and the channel's replies travel apart, so
        /// nothing here counts on their order) is still this channel's to settle: it goes to
        /// the channel's next consumer of the same queue, with the old consumer's body limit.
        var retired: [String: Retired] = [:]
        /// Deliveries to retired consumers waiting for that next consumer; if none comes, the
        /// channel's close returns them to their queue.
        var orphans: [(queue: String, delivery: Delivery)] = []
        /// Deliveries not settled yet, so that acks leave together as few frames; held
        /// once the channel has a prefetch (`AckLedger.Holding`).
        var ledger = AckLedger()
        /// The channel's prefetch window (basic.qos); zero: unlimited.
        var prefetch = 0

        /// The live consumer of `queue` a delivery to a retired consumer goes to.
        func heir(of queue: String) -> ConsumerState? {
            consumers.values.first { $0.queue == queue }
        }
    }

    /// A consumer's stream and the largest body it takes in full.
    private struct ConsumerState {
        var stream: DeliveryStream
        var queue: String
        var maxBodyBytes: Int
        /// How long the connection may wait for company before reading (`ReadLinger`).
        var linger: Duration
        /// Our basic.cancel is sent; the stream ends at the broker's cancel-ok, and what is
        /// delivered before that still comes through it.
        var cancelling = false
    }

    private struct Retired {
        var queue: String
        var maxBodyBytes: Int
        /// When it was retired, so that only the latest are kept.
        var order: UInt64
    }

    /// Retired consumers remembered per channel.
    static let retiredKept = 16
    private var nextRetirement: UInt64 = 0

    /// How much of a body over a consumer's limit is kept, for the reader of a parked message.
    static let excerptBytes = 4096

    /// Header that tags a mandatory publish so that a basic.return can be matched to it.
    static let publishTagHeader = "herald-publish-tag"

    private let conn: amqp_connection_state_t
    private let inbox: Inbox
    private let lifecycle: Lifecycle
    private let logger: Logger
    private let heartbeat: Int
    private var channels: [UInt16: ChannelState] = [:]
    private var nextChannel: UInt16 = 1
    private var running = true
    /// The last `poll` found the inbox's pipe readable: the next drain empties it.
    private var woken = false
    /// Frames of other channels that arrived while a message's content was read; they are
    /// dispatched, in order, before anything else is read.
    private var deferred: [amqp_frame_t] = []
    /// Names that recur in every delivery's frames, read once (`RecurringStrings`).
    private var names = RecurringStrings()
    /// Data arrived and is left unread until then, for more to come with it (`ReadLinger`).
    private var lingerUntil: ContinuousClock.Instant?
    /// Data found with commands waiting was left for them once, and is judged now.
    private var judgedAfterCommands = false

    private init(conn: amqp_connection_state_t, inbox: Inbox, lifecycle: Lifecycle, logger: Logger, heartbeat: Int) {
        self.conn = conn
        self.inbox = inbox
        self.lifecycle = lifecycle
        self.logger = logger
        self.heartbeat = heartbeat
    }

    /// TCP connect and login, on the calling (owning) thread.
    static func open(_ url: BrokerURL, inbox: Inbox, lifecycle: Lifecycle, logger: Logger) throws(BrokerError) -> Core {
        guard let conn = amqp_new_connection() else {
            throw BrokerError(.connectionFailed, message: "out of memory")
        }
        guard let socket = amqp_tcp_socket_new(conn) else {
            amqp_destroy_connection(conn)
            throw BrokerError(.connectionFailed, message: "cannot create a socket")
        }
        var timeout = timeval(tv_sec: url.connectTimeout, tv_usec: 0)
        let status = amqp_socket_open_noblock(socket, url.host, Int32(url.port), &timeout)
        guard status == AMQP_STATUS_OK.rawValue else {
            amqp_destroy_connection(conn)
            throw BrokerError(.connectionFailed, message: "\(url.redacted): \(Self.statusText(status))")
        }
        _ = amqp_set_handshake_timeout(conn, &timeout)
        var rpcTimeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = amqp_set_rpc_timeout(conn, &rpcTimeout)
        let reply = herald_amqp_login_plain(
            conn, url.virtualHost, 0, 131_072, Int32(url.heartbeat), url.user, url.password)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            let message = Self.replyText(reply)
            amqp_destroy_connection(conn)
            throw BrokerError(.connectionFailed, message: "\(url.redacted): login failed: \(message)")
        }
        return Core(conn: conn, inbox: inbox, lifecycle: lifecycle, logger: logger, heartbeat: url.heartbeat)
    }

    /// The thread's loop: commands, then frames, until closed or broken.
    func run() {
        var failure: BrokerError?
        // Commands taken from the inbox but not handled when the connection failed: each is
        // failed at once with the rest, so no caller waits for an answer that cannot come.
        var untaken: ArraySlice<Command> = []
        var commands: [Command] = []
        loop: while running {
            // Runs of acks and publishes leave in as few TCP segments as fit: the socket is
            // corked around them, and uncorked before anything that waits for a reply. A
            // lone one leaves as one segment without it (rabbitmq-c sends a publish's
            // frames with `MSG_MORE` but the last), which saves two system calls a wake-up
            // when events come one at a time.
            var corked = false
            // Acks are gathered until the next other command or the end of the run and given
            // to their channel's ledger, which sends them or holds them for company
            // (`AckLedger`). Publishes may overtake held acks; a call that could close the
            // channel (an RPC, a consume, a nack, a reject, the close) sends them first.
            var acks: [UInt16: [(tag: UInt64, multiple: Bool)]] = [:]
            inbox.drain(emptyingPipe: woken, into: &commands)
            woken = false
            let corks = Self.oneWayCount(commands) > 1
            for (index, command) in commands.enumerated() {
                if case .ack(let id, let tag, let multiple) = command {
                    if corks && !corked {
                        cork(true)
                        corked = true
                    }
                    acks[id, default: []].append((tag, multiple))
                    continue
                }
                // The acks gathered so far go to their ledgers first; what they let go leaves
                // in the same corked run.
                if let error = sendAcks(&acks) {
                    failure = error
                    untaken = commands[index...]
                    break loop
                }
                let oneWay = corks && command.isOneWay
                if oneWay != corked {
                    cork(oneWay)
                    corked = oneWay
                }
                if let error = handle(command) {
                    failure = error
                    untaken = commands[(index + 1)...]
                    break loop
                }
                if !running {
                    untaken = commands[(index + 1)...]
                    break loop
                }
            }
            if let error = sendAcks(&acks) ?? sendDueAcks(corked: corked) {
                failure = error
                break loop
            }
            if corked {
                cork(false)
                corked = false
            }
            if let error = readFrames() {
                failure = error
                break
            }
        }
        finish(failure, untaken: untaken)
    }

    /// Gives the acks gathered per channel to its ledger, and sends what it lets go.
    private func sendAcks(_ acks: inout [UInt16: [(tag: UInt64, multiple: Bool)]]) -> BrokerError? {
        defer { acks.removeAll(keepingCapacity: true) }
        guard !acks.isEmpty else { return nil }
        let now = ContinuousClock.now
        for (id, tags) in acks {
            guard let frames = channels[id]?.ledger.ack(tags, at: now) else { continue }
            if let error = send(frames, channel: id) { return error }
        }
        return nil
    }

    /// Sends the held acks whose time has come, in one corked run if they are several.
    private func sendDueAcks(corked: Bool) -> BrokerError? {
        let holding = channels.filter { $0.value.ledger.deadline != nil }.keys
        guard !holding.isEmpty else { return nil }
        let now = ContinuousClock.now
        for id in holding {
            guard let frames = channels[id]?.ledger.due(at: now), !frames.isEmpty else { continue }
            let corks = !corked && frames.count > 1
            if corks { cork(true) }
            let error = send(frames, channel: id)
            if corks { cork(false) }
            if let error { return error }
        }
        return nil
    }

    /// Sends every ack `id`'s ledger holds: before a call that could close the channel (an
    /// RPC, a consume, its close) and before the connection's close.
    private func flushAcks(channel id: UInt16) -> BrokerError? {
        guard let frames = channels[id]?.ledger.flush(), !frames.isEmpty else { return nil }
        return send(frames, channel: id)
    }

    private func send(_ frames: [(tag: UInt64, multiple: Bool)], channel id: UInt16) -> BrokerError? {
        for frame in frames {
            if let error = sendStatus(amqp_basic_ack(conn, id, frame.tag, frame.multiple ? 1 : 0), operation: "basic.ack") {
                return error
            }
        }
        return nil
    }

    private static func oneWayCount(_ commands: [Command]) -> Int {
        var count = 0
        for command in commands where command.isOneWay { count += 1 }
        return count
    }

    private func cork(_ on: Bool) {
        var value: Int32 = on ? 1 : 0
        _ = setsockopt(amqp_get_sockfd(conn), Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    // MARK: Commands

    /// Handles one command; returns an error when the connection is gone.
    private func handle(_ command: Command) -> BrokerError? {
        switch command {
        case .openChannel(let continuation):
            let id = allocateChannel()
            guard amqp_channel_open(conn, id) != nil else {
                let error = rpcFailure(channel: id, operation: "channel.open")
                continuation.resume(throwing: error)
                return connectionError(error)
            }
            channels[id] = ChannelState()
            continuation.resume(returning: id)

        case .closeChannel(let id, let continuation):
            guard channels[id] != nil else {
                continuation.resume()
                return nil
            }
            if let error = flushAcks(channel: id) {
                continuation.resume(throwing: error)
                return error
            }
            let reply = amqp_channel_close(conn, id, AMQP_REPLY_SUCCESS)
            failChannel(id, BrokerError(.closed, message: "the channel was closed"))
            if reply.reply_type == AMQP_RESPONSE_NORMAL {
                continuation.resume()
            } else {
                let error = rpcFailure(reply, channel: id, operation: "channel.close")
                continuation.resume(throwing: error)
                return connectionError(error)
            }

        case .rpc(let id, let rpc, let continuation):
            guard channels[id] != nil else {
                continuation.resume(throwing: BrokerError(.channelClosed, message: "the channel is closed", operation: rpc.operation))
                return nil
            }
            if let error = flushAcks(channel: id) {
                continuation.resume(throwing: error)
                return error
            }
            switch perform(rpc, channel: id) {
            case .success(let info): continuation.resume(returning: info)
            case .failure(let error):
                continuation.resume(throwing: error)
                return connectionError(error)
            }

        case .publish(let id, let publish):
            return self.publish(publish, channel: id)

        case .consume(let id, let consume):
            guard channels[id] != nil else {
                consume.started.resume(throwing: BrokerError(.channelClosed, message: "the channel is closed", operation: "basic.consume"))
                return nil
            }
            if let error = flushAcks(channel: id) {
                consume.started.resume(throwing: error)
                consume.stream.finish(throwing: error)
                return error
            }
            let arena = Arena()
            let ok = amqp_basic_consume(
                conn, id, arena.bytes(consume.queue), arena.bytes(consume.consumerTag), 0, 0,
                consume.exclusive ? 1 : 0, arena.table(consume.arguments))
            guard let ok else {
                let error = rpcFailure(channel: id, operation: "basic.consume \(consume.queue)")
                consume.started.resume(throwing: error)
                consume.stream.finish(throwing: error)
                return connectionError(error)
            }
            let tag = FieldDecoder.string(ok.pointee.consumer_tag)
            channels[id]?.consumers[tag] = ConsumerState(
                stream: consume.stream, queue: consume.queue, maxBodyBytes: consume.maxBodyBytes, linger: consume.linger)
            consume.started.resume(returning: tag)
            if let orphans = channels[id]?.orphans, !orphans.isEmpty {
                let (heirs, others) = (orphans.filter { $0.queue == consume.queue }, orphans.filter { $0.queue != consume.queue })
                channels[id]?.orphans = others
                for orphan in heirs { consume.stream.yield(orphan.delivery) }
            }

        case .cancel(let id, let tag):
            guard let consumer = channels[id]?.consumers[tag], !consumer.cancelling else { return nil }
            let arena = Arena()
            if let error = sendStatus(herald_amqp_send_basic_cancel(conn, id, arena.bytes(tag)), operation: "basic.cancel") {
                channels[id]?.consumers.removeValue(forKey: tag)
                consumer.stream.finish(throwing: error)
                return error
            }
            channels[id]?.consumers[tag]?.cancelling = true

        case .ack(let id, let tag, let multiple):
            var acks = [id: [(tag: tag, multiple: multiple)]]
            return sendAcks(&acks)

        case .nack(let id, let tag, let multiple, let requeue):
            guard let first = channels[id]?.ledger.settle(tag, multiple: multiple) else { return nil }
            if let error = send(first, channel: id) { return error }
            return sendStatus(amqp_basic_nack(conn, id, tag, multiple ? 1 : 0, requeue ? 1 : 0), operation: "basic.nack")

        case .reject(let id, let tag, let requeue):
            guard let first = channels[id]?.ledger.settle(tag, multiple: false) else { return nil }
            if let error = send(first, channel: id) { return error }
            return sendStatus(amqp_basic_reject(conn, id, tag, requeue ? 1 : 0), operation: "basic.reject")

        case .close(let continuation):
            running = false
            for id in Array(channels.keys) {
                if let error = flushAcks(channel: id) {
                    logger.debug("held acks were not sent before connection.close", metadata: ["reason": "\(error.message)"])
                    break
                }
            }
            let reply = amqp_connection_close(conn, AMQP_REPLY_SUCCESS)
            if reply.reply_type != AMQP_RESPONSE_NORMAL {
                logger.debug("connection.close was not acknowledged", metadata: ["reason": "\(Self.replyText(reply))"])
            }
            lifecycle.onFinished { continuation.resume() }
        }
        return nil
    }

    private func perform(_ rpc: RPC, channel id: UInt16) -> Result<QueueInfo?, BrokerError> {
        let arena = Arena()
        var succeeded = true
        var info: QueueInfo?
        switch rpc {
        case .declareExchange(let name, let type, let durable, let autoDelete, let isInternal, let arguments):
            succeeded = amqp_exchange_declare(
                conn, id, arena.bytes(name), arena.bytes(type.rawValue), 0, durable ? 1 : 0, autoDelete ? 1 : 0,
                isInternal ? 1 : 0, arena.table(arguments)) != nil
        case .deleteExchange(let name):
            succeeded = amqp_exchange_delete(conn, id, arena.bytes(name), 0) != nil
        case .declareQueue(let name, let passive, let durable, let exclusive, let autoDelete, let arguments):
            if let ok = amqp_queue_declare(
                conn, id, arena.bytes(name), passive ? 1 : 0, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0,
                arena.table(arguments))
            {
                info = QueueInfo(
                    name: FieldDecoder.string(ok.pointee.queue), messageCount: ok.pointee.message_count,
                    consumerCount: ok.pointee.consumer_count)
            } else {
                succeeded = false
            }
        case .bindQueue(let queue, let exchange, let key, let arguments):
            succeeded = amqp_queue_bind(
                conn, id, arena.bytes(queue), arena.bytes(exchange), arena.bytes(key), arena.table(arguments)) != nil
        case .unbindQueue(let queue, let exchange, let key, let arguments):
            succeeded = amqp_queue_unbind(
                conn, id, arena.bytes(queue), arena.bytes(exchange), arena.bytes(key), arena.table(arguments)) != nil
        case .bindExchange(let destination, let source, let key):
            succeeded = amqp_exchange_bind(conn, id, arena.bytes(destination), arena.bytes(source), arena.bytes(key), amqp_empty_table) != nil
        case .unbindExchange(let destination, let source, let key):
            succeeded = amqp_exchange_unbind(conn, id, arena.bytes(destination), arena.bytes(source), arena.bytes(key), amqp_empty_table) != nil
        case .purgeQueue(let name):
            succeeded = amqp_queue_purge(conn, id, arena.bytes(name)) != nil
        case .deleteQueue(let name):
            succeeded = amqp_queue_delete(conn, id, arena.bytes(name), 0, 0) != nil
        case .qos(let prefetch):
            succeeded = amqp_basic_qos(conn, id, 0, prefetch, 0) != nil
            // Acks wait for company once there is a window to wait in (none: unlimited).
            if succeeded {
                channels[id]?.ledger.holding = prefetch > 0 ? .window(prefetch: Int(prefetch)) : .none
                channels[id]?.prefetch = Int(prefetch)
            }
        case .confirmSelect:
            succeeded = amqp_confirm_select(conn, id) != nil
            if succeeded { channels[id]?.confirms = true }
        }
        return succeeded ? .success(info) : .failure(rpcFailure(channel: id, operation: rpc.operation))
    }

    private func publish(_ publish: Publish, channel id: UInt16) -> BrokerError? {
        guard let state = channels[id] else {
            publish.reply.resume(throwing: BrokerError(.channelClosed, message: "the channel is closed", operation: "basic.publish"))
            return nil
        }
        let arena = Arena()
        let tag = state.nextTag
        let extra: FieldTable = publish.mandatory && state.confirms ? [Self.publishTagHeader: .int(Int64(tag))] : [:]
        var properties = FieldDecoder.properties(publish.message, extraHeaders: extra, arena: arena)
        // The body is read in place: the library writes it out before it returns.
        let status = publish.message.body.withUnsafeBytes { body in
            amqp_basic_publish(
                conn, id, arena.bytes(publish.exchange), arena.bytes(publish.routingKey), publish.mandatory ? 1 : 0, 0,
                &properties, amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            let error = BrokerError(.connectionLost, message: Self.statusText(status), operation: "basic.publish")
            publish.reply.resume(throwing: error)
            return error
        }
        if state.confirms {
            state.unconfirmed[tag] = publish.reply
            state.nextTag += 1
        } else {
            publish.reply.resume(returning: ())
        }
        return nil
    }

    private func sendStatus(_ status: Int32, operation: String) -> BrokerError? {
        guard status == AMQP_STATUS_OK.rawValue else {
            return BrokerError(.connectionLost, message: Self.statusText(status), operation: operation)
        }
        return nil
    }

    /// Remembers a cancelled consumer for the deliveries that may still come for it; the
    /// latest few per channel, since a channel may outlive many subscriptions.
    private func retire(_ tag: String, _ consumer: ConsumerState, channel id: UInt16) {
        guard channels[id] != nil else { return }
        channels[id]?.retired[tag] = Retired(queue: consumer.queue, maxBodyBytes: consumer.maxBodyBytes, order: nextRetirement)
        nextRetirement += 1
        if let retired = channels[id]?.retired, retired.count > Self.retiredKept,
            let oldest = retired.min(by: { $0.value.order < $1.value.order })?.key
        {
            channels[id]?.retired.removeValue(forKey: oldest)
        }
    }

    private func allocateChannel() -> UInt16 {
        while channels[nextChannel] != nil || nextChannel == 0 { nextChannel &+= 1 }
        defer { nextChannel &+= 1 }
        return nextChannel
    }

    // MARK: Frames

    /// Waits briefly for the socket or the inbox, then dispatches what arrived.
    private func readFrames() -> BrokerError? {
        while !deferred.isEmpty {
            if let error = dispatch(deferred.removeFirst()) { return error }
        }
        if amqp_frames_enqueued(conn) == 0 && amqp_data_in_buffer(conn) == 0 {
            // Wake at least twice per heartbeat interval so the library can send ours, and
            // when the first held acks are due.
            var timeout = heartbeat > 0 ? min(1000, heartbeat * 500) : 1000
            if let due = channels.values.compactMap(\.ledger.deadline).min() {
                timeout = min(timeout, Self.milliseconds(until: due))
            }
            if let until = lingerUntil {
                // Data is waiting: only the inbox is watched until the wait is over, and then
                // the socket is read whatever the inbox holds, so commands cannot put it off.
                if .now < until {
                    var fds = [pollfd(fd: inbox.wakeFD, events: Int16(POLLIN), revents: 0)]
                    _ = poll(&fds, 1, Int32(min(timeout, Self.milliseconds(until: until))))
                    woken = fds[0].revents != 0
                    if .now < until { return nil }
                }
            } else {
                var fds = [
                    pollfd(fd: amqp_get_sockfd(conn), events: Int16(POLLIN), revents: 0),
                    pollfd(fd: inbox.wakeFD, events: Int16(POLLIN), revents: 0),
                ]
                _ = poll(&fds, 2, Int32(timeout))
                woken = fds[1].revents != 0
                // A timeout still reads: rabbitmq-c sends heartbeats only inside its calls.
                if fds[0].revents == 0 && woken { return nil }
                if fds[0].revents != 0, let wait = ReadLinger.wait(consuming) {
                    // Commands first and judged once more after them: an ack among them may
                    // end the quiet. Once only, so a stream of commands cannot put it off.
                    if woken && !judgedAfterCommands {
                        judgedAfterCommands = true
                        return nil
                    }
                    judgedAfterCommands = false
                    lingerUntil = .now + wait
                    return nil
                }
            }
        }
        judgedAfterCommands = false
        lingerUntil = nil
        for _ in 0..<512 {
            if !deferred.isEmpty {
                if let error = dispatch(deferred.removeFirst()) { return error }
                continue
            }
            var frame = amqp_frame_t()
            var zero = timeval(tv_sec: 0, tv_usec: 0)
            let status = amqp_simple_wait_frame_noblock(conn, &frame, &zero)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            guard status == AMQP_STATUS_OK.rawValue else {
                return BrokerError(.connectionLost, message: Self.statusText(status))
            }
            if let error = dispatch(frame) { return error }
        }
        if deferred.isEmpty { amqp_maybe_release_buffers(conn) }
        return nil
    }

    /// The channels with consumers, as `ReadLinger` judges them.
    private var consuming: some Sequence<ReadLinger.Consuming> {
        channels.values.lazy.filter { !$0.consumers.isEmpty }.map { channel in
            ReadLinger.Consuming(
                linger: channel.consumers.values.lazy.map { $0.linger }.min() ?? .zero, prefetch: channel.prefetch,
                inProgress: channel.ledger.unsettledCount)
        }
    }

    /// Whole milliseconds from now until `instant`, rounded up: `poll` waits no less.
    private static func milliseconds(until instant: ContinuousClock.Instant) -> Int {
        max(0, Int(((instant - .now) / .milliseconds(1)).rounded(.up)))
    }

    private func dispatch(_ frame: amqp_frame_t) -> BrokerError? {
        guard frame.frame_type == AMQP_FRAME_METHOD else { return nil }
        let id = frame.channel
        let method = frame.payload.method
        switch method.id {
        case herald_method_basic_deliver:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let consumerTag = names.string(deliver.consumer_tag)
            let exchange = names.string(deliver.exchange)
            let routingKey = names.string(deliver.routing_key)
            // Looked up once: the content's frames are read without dispatching others.
            let consumer = channels[id]?.consumers[consumerTag]
            let retired = consumer == nil ? channels[id]?.retired[consumerTag] : nil
            let limit = consumer?.maxBodyBytes ?? retired?.maxBodyBytes ?? Int.max
            let content: (message: Message, bodySize: Int)
            switch readContent(channel: id, maxBodyBytes: limit, operation: "basic.deliver") {
            case .success(let read): content = read
            case .failure(let error): return error
            }
            let delivery = Delivery(
                message: content.message, deliveryTag: deliver.delivery_tag, redelivered: deliver.redelivered != 0,
                exchange: exchange, routingKey: routingKey, consumerTag: consumerTag, bodySize: content.bodySize)
            channels[id]?.ledger.deliver(deliver.delivery_tag)
            if let consumer {
                consumer.stream.yield(delivery)
            } else if let retired {
                if let heir = channels[id]?.heir(of: retired.queue) {
                    heir.stream.yield(delivery)
                } else {
                    channels[id]?.orphans.append((retired.queue, delivery))
                }
            } else {
                // No consumer of ours ever had this tag: back to its queue at once, not held.
                if let first = channels[id]?.ledger.settle(deliver.delivery_tag, multiple: false), let error = send(first, channel: id) {
                    return error
                }
                return sendStatus(amqp_basic_reject(conn, id, deliver.delivery_tag, 1), operation: "basic.reject")
            }

        case herald_method_basic_ack:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            settle(channel: id, tag: ack.delivery_tag, multiple: ack.multiple != 0, nack: false)

        case herald_method_basic_nack:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            settle(channel: id, tag: nack.delivery_tag, multiple: nack.multiple != 0, nack: true)

        case herald_method_basic_return:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let error = BrokerError(
                .returned, replyCode: returned.reply_code, message: FieldDecoder.string(returned.reply_text),
                operation: "basic.publish to \(FieldDecoder.string(returned.exchange)) with \(FieldDecoder.string(returned.routing_key))")
            // Only the headers are needed: the body is read frame by frame, an excerpt kept.
            let headers: FieldTable
            switch readContent(channel: id, maxBodyBytes: 0, operation: "basic.return") {
            case .success(let read): headers = read.message.headers
            case .failure(let error): return error
            }
            if let tag = headers[Self.publishTagHeader]?.int {
                channels[id]?.returned[UInt64(tag)] = error
            } else {
                logger.warning("a published message was returned", metadata: ["reason": "\(error.message)"])
            }

        case herald_method_basic_cancel_ok:
            let ok = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_ok_t.self).pointee
            let tag = FieldDecoder.string(ok.consumer_tag)
            if let consumer = channels[id]?.consumers.removeValue(forKey: tag) {
                retire(tag, consumer, channel: id)
                consumer.stream.finish()
            }

        case herald_method_basic_cancel:
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = FieldDecoder.string(cancel.consumer_tag)
            if let consumer = channels[id]?.consumers.removeValue(forKey: tag) {
                retire(tag, consumer, channel: id)
                if consumer.cancelling {
                    consumer.stream.finish()
                } else {
                    consumer.stream.finish(
                        throwing: BrokerError(.channelClosed, message: "the broker cancelled the consumer (queue deleted?)", operation: "basic.consume"))
                }
            }

        case herald_method_channel_close:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = BrokerError(
                .channelClosed, replyCode: close.reply_code, message: FieldDecoder.string(close.reply_text))
            _ = herald_amqp_send_channel_close_ok(conn, id)
            failChannel(id, error)

        case herald_method_connection_close:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            _ = herald_amqp_send_connection_close_ok(conn)
            return BrokerError(.connectionLost, replyCode: close.reply_code, message: FieldDecoder.string(close.reply_text))

        default:
            break
        }
        return nil
    }

    /// Reads the header and body frames of a message on channel `id`. A body over
    /// `maxBodyBytes` (its size is declared in the header frame) is never held whole:
    /// each frame is dropped once read, and the message keeps its first `excerptBytes`.
    /// The channel's frame memory is released after each frame of a large body, so it costs
    /// one frame of memory, not its size (`amqp_read_message` held it twice).
    private func readContent(channel id: UInt16, maxBodyBytes: Int, operation: String) -> Result<(message: Message, bodySize: Int), BrokerError> {
        var frame: amqp_frame_t
        switch nextFrame(on: id, operation: operation) {
        case .success(let next): frame = next
        case .failure(let error): return .failure(error)
        }
        guard frame.frame_type == AMQP_FRAME_HEADER else {
            return .failure(BrokerError(.connectionLost, message: "expected a content header frame, got frame type \(frame.frame_type)", operation: operation))
        }
        let bodySize = Int(clamping: frame.payload.properties.body_size)
        let properties = frame.payload.properties.decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee
        var message = FieldDecoder.message(properties, body: amqp_bytes_t(len: 0, bytes: nil), names: &names)
        let keep = bodySize <= maxBodyBytes ? bodySize : min(bodySize, Self.excerptBytes)
        var body = [UInt8]()
        body.reserveCapacity(keep)
        var received = 0
        // A body of more than one frame gives its frames' memory back as it goes; a small
        // one leaves that to the end of the read loop, as every other frame does.
        let releasing = bodySize > 65_536
        while received < bodySize {
            if releasing { releaseFrames(of: id) }
            switch nextFrame(on: id, operation: operation) {
            case .success(let next): frame = next
            case .failure(let error): return .failure(error)
            }
            guard frame.frame_type == AMQP_FRAME_BODY else {
                return .failure(BrokerError(.connectionLost, message: "expected a content body frame, got frame type \(frame.frame_type)", operation: operation))
            }
            let fragment = frame.payload.body_fragment
            if body.count < keep, let bytes = fragment.bytes {
                let take = min(keep - body.count, fragment.len)
                body.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: take))
            }
            received += fragment.len
        }
        if releasing { releaseFrames(of: id) }
        message.body = body
        return .success((message, bodySize))
    }

    /// The next frame on channel `id`: one put aside earlier, else from the socket, putting
    /// aside (in order) the frames of other channels that arrive first. The protocol lets
    /// a broker interleave channels between a message's frames.
    private func nextFrame(on id: UInt16, operation: String) -> Result<amqp_frame_t, BrokerError> {
        if let index = deferred.firstIndex(where: { $0.channel == id }) {
            return .success(deferred.remove(at: index))
        }
        while true {
            var frame = amqp_frame_t()
            // The rest of a message follows its first frame at once; the bound only keeps a
            // broker that stops mid-message from holding the thread for ever.
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            let status = amqp_simple_wait_frame_noblock(conn, &frame, &timeout)
            guard status == AMQP_STATUS_OK.rawValue else {
                return .failure(BrokerError(.connectionLost, message: Self.statusText(status), operation: operation))
            }
            if frame.channel == id { return .success(frame) }
            if frame.channel == 0 {
                // The connection's own frames are not put aside: rabbitmq-c recycles channel
                // 0's memory on every heartbeat. A connection.close ends the read at once.
                if frame.frame_type == AMQP_FRAME_METHOD, frame.payload.method.id == herald_method_connection_close {
                    let close = frame.payload.method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                    _ = herald_amqp_send_connection_close_ok(conn)
                    return .failure(
                        BrokerError(.connectionLost, replyCode: close.reply_code, message: FieldDecoder.string(close.reply_text), operation: operation))
                }
                continue
            }
            deferred.append(frame)
        }
    }

    /// Gives the memory of channel `id`'s frames back, unless frames put aside still use it.
    private func releaseFrames(of id: UInt16) {
        guard !deferred.contains(where: { $0.channel == id }) else { return }
        amqp_maybe_release_buffers_on_channel(conn, id)
    }

    /// Resolves publishes the broker acked or nacked.
    private func settle(channel id: UInt16, tag: UInt64, multiple: Bool, nack: Bool) {
        guard let state = channels[id] else { return }
        let tags: [UInt64] = multiple ? Array(state.oldestUnconfirmed...max(tag, state.oldestUnconfirmed)) : [tag]
        for settled in tags {
            guard let reply = state.unconfirmed.removeValue(forKey: settled) else { continue }
            if let returned = state.returned.removeValue(forKey: settled) {
                reply.resume(throwing: returned)
            } else if nack {
                reply.resume(throwing: BrokerError(.nacked, message: "the broker did not accept the message", operation: "basic.publish"))
            } else {
                reply.resume(returning: ())
            }
        }
        while state.oldestUnconfirmed < state.nextTag, state.unconfirmed[state.oldestUnconfirmed] == nil {
            state.oldestUnconfirmed += 1
        }
    }

    // MARK: Failures

    /// The error of a failed synchronous method; handles a channel or connection the broker closed.
    private func rpcFailure(_ reply: amqp_rpc_reply_t? = nil, channel id: UInt16, operation: String) -> BrokerError {
        let reply = reply ?? amqp_get_rpc_reply(conn)
        switch reply.reply_type {
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == herald_method_channel_close:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = BrokerError(
                .channelClosed, replyCode: close.reply_code, message: FieldDecoder.string(close.reply_text), operation: operation)
            _ = herald_amqp_send_channel_close_ok(conn, id)
            failChannel(id, error)
            return error
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == herald_method_connection_close:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            _ = herald_amqp_send_connection_close_ok(conn)
            return BrokerError(
                .connectionLost, replyCode: close.reply_code, message: FieldDecoder.string(close.reply_text), operation: operation)
        default:
            return BrokerError(.connectionLost, message: Self.replyText(reply), operation: operation)
        }
    }

    private func connectionError(_ error: BrokerError) -> BrokerError? {
        error.code == .connectionLost ? error : nil
    }

    private func failChannel(_ id: UInt16, _ error: BrokerError) {
        guard let state = channels.removeValue(forKey: id) else { return }
        for reply in state.unconfirmed.values { reply.resume(throwing: error) }
        for consumer in state.consumers.values { consumer.stream.finish(throwing: error) }
    }

    /// Fails everything outstanding and releases the library's connection.
    private func finish(_ failure: BrokerError?, untaken: ArraySlice<Command>) {
        let error = failure ?? BrokerError(.closed, message: "the connection was closed")
        for command in untaken { command.fail(error) }
        if let failure {
            logger.warning("broker connection lost", metadata: ["reason": "\(failure.message)"])
        }
        for id in Array(channels.keys) {
            if failure == nil, let consumers = channels[id]?.consumers.values {
                for consumer in consumers { consumer.stream.finish() }
                channels[id]?.consumers.removeAll()
            }
            failChannel(id, error)
        }
        for command in inbox.shut() { command.fail(error) }
        amqp_destroy_connection(conn)
        lifecycle.finish(failure)
    }

    static func statusText(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }

    static func replyText(_ reply: amqp_rpc_reply_t) -> String {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return "ok"
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            return statusText(reply.library_error)
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == herald_method_connection_close:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            return "\(close.reply_code) \(FieldDecoder.string(close.reply_text))"
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == herald_method_channel_close:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            return "\(close.reply_code) \(FieldDecoder.string(close.reply_text))"
        default:
            return "no reply"
        }
    }
}
