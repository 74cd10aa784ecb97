internal import CHeraldAMQP
@testable import HeraldAMQP
import Testing
import TestSupport

@Suite("Broker URLs")
struct BrokerURLTests {
    @Test func defaults() throws {
        let url = try BrokerURL("amqp://127.0.0.1")
        #expect(url.host == "127.0.0.1")
        #expect(url.port == 5672)
        #expect(url.user == "guest")
        #expect(url.password == "guest")
        #expect(url.virtualHost == "/")
        #expect(url.heartbeat == 30)
    }

    @Test func everyPart() throws {
        let url = try BrokerURL("amqp://herald:p%40ss@broker.internal:5673/prod?heartbeat=10&connection_timeout=3")
        #expect(url.host == "broker.internal")
        #expect(url.port == 5673)
        #expect(url.user == "herald")
        #expect(url.password == "p@ss")
        #expect(url.virtualHost == "prod")
        #expect(url.heartbeat == 10)
        #expect(url.connectTimeout == 3)
        #expect(!url.redacted.contains("p@ss"))
    }

    @Test func encodedSlashIsTheDefaultVhost() throws {
        #expect(try BrokerURL("amqp://h/%2F").virtualHost == "/")
    }

    @Test(arguments: ["http://h/", "amqp://", "amqp://h/?heartbeat=-1", "amqp://h/?heartbeat=x", "amqp://h/?frame=1", "not a url"])
    func rejects(_ text: String) {
        #expect(throws: BrokerError.self) { try BrokerURL(text) }
    }
}

@Suite("A cluster's brokers")
struct BrokerListTests {
    @Test func aListNamesEachNode() throws {
        let nodes = try BrokerURL.list("amqp://u:p%2Cw@n1:5701/, amqp://u:p%2Cw@n2:5702/ ,amqp://n3")
        #expect(nodes.map(\.host) == ["n1", "n2", "n3"])
        #expect(nodes[0].password == "p,w", "a comma in a password is written %2C")
        #expect(try BrokerURL.list("amqp://one").count == 1)
    }

    @Test(arguments: ["", " , ", "amqp://n1,http://n2", "amqp://n1,amqp://"])
    func aListWithABadItemIsRefused(_ text: String) {
        #expect(throws: BrokerError.self) { try BrokerURL.list(text) }
    }

    /// The next connect starts at the node after one that failed or was lost, stays on
    /// one that answered, and every node is tried once per round.
    @Test func theRotationMovesPastAFailedNode() {
        let rotation = BrokerRotation(start: 0)
        #expect(rotation.order(3) == [0, 1, 2])
        rotation.failed(0, of: 3)
        #expect(rotation.order(3) == [1, 2, 0])
        rotation.connected(1)
        #expect(rotation.order(3) == [1, 2, 0])
        rotation.failed(2, of: 3)
        #expect(rotation.order(3) == [0, 1, 2])
        #expect(BrokerRotation(start: 7).order(3) == [1, 2, 0])
        #expect(BrokerRotation(start: 5).order(1) == [0])
    }
}

@Suite struct BackoffTests {
    @Test func growsThenCaps() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), multiplier: 2)
        #expect(backoff.ceiling(attempt: 0) == .milliseconds(100))
        #expect(backoff.ceiling(attempt: 1) == .milliseconds(200))
        #expect(backoff.ceiling(attempt: 4) == .milliseconds(1600))
        #expect(backoff.ceiling(attempt: 5) == .seconds(2))
        #expect(backoff.ceiling(attempt: 500) == .seconds(2))
    }

    @Test func jitterStaysWithinHalfToFullCeiling() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), multiplier: 2)
        for attempt in 0..<8 {
            let delay = backoff.delay(attempt: attempt)
            #expect(delay >= backoff.ceiling(attempt: attempt) / 2)
            #expect(delay <= backoff.ceiling(attempt: attempt))
        }
    }
}

@Suite("Field tables through rabbitmq-c's C structures")
struct FieldTableTests {
    @Test func roundTripsEveryKind() {
        let table: FieldTable = [
            "bool": .bool(true),
            "int": .int(-42),
            "big": .int(Int64.max),
            "double": .double(2.5),
            "string": .string("grüße"),
            "empty": .string(""),
            "bytes": .bytes([0, 1, 255]),
            "timestamp": .timestamp(1_715_000_000),
            "array": .array([.int(1), .string("two"), .table(["three": .bool(false)])]),
            "emptyArray": .array([]),
            "table": .table(["nested": .table(["deep": .int(7)])]),
            "void": .void,
        ]
        let arena = Arena()
        let encoded = arena.table(table)
        #expect(FieldDecoder.table(encoded) == table)
    }

