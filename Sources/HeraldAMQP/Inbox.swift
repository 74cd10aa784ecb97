import HeraldSupport
import Foundation
import Glibc
import Synchronization

/// Commands for a connection's thread, and the pipe that wakes it from `poll`.
final class Inbox: Sendable {
    private struct State {
        var commands: [Command] = []
        var signaled = false
        var closed = false
    }

    private let state = Mutex(State())
    /// The read end of a pipe, polled by the owning thread; written once per batch of posts.
    let wakeFD: Int32
    private let writeFD: Int32

    init() {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe failed: errno \(errno)")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeFD = fds[0]
        writeFD = fds[1]
    }

    deinit {
        close(wakeFD)
        close(writeFD)
    }

    /// Queues `command`; false once the connection has shut down (the caller fails it).
    func post(_ command: Command) -> Bool {
        let (accepted, wake) = state.withLock { state -> (Bool, Bool) in
            guard !state.closed else { return (false, false) }
            state.commands.append(command)
            defer { state.signaled = true }
            return (true, !state.signaled)
        }
        if wake {
            var one: UInt8 = 1
            _ = write(writeFD, &one, 1)
        }
        return accepted
    }

    /// Everything posted so far. With `emptyingPipe` (the last `poll` found the pipe
    /// readable) the pipe is emptied first: a post that lands after that either is taken
    /// now or finds `signaled` cleared and writes a fresh byte. Without it no read is
    /// made: a byte written since that `poll` stays for the next one, which returns at
    /// once and empties the pipe, so a wake-up costs one spare turn at most, never a
    /// lost post, and a turn without one costs no system call.
    ///
    /// `commands` (what the last turn took) is emptied and trades buffers with the queue,
    /// so a turn allocates nothing once both have grown.
    func drain(emptyingPipe: Bool, into commands: inout [Command]) {
        if emptyingPipe {
            var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            while withUnsafeMutableBytes(of: &buffer, { read(wakeFD, $0.baseAddress, $0.count) }) > 0 {}
        }
        commands.removeAll(keepingCapacity: true)
        state.withLock { state in
            swap(&commands, &state.commands)
            state.signaled = false
        }
    }

    /// Refuses further posts and returns what was still queued.
    func shut() -> [Command] {
        state.withLock { state in
            state.closed = true
            defer { state.commands.removeAll() }
            return state.commands
        }
    }
}

/// What callers ask of a connection's thread.
enum Command: Sendable {
    case openChannel(CheckedContinuation<UInt16, any Error>)
    case closeChannel(UInt16, CheckedContinuation<Void, any Error>)
    case rpc(UInt16, RPC, CheckedContinuation<QueueInfo?, any Error>)
    case publish(UInt16, Publish)
    case consume(UInt16, Consume)
    case cancel(UInt16, consumerTag: String)
    case ack(UInt16, UInt64, multiple: Bool)
    case nack(UInt16, UInt64, multiple: Bool, requeue: Bool)
    case reject(UInt16, UInt64, requeue: Bool)
    case close(CheckedContinuation<Void, Never>)

    /// Fails whatever the command was waiting for.
    /// Sent without waiting for a reply: acks, nacks, rejects and publishes.
    var isOneWay: Bool {
        switch self {
        case .ack, .nack, .reject, .publish: true
        default: false
        }
    }

    func fail(_ error: BrokerError) {
        switch self {
        case .openChannel(let c): c.resume(throwing: error)
        case .closeChannel(_, let c): c.resume(throwing: error)
        case .rpc(_, _, let c): c.resume(throwing: error)
        case .publish(_, let p): p.reply.resume(throwing: error)
        case .consume(_, let c):
            c.started.resume(throwing: error)
            c.stream.finish(throwing: error)
        case .close(let c): c.resume()
        case .cancel, .ack, .nack, .reject: break
        }
    }
}

enum RPC: Sendable {
    case declareExchange(name: String, type: ExchangeType, durable: Bool, autoDelete: Bool, isInternal: Bool, arguments: FieldTable)
    case deleteExchange(name: String)
    case declareQueue(name: String, passive: Bool, durable: Bool, exclusive: Bool, autoDelete: Bool, arguments: FieldTable)
    case bindQueue(queue: String, exchange: String, routingKey: String, arguments: FieldTable)
    case unbindQueue(queue: String, exchange: String, routingKey: String, arguments: FieldTable)
    case bindExchange(destination: String, source: String, routingKey: String)
    case unbindExchange(destination: String, source: String, routingKey: String)
    case purgeQueue(name: String)
    case deleteQueue(name: String)
    case qos(prefetch: UInt16)
    case confirmSelect

    var operation: String {
        switch self {
        case .declareExchange(let name, _, _, _, _, _): "exchange.declare \(name)"
        case .deleteExchange(let name): "exchange.delete \(name)"
        case .declareQueue(let name, _, _, _, _, _): "queue.declare \(name)"
        case .bindQueue(let queue, let exchange, let key, _): "queue.bind \(queue) to \(exchange) with \(key)"
        case .unbindQueue(let queue, let exchange, let key, _): "queue.unbind \(queue) from \(exchange) with \(key)"
        case .bindExchange(let destination, let source, let key): "exchange.bind \(destination) to \(source) with \(key)"
        case .unbindExchange(let destination, let source, let key): "exchange.unbind \(destination) from \(source) with \(key)"
        case .purgeQueue(let name): "queue.purge \(name)"
        case .deleteQueue(let name): "queue.delete \(name)"
        case .qos(let prefetch): "basic.qos \(prefetch)"
        case .confirmSelect: "confirm.select"
        }
    }
}

struct Publish: Sendable {
    var message: Message
    var exchange: String
    var routingKey: String
    var mandatory: Bool
    /// Answered by the broker's confirm; the caller may stop waiting first (cancellation).
    var reply: OneShot<Void>
}

struct Consume: Sendable {
    var queue: String
    var consumerTag: String
    var exclusive: Bool
    var arguments: FieldTable
    var maxBodyBytes: Int
    var linger: Duration
    var stream: DeliveryStream
    var started: CheckedContinuation<String, any Error>
}
