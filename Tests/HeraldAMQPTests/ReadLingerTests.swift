@testable import HeraldAMQP
import Testing

@Suite("ReadLinger: a consuming connection waits for company only while quiet")
struct ReadLingerTests {
    typealias Consuming = ReadLinger.Consuming

    @Test func aConnectionWithoutConsumersNeverWaits() {
        #expect(ReadLinger.wait([Consuming]()) == nil)
    }

    @Test func aQuietChannelWaitsItsLinger() {
        #expect(ReadLinger.wait([Consuming(linger: .milliseconds(5), prefetch: 500, inProgress: 0)]) == .milliseconds(5))
    }

    @Test func noLingerOrAnUnlimitedWindowNeverWaits() {
        #expect(ReadLinger.wait([Consuming(linger: .zero, prefetch: 500, inProgress: 0)]) == nil)
        #expect(ReadLinger.wait([Consuming(linger: .milliseconds(5), prefetch: 0, inProgress: 0)]) == nil)
    }

    /// A quarter of the window in progress ends the quiet, as it sends held acks.
    @Test func aQuarterOfTheWindowInProgressReadsAtOnce() {
        let cases: [(prefetch: Int, inProgress: Int, waits: Bool)] = [
            (1, 0, true), (1, 1, false), (3, 0, true), (3, 1, false), (4, 0, true), (4, 1, false),
            (8, 1, true), (8, 2, false), (16, 3, true), (16, 4, false), (500, 124, true), (500, 125, false),
            (500, 500, false), (65_535, 16_382, true), (65_535, 16_383, false),
        ]
        for (prefetch, inProgress, waits) in cases {
            let wait = ReadLinger.wait([Consuming(linger: .milliseconds(5), prefetch: prefetch, inProgress: inProgress)])
            #expect((wait != nil) == waits, "prefetch \(prefetch), \(inProgress) in progress")
        }
    }

    /// Fewer in progress never turns a wait into an immediate read, at any window.
    @Test func waitingIsMonotoneInWhatIsInProgress() {
        for prefetch in 1...64 {
            var waitedAt: Int?
            for inProgress in (0...prefetch).reversed() {
                let waits = ReadLinger.wait([Consuming(linger: .seconds(1), prefetch: prefetch, inProgress: inProgress)]) != nil
                if waits, waitedAt == nil { waitedAt = inProgress }
                if let waitedAt { #expect(waits, "prefetch \(prefetch): waits at \(waitedAt) in progress but not at \(inProgress)") }
            }
            #expect(waitedAt != nil, "prefetch \(prefetch): waits with nothing in progress")
        }
    }

    /// One busy channel reads for all: they share the socket. Quiet ones wait the shortest linger.
    @Test func everyChannelMustBeQuietAndTheShortestLingerWins() {
        let quiet = Consuming(linger: .milliseconds(5), prefetch: 100, inProgress: 2)
        let quieter = Consuming(linger: .milliseconds(2), prefetch: 16, inProgress: 0)
        let busy = Consuming(linger: .milliseconds(5), prefetch: 16, inProgress: 4)
        #expect(ReadLinger.wait([quiet, quieter]) == .milliseconds(2))
        #expect(ReadLinger.wait([quieter, quiet]) == .milliseconds(2))
        #expect(ReadLinger.wait([quiet, busy]) == nil)
        #expect(ReadLinger.wait([busy, quieter]) == nil)
        #expect(ReadLinger.wait([quiet, Consuming(linger: .zero, prefetch: 16, inProgress: 0)]) == nil)
    }
}
