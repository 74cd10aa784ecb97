import HeraldAMQP
import Delivery
import Testing
import Topology

@Suite struct LadderTests {
    @Test func standardLadderIsTheReferenceOne() {
        #expect(Ladder.standard.description == "1m,5m,30m,2h,12h")
        #expect(Ladder.standard.maxAttempts == 6)
    }

    @Test func parsesUnits() throws {
        let ladder = try Ladder(parsing: "250ms, 2s,5m,1h,1d")
        #expect(ladder.delays == [.milliseconds(250), .seconds(2), .seconds(300), .seconds(3600), .seconds(86_400)])
        #expect((0..<5).map(ladder.label(rung:)) == ["250ms", "2s", "5m", "1h", "1d"])
    }

    @Test(arguments: ["", "5", "5x", "-1s", "0s", "1m,,2m", "8d", "ms", "9223372036854775807d", "9223372036854775807s", "99999999999999999999ms"])
    func rejectsBadLadders(_ text: String) {
        #expect(throws: LadderError.self) { try Ladder(parsing: text) }
    }

    @Test func eachFailedAttemptWaitsOnItsRungUntilTheLast() {
        let ladder = Ladder.standard
        #expect((1...5).map { ladder.rung(afterAttempt: $0) } == [0, 1, 2, 3, 4])
        #expect(ladder.rung(afterAttempt: 6) == nil)
        #expect(ladder.rung(afterAttempt: 0) == nil)
    }

    @Test func retryAfterPicksTheFirstRungAtLeastThatLong() {
        let ladder = Ladder.standard
        #expect(ladder.rung(afterAttempt: 1, retryAfter: .seconds(30)) == 0)
        #expect(ladder.rung(afterAttempt: 1, retryAfter: .seconds(60)) == 0)
        #expect(ladder.rung(afterAttempt: 1, retryAfter: .seconds(61)) == 1)
        #expect(ladder.rung(afterAttempt: 1, retryAfter: .seconds(3600)) == 3)
        // Longer than every rung: the last one.
        #expect(ladder.rung(afterAttempt: 1, retryAfter: .seconds(86_400)) == 4)
        // Never earlier than the ladder's own rung.
        #expect(ladder.rung(afterAttempt: 3, retryAfter: .seconds(1)) == 2)
        // Retry-After does not add attempts.
        #expect(ladder.rung(afterAttempt: 6, retryAfter: .seconds(1)) == nil)
    }
}

@Suite struct TopologyTests {
    @Test func namesFollowThePrefixAndLadder() throws {
        let topology = Topology(prefix: "t1", ladder: try Ladder(parsing: "200ms,1s"))
        #expect(topology.eventsExchange == "t1.events")
        #expect(topology.workQueue == "t1.work")
        #expect(topology.queues == ["t1.work", "t1.parking", "t1.defer", "t1.retry.200ms", "t1.retry.1s"])
    }

    @Test func theDeferQueueExpiresIntoTheWorkQueueAfterItsDelay() {
        let topology = Topology(deferDelay: .milliseconds(1500))
        let arguments = topology.deferQueueArguments
        #expect(arguments["x-message-ttl"] == .int(1500))
        #expect(arguments["x-dead-letter-exchange"] == "herald.requeue")
        #expect(arguments["x-dead-letter-strategy"] == "at-least-once")
    }

    @Test func retryQueuesExpireIntoTheWorkQueueAtLeastOnce() {
        let topology = Topology()
        let arguments = topology.retryQueueArguments(rung: 1)
        #expect(arguments["x-message-ttl"] == .int(300_000))
        #expect(arguments["x-dead-letter-exchange"] == "herald.requeue")
        #expect(arguments["x-dead-letter-routing-key"] == "work")
        #expect(arguments["x-queue-type"] == "quorum")
        #expect(arguments["x-dead-letter-strategy"] == "at-least-once")
        #expect(arguments["x-overflow"] == "reject-publish")
    }
}

@Suite struct DeliveryLimitTests {
    @Test func theWorkQueueAndTheShardsDeadLetterWhatOverrunsTheLimitIntoTheParkingQueue() {
        let topology = Topology(prefix: "t2", shards: 2, deliveryLimit: 7)
        for arguments in [topology.consumedQueueArguments, topology.shardQueueArguments] {
            #expect(arguments["x-delivery-limit"] == .int(7))
            #expect(arguments["x-dead-letter-exchange"] == "")
            #expect(arguments["x-dead-letter-routing-key"] == "t2.parking")
            #expect(arguments["x-dead-letter-strategy"] == "at-least-once")
            #expect(arguments["x-overflow"] == "reject-publish")
        }
        #expect(topology.shardQueueArguments["x-single-active-consumer"] == true)
        #expect(topology.consumedQueueArguments["x-single-active-consumer"] == nil)
    }

    @Test func readingTheParkingLotNeverUsesUpALimit() {
        let arguments = Topology(deliveryLimit: 3).parkingQueueArguments
        #expect(arguments["x-delivery-limit"] == .int(Int64(Int32.max)))
        #expect(arguments["x-dead-letter-exchange"] == nil)
    }

    @Test func aGroupSizeGoesOnEveryQueueAndNoneLeavesItToTheBroker() {
        let sized = Topology(quorumGroupSize: 2)
        let unsized = Topology()
        for (topology, expected) in [(sized, FieldValue.int(2)), (unsized, nil)] {
            let all = [
                topology.consumedQueueArguments, topology.shardQueueArguments, topology.parkingQueueArguments,
                topology.deferQueueArguments, topology.retryQueueArguments(rung: 0),
            ]
            for arguments in all {
                #expect(arguments["x-quorum-initial-group-size"] == expected)
                #expect(arguments["x-queue-type"] == "quorum")
            }
        }
    }
}