    /// Pieces cut from several blocks, small and odd-sized among aligned C structures, large ones apart:
    /// every value comes back intact.
    @Test func manyAndLargePiecesSurviveInOneArena() {
        var table: FieldTable = [:]
        for index in 0..<300 {
            table["k\(index)"] = index % 3 == 0 ? .string(String(repeating: "v", count: index)) : .array([.int(Int64(index)), .bool(index % 2 == 0)])
        }
        table["large"] = .bytes((0..<5_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let arena = Arena()
        let odd = arena.bytes([1, 2, 3])
        let small = arena.table(["a": .int(1), "b": .string("x"), "c": .bool(true)])
        let encoded = arena.table(table)
        let lazy = arena.bytes((0..<700).lazy.map { UInt8(truncatingIfNeeded: $0) })
        #expect(FieldDecoder.table(encoded) == table)
        #expect(FieldDecoder.data(odd) == [1, 2, 3])
        #expect(FieldDecoder.data(lazy) == (0..<700).map { UInt8(truncatingIfNeeded: $0) })
        // x86 reads misaligned structures without a fault, so alignment is checked as such.
        #expect(FieldDecoder.table(small) == ["a": .int(1), "b": .string("x"), "c": .bool(true)])
        #expect(Int(bitPattern: small.entries) % MemoryLayout<amqp_table_entry_t>.alignment == 0)
        let arrays = (0..<Int(encoded.num_entries)).map { encoded.entries[$0].value }.filter { $0.kind == UInt8(ascii: "A") }
        #expect(arrays.count == 200)
        #expect(arrays.allSatisfy { Int(bitPattern: $0.value.array.entries) % MemoryLayout<amqp_field_value_t>.alignment == 0 })
    }

    @Test func emptyTable() {
        #expect(FieldDecoder.table(Arena().table([:])).isEmpty)
    }

    @Test func messagePropertiesRoundTrip() {
        let message = Message(
            body: Array("{}".utf8), headers: ["attempt": .int(3)], contentType: "application/json",
            messageID: "evt_1", correlationID: "c", type: "client.created", timestamp: 1_715_000_000,
            expiration: "60000", persistent: true)
        let arena = Arena()
        let properties = FieldDecoder.properties(message, extraHeaders: ["extra": "x"], arena: arena)
        var names = RecurringStrings()
        let decoded = FieldDecoder.message(properties, body: arena.bytes(message.body), names: &names)
        #expect(decoded.body == message.body)
        #expect(decoded.headers == ["attempt": .int(3), "extra": "x"])
        #expect(decoded.contentType == "application/json")
        #expect(decoded.messageID == "evt_1")
        #expect(decoded.correlationID == "c")
        #expect(decoded.type == "client.created")
        #expect(decoded.timestamp == 1_715_000_000)
        #expect(decoded.expiration == "60000")
        #expect(decoded.persistent)
    }

    @Test func transientMessagesAreMarkedSo() {
        let arena = Arena()
        let properties = FieldDecoder.properties(Message(body: [], persistent: false), extraHeaders: [:], arena: arena)
        var names = RecurringStrings()
        #expect(!FieldDecoder.message(properties, body: arena.bytes([UInt8]()), names: &names).persistent)
    }
}

@Suite("Acks leave together, as few frames")
struct AckLedgerTests {
    /// What RabbitMQ does with the frames (`rabbit_channel:collect_acks`): a frame's own tag
    /// must be unacked, or the channel is closed; `multiple` settles every unacked tag up to it.
    struct Broker {
        var unacked: Set<UInt64> = []

        mutating func apply(_ frames: [(tag: UInt64, multiple: Bool)]) throws {
            for frame in frames {
                guard unacked.contains(frame.tag) else { throw Failure(tag: frame.tag) }
                if frame.multiple { unacked = unacked.filter { $0 > frame.tag } } else { unacked.remove(frame.tag) }
            }
        }

        mutating func nack(_ tag: UInt64, multiple: Bool, after held: [(tag: UInt64, multiple: Bool)] = []) throws {
            try apply(held)
            guard unacked.contains(tag) else { throw Failure(tag: tag) }
            if multiple { unacked = unacked.filter { $0 > tag } } else { unacked.remove(tag) }
        }

        struct Failure: Error { let tag: UInt64 }
    }

    @Test func acksInDeliveryOrderLeaveAsOneMultipleFrame() {
        var ledger = AckLedger()
        for tag in 1...50 as ClosedRange<UInt64> { ledger.deliver(tag) }
        let frames = ledger.ack((1...50).map { ($0, false) }, at: .now)
        #expect(frames.map(\.tag) == [50] && frames.map(\.multiple) == [true])
        #expect(ledger.count == 0)
        #expect(ledger.ack([(51, false)], at: .now).isEmpty, "a tag it never saw makes no frame")
        #expect(ledger.ack([(50, false)], at: .now).isEmpty, "nor one acked before")
    }

    @Test func aGapAtTheFrontSendsTheOthersAloneThenCoversTheRest() {
        var ledger = AckLedger()
        for tag in 1...5 as ClosedRange<UInt64> { ledger.deliver(tag) }
        let alone = ledger.ack([(3, false), (4, false)], at: .now)
        #expect(alone.map(\.tag) == [3, 4] && alone.allSatisfy { !$0.multiple })
        // 1 and 2 settle: the frame names 2, the last not acked yet, never 4.
        let front = ledger.ack([(2, false), (1, false)], at: .now)
        #expect(front.map(\.tag) == [2] && front.map(\.multiple) == [true])
        let last = ledger.ack([(5, false)], at: .now)
        #expect(last.map(\.tag) == [5] && last.map(\.multiple) == [false])
    }

    @Test func aNackedTagIsPassedWithoutAFrameAndNeverAcked() {
        var ledger = AckLedger()
        for tag in 1...3 as ClosedRange<UInt64> { ledger.deliver(tag) }
        #expect(ledger.settle(2, multiple: false).isEmpty)
        #expect(ledger.ack([(2, false)], at: .now).isEmpty)
        let frames = ledger.ack([(1, false), (3, false)], at: .now)
        #expect(frames.map(\.tag) == [3] && frames.map(\.multiple) == [true])
    }

    /// One delivery held for good (a hanging request) keeps only itself: what is settled
    /// behind it is forgotten, and the ledger stays small.
    @Test func oneDeliveryHeldLongKeepsOnlyItself() {
        var ledger = AckLedger()
        ledger.deliver(1)
        for tag in 2...10_000 as ClosedRange<UInt64> {
            ledger.deliver(tag)
            #expect(ledger.ack([(tag, false)], at: .now).map(\.tag) == [tag])
        }
        #expect(ledger.count < 200)
        #expect(ledger.ack([(1, false)], at: .now).map(\.tag) == [1])
    }

    /// Deliveries settled in random order and random groups, with nacks, the caller's own
    /// multiple acks and nacks, acks twice and acks after a nack, on a clock of the test's,
    /// with acks sent at once or held: the broker never closes the channel, after the last
    /// flush exactly the unsettled tags stay unacked, and the ledger stays small.
    @Test(arguments: 0..<100)
    func anyOrderOfSettlingIsExactForTheBroker(seed: Int) throws {
        var random = SeededRandom(seed: UInt64(seed) &+ 1)
        let holding: AckLedger.Holding =
            seed % 2 == 0 ? .none : .window(prefetch: Int.random(in: 4...80, using: &random), longest: .milliseconds(Int.random(in: 1...50, using: &random)))
        var ledger = AckLedger(holding: holding)
        var now = ContinuousClock.now
        var broker = Broker()
        var nextTag: UInt64 = 1
        var open: [UInt64] = []
        var done: [UInt64] = []
        for _ in 0..<400 {
            for _ in 0..<Int.random(in: 0...8, using: &random) {
                ledger.deliver(nextTag)
                broker.unacked.insert(nextTag)
                open.append(nextTag)
                nextTag += 1
            }
            open.shuffle(using: &random)
            var group: [(tag: UInt64, multiple: Bool)] = []
            var taking = Int.random(in: 0...open.count, using: &random)
            while taking > 0, let tag = open.popLast() {
                taking -= 1
                switch Int.random(in: 0..<20, using: &random) {
                case 0:
                    try broker.nack(tag, multiple: false, after: ledger.settle(tag, multiple: false))
                case 1:
                    // The caller's multiple ack: every open tag up to this one is settled.
                    group.append((tag, true))
                    open.removeAll { $0 < tag }
                case 2:
                    if let again = done.randomElement(using: &random) { group.append((again, false)) }
                    group.append((tag, false))
                default:
                    group.append((tag, false))
                }
                done.append(tag)
            }
            if Int.random(in: 0..<50, using: &random) == 0, let highest = open.max() {
                // A multiple nack of everything open.
                try broker.nack(highest, multiple: true, after: ledger.settle(highest, multiple: true))
                open.removeAll()
            }
            now += .milliseconds(Int.random(in: 0...10, using: &random))
            try broker.apply(ledger.ack(group, at: now))
            if Bool.random(using: &random) { try broker.apply(ledger.due(at: now)) }
            #expect(ledger.heldCount < holding.most)
            #expect(ledger.count <= 3 * open.count + 200)
        }
        try broker.apply(ledger.flush())
        #expect(broker.unacked == Set(open))
    }
}

@Suite("Held acks")
struct HeldAckTests {
    /// A ledger and the broker's view after `tags` were delivered.
    static func delivered(_ tags: ClosedRange<UInt64>, holding: AckLedger.Holding) -> (AckLedger, AckLedgerTests.Broker) {
        var ledger = AckLedger(holding: holding)
        var broker = AckLedgerTests.Broker()
        for tag in tags {
            ledger.deliver(tag)
            broker.unacked.insert(tag)
        }
        return (ledger, broker)
    }

    /// A quarter of the window leaves together, at once, as one frame.
    @Test func aQuarterOfTheWindowLeavesTogether() {
        var ledger = AckLedger(holding: .window(prefetch: 40))
        for tag in 1...20 as ClosedRange<UInt64> { ledger.deliver(tag) }
        let start = ContinuousClock.now
        for tag in 1...9 as ClosedRange<UInt64> {
            #expect(ledger.ack([(tag, false)], at: start).isEmpty)
        }
        #expect(ledger.heldCount == 9)
        let frames = ledger.ack([(10, false)], at: start)
        #expect(frames.map(\.tag) == [10] && frames.map(\.multiple) == [true])
        #expect(ledger.heldCount == 0 && ledger.deadline == nil)
    }

    /// With nothing else in progress the broker waits on us: what is held leaves.
    @Test func nothingElseInProgressSendsAtOnce() {
        var ledger = AckLedger(holding: .window(prefetch: 400))
        for tag in 1...3 as ClosedRange<UInt64> { ledger.deliver(tag) }
        let now = ContinuousClock.now
        #expect(ledger.ack([(2, false), (1, false)], at: now).isEmpty)
        let frames = ledger.ack([(3, false)], at: now)
        #expect(frames.map(\.tag) == [3] && frames.map(\.multiple) == [true])
    }

    /// The oldest held ack decides when they leave; `due` before then sends nothing.
    @Test func theOldestLeavesAfterTheLongestHold() {
        var ledger = AckLedger(holding: .window(prefetch: 400, longest: .milliseconds(100)))
        for tag in 1...10 as ClosedRange<UInt64> { ledger.deliver(tag) }
        let start = ContinuousClock.now
        #expect(ledger.ack([(1, false)], at: start).isEmpty)
        #expect(ledger.ack([(2, false)], at: start + .milliseconds(60)).isEmpty)
        #expect(ledger.deadline == start + .milliseconds(100))
        #expect(ledger.due(at: start + .milliseconds(99)).isEmpty)
        let frames = ledger.due(at: start + .milliseconds(100))
        #expect(frames.map(\.tag) == [2] && frames.map(\.multiple) == [true])
        #expect(ledger.deadline == nil && ledger.due(at: start + .seconds(1)).isEmpty)
        // An ack taken after its time leaves with the call that takes it.
        #expect(ledger.ack([(3, false)], at: start + .seconds(2)).isEmpty)
        #expect(ledger.ack([(4, false)], at: start + .seconds(2) + .milliseconds(100)).map(\.tag) == [4])
    }

    /// Behind a delivery still in progress (a hanging endpoint's), held acks leave a frame
    /// each, together, and never one that covers it.
    @Test func behindAGapEachLeavesAloneButTogether() throws {
        var (ledger, broker) = Self.delivered(1...8, holding: .window(prefetch: 16))
        let now = ContinuousClock.now
        #expect(ledger.ack([(3, false), (5, false), (4, false)], at: now).isEmpty)
        let frames = ledger.ack([(7, false)], at: now)
        #expect(frames.map(\.tag) == [3, 4, 5, 7] && frames.allSatisfy { !$0.multiple })
        try broker.apply(frames)
        #expect(broker.unacked == [1, 2, 6, 8])
    }

    /// A nack, whose `multiple` could return a message whose ack is held, comes after them.
    @Test func aNackComesAfterTheHeldAcks() throws {
        var (ledger, broker) = Self.delivered(1...6, holding: .window(prefetch: 400))
        #expect(ledger.ack([(1, false), (2, false)], at: .now).isEmpty)
        let first = ledger.settle(4, multiple: true)
        #expect(first.map(\.tag) == [2] && first.map(\.multiple) == [true])
        try broker.nack(4, multiple: true, after: first)
        #expect(broker.unacked == [5, 6])
        #expect(ledger.heldCount == 0)
    }
}

extension FieldDecoder {
    /// A table read alone, as the tests read one, keeping no names for later.
    static func table(_ table: amqp_table_t) -> FieldTable {
        var names = RecurringStrings()
        return self.table(table, names: &names)
    }
}
