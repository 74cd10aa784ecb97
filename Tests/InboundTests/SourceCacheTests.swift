import Foundation
import Inbound
import Synchronization
import Testing

/// The inbound source cache on a test clock: what it keeps, for how long, and what makes
/// it forget, without a database.
@Suite struct SourceCacheTests {
    final class Clock: Sendable {
        let instant = Mutex(ContinuousClock.now)
        var now: ContinuousClock.Instant { instant.withLock { $0 } }
        func advance(_ duration: Duration) { instant.withLock { $0 += duration } }
    }

    static func found(_ id: UUID = UUID(), secret: String = "s") -> SourceCache.Found {
        SourceCache.Found(source: InboundSource(id: id, tenantID: UUID(), name: "forms", verification: .none), secret: secret)
    }

    let clock = Clock()
    let hash = Array(repeating: UInt8(7), count: 32)

    func cache(lifetime: Duration = .seconds(600), capacity: Int = 100) -> SourceCache {
        SourceCache(lifetime: lifetime, capacity: capacity, now: { [clock] in clock.now })
    }

    @Test func nothingIsKeptWithoutTheListenersLease() {
        let cache = cache()
        #expect(cache.ticket() == nil)
        cache.keep(Self.found(), tokenHash: hash, ticket: cache.ticket())
        #expect(cache.cached(hash) == nil && cache.count == 0)
        // Under the lease a lookup is kept, and answered until the lease runs out.
        cache.trustNotifications(until: clock.now + .seconds(4))
        let found = Self.found()
        cache.keep(found, tokenHash: hash, ticket: cache.ticket())
        #expect(cache.cached(hash) == found)
        #expect(cache.cached(Array(repeating: 8, count: 32)) == nil)
        clock.advance(.seconds(4))
        #expect(cache.cached(hash) == nil)
        // A probe that comes back extends the trust: the entry answers again.
        cache.trustNotifications(until: clock.now + .seconds(4))
        #expect(cache.cached(hash) == found)
    }

    @Test func anEntryIsReadAgainAfterItsLifetime() {
        let cache = cache(lifetime: .seconds(10))
        cache.trustNotifications(until: clock.now + .seconds(60))
        cache.keep(Self.found(), tokenHash: hash, ticket: cache.ticket())
        clock.advance(.seconds(9))
        #expect(cache.cached(hash) != nil)
        clock.advance(.seconds(1))
        #expect(cache.cached(hash) == nil)
    }

    @Test func aChangeDropsItsSourceAndALookupInFlightIsNotKept() {
        let cache = cache()
        cache.trustNotifications(until: clock.now + .seconds(60))
        let changed = UUID(), other = UUID()
        let otherHash = Array(repeating: UInt8(9), count: 32)
        cache.keep(Self.found(changed), tokenHash: hash, ticket: cache.ticket())
        cache.keep(Self.found(other), tokenHash: otherHash, ticket: cache.ticket())
        // A lookup began before the change: it may have read the source as it was.
        let early = cache.ticket()
        cache.notified(changed.uuidString)
        #expect(cache.cached(hash) == nil)
        #expect(cache.cached(otherHash)?.source.id == other)
        cache.keep(Self.found(changed), tokenHash: hash, ticket: early)
        #expect(cache.cached(hash) == nil)
        // One that begins after it is kept.
        cache.keep(Self.found(changed, secret: "new"), tokenHash: hash, ticket: cache.ticket())
        #expect(cache.cached(hash)?.secret == "new")
        // A change made by this process (`invalidate`) does the same.
        cache.invalidate(source: changed)
        #expect(cache.cached(hash) == nil && cache.count == 1)
        // Payloads that name nothing are ignored; "*" (a TRUNCATE) drops everything.
        cache.notified("not a uuid")
        #expect(cache.count == 1)
        cache.notified("*")
        #expect(cache.count == 0)
    }

    @Test func aLostSessionDropsEverythingAndItsLookupsInFlight() {
        let cache = cache()
        cache.trustNotifications(until: clock.now + .seconds(60))
        cache.keep(Self.found(), tokenHash: hash, ticket: cache.ticket())
        let inFlight = cache.ticket()
        cache.distrustNotifications()
        #expect(cache.count == 0 && cache.ticket() == nil)
        // Trusted again, a lookup that began before the loss is still not kept.
        cache.trustNotifications(until: clock.now + .seconds(60))
        cache.keep(Self.found(), tokenHash: hash, ticket: inFlight)
        #expect(cache.count == 0)
    }

    @Test func theLeaseRunningOutDuringALookupKeepsNothing() {
        let cache = cache()
        cache.trustNotifications(until: clock.now + .seconds(4))
        let ticket = cache.ticket()
        clock.advance(.seconds(5))
        cache.keep(Self.found(), tokenHash: hash, ticket: ticket)
        cache.trustNotifications(until: clock.now + .seconds(4))
        #expect(cache.count == 0)
    }

    /// A source is kept under one hash: kept again under its new token's, the old entry
    /// goes; a hash kept for another source takes the entry over; a change to a source
    /// drops its entry only, whichever hash it is under, also after an eviction.
    @Test func aSourceIsKeptUnderOneHashAndItsChangeDropsThatEntryOnly() {
        let cache = cache(capacity: 10)
        cache.trustNotifications(until: clock.now + .seconds(600))
        let (rotated, other, taker) = (UUID(), UUID(), UUID())
        let (newHash, otherHash) = (Array(repeating: UInt8(1), count: 32), Array(repeating: UInt8(2), count: 32))
        cache.keep(Self.found(rotated), tokenHash: hash, ticket: cache.ticket())
        cache.keep(Self.found(other), tokenHash: otherHash, ticket: cache.ticket())
        cache.keep(Self.found(rotated), tokenHash: newHash, ticket: cache.ticket())
        #expect(cache.count == 2 && cache.cached(hash) == nil && cache.cached(newHash)?.source.id == rotated)
        cache.keep(Self.found(taker), tokenHash: newHash, ticket: cache.ticket())
        cache.invalidate(source: rotated)
        #expect(cache.cached(newHash)?.source.id == taker, "the rotated source no longer owns the hash")
        cache.invalidate(source: taker)
        #expect(cache.count == 1 && cache.cached(otherHash)?.source.id == other)
        // Past the capacity the oldest go; the survivors still drop on their own change.
        let sources = (0..<10).map { _ in UUID() }
        for (n, source) in sources.enumerated() {
            clock.advance(.milliseconds(1))
            cache.keep(Self.found(source), tokenHash: Array(repeating: UInt8(100 + n), count: 32), ticket: cache.ticket())
        }
        #expect(cache.count == 9 && cache.cached(otherHash) == nil)
        cache.invalidate(source: other)
        cache.invalidate(source: sources[9])
        #expect(cache.count == 8 && cache.cached(Array(repeating: UInt8(109), count: 32)) == nil)
        #expect(cache.cached(Array(repeating: UInt8(101), count: 32))?.source.id == sources[1])
    }

    @Test func overCapacityTheLongestHeldGoFirst() {
        let cache = cache(capacity: 10)
        cache.trustNotifications(until: clock.now + .seconds(600))
        let hashes = (0..<11).map { Array(repeating: UInt8($0), count: 32) }
        for hash in hashes {
            cache.keep(Self.found(), tokenHash: hash, ticket: cache.ticket())
            clock.advance(.milliseconds(1))
        }
        // Down to nine tenths, the oldest two gone.
        #expect(cache.count == 9)
        #expect(cache.cached(hashes[0]) == nil && cache.cached(hashes[1]) == nil)
        #expect(hashes[2...].allSatisfy { cache.cached($0) != nil })
    }
}
