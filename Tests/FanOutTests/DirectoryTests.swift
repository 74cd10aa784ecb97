@testable import FanOut
import Foundation
import HeraldSupport
import Synchronization
import Testing
import TestSupport

/// The directory's cache on a clock of the test's: which lifetime an entry gets, and what
/// drops it. `reads` counts the loads, i.e. the queries a worker would make.
@Suite struct DirectoryTests {
    /// The clock, the loads counted, and what runs inside a load.
    final class World: Sendable {
        let clock = Mutex(ContinuousClock.now)
        let reads = Mutex([UUID: Int]())
        /// Runs inside a load, before it returns (a change committed while it reads).
        let during = Mutex<(@Sendable () -> Void)?>(nil)
    }

    struct Fixture {
        let world = World()
        let tenants = (0..<4).map { _ in UUID() }
        let directory: Directory

        init(shortLifetime: Duration = .seconds(5), longLifetime: Duration = .seconds(600), capacity: Int = 100) {
            let world = self.world
            directory = Directory(
                timeToLive: shortLifetime, notifiedTimeToLive: longLifetime, capacity: capacity, now: { world.clock.withLock { $0 } }
            ) { tenant in
                world.reads.withLock { $0[tenant, default: 0] += 1 }
                world.during.withLock { $0 }?()
                return [Endpoint(id: UUID(), tenantID: tenant, url: "https://example.com/hook", eventTypes: ["*"], secret: "s")]
            }
        }

        func advance(_ duration: Duration) { world.clock.withLock { $0 += duration } }
        var now: ContinuousClock.Instant { world.clock.withLock { $0 } }
        func reads(_ tenant: UUID) -> Int { world.reads.withLock { $0[tenant] ?? 0 } }

        /// Asks for `tenant` and returns how many loads that took (0 or 1).
        func ask(_ tenant: UUID) async throws -> Int {
            let before = reads(tenant)
            _ = try await directory.endpoints(tenant: tenant)
            return reads(tenant) - before
        }

        /// Trusts notifications for the next `lease`, as a listener's probe does.
        func probeCameBack(lease: Duration = .seconds(6)) { directory.trustNotifications(until: now + lease) }
    }

    @Test func withoutNotificationsAnEntryLivesTheShortLifetime() async throws {
        let fixture = Fixture()
        let tenant = fixture.tenants[0]
        #expect(try await fixture.ask(tenant) == 1)
        fixture.advance(.seconds(4))
        #expect(try await fixture.ask(tenant) == 0)
        fixture.advance(.seconds(1))
        #expect(try await fixture.ask(tenant) == 1)
    }

    @Test func whileTrustedAnEntryLivesLongUntilItsTenantChanges() async throws {
        let fixture = Fixture()
        let (tenant, other) = (fixture.tenants[0], fixture.tenants[1])
        fixture.probeCameBack(lease: .seconds(3600))
        #expect(try await fixture.ask(tenant) == 1)
        #expect(try await fixture.ask(other) == 1)
        fixture.advance(.seconds(599))
        #expect(try await fixture.ask(tenant) == 0)
        fixture.directory.invalidate(tenant: tenant)
        #expect(try await fixture.ask(tenant) == 1)
        #expect(try await fixture.ask(other) == 0)
        fixture.advance(.seconds(1))
        #expect(try await fixture.ask(other) == 1)
    }

    /// The read may have begun before the change's commit and missed it: what it returns is
    /// not kept. A change to another tenant meanwhile leaves it trusted.
    @Test func anEntryReadWhileItsTenantChangedIsNotKept() async throws {
        let fixture = Fixture()
        let (tenant, other) = (fixture.tenants[0], fixture.tenants[1])
        fixture.probeCameBack(lease: .seconds(3600))
        fixture.world.during.withLock { $0 = { [directory = fixture.directory] in directory.invalidate(tenant: tenant) } }
        #expect(try await fixture.ask(tenant) == 1)
        #expect(fixture.directory.cachedTenants == 0)
        fixture.world.during.withLock { $0 = { [directory = fixture.directory] in directory.invalidate(tenant: other) } }
        #expect(try await fixture.ask(tenant) == 1)
        fixture.world.during.withLock { $0 = nil }
        fixture.advance(.seconds(60))
        #expect(try await fixture.ask(tenant) == 0)
    }

    @Test func entriesReadBeforeTheFirstProbeGetTheShortLifetime() async throws {
        let fixture = Fixture()
        let tenant = fixture.tenants[0]
        #expect(try await fixture.ask(tenant) == 1)
        fixture.probeCameBack(lease: .seconds(3600))
        fixture.advance(.seconds(5))
        #expect(try await fixture.ask(tenant) == 1)
        fixture.advance(.seconds(60))
        #expect(try await fixture.ask(tenant) == 0)
    }

    /// A listener whose probes stop coming back (a stalled session) is no longer believed:
    /// its entries fall back to the short lifetime without being dropped, and live long
    /// again when a probe returns (the changes queued meanwhile arrive before it).
    @Test func whenTheLeaseRunsOutEntriesFallBackToTheShortLifetime() async throws {
        let fixture = Fixture()
        let (tenant, other) = (fixture.tenants[0], fixture.tenants[1])
        fixture.probeCameBack(lease: .seconds(6))
        #expect(try await fixture.ask(tenant) == 1)
        #expect(try await fixture.ask(other) == 1)
        fixture.advance(.seconds(5))
        #expect(try await fixture.ask(tenant) == 0)
        fixture.advance(.seconds(1))
        #expect(try await fixture.ask(tenant) == 1)
        fixture.probeCameBack(lease: .seconds(6))
        fixture.advance(.seconds(5))
        #expect(try await fixture.ask(other) == 0)
        // Read while the lease had run out: the short lifetime, though trusted again.
        #expect(try await fixture.ask(tenant) == 1)
    }

    @Test func aLostSessionDropsEverythingAndTrustsNothing() async throws {
        let fixture = Fixture()
        fixture.probeCameBack(lease: .seconds(3600))
        for tenant in fixture.tenants { #expect(try await fixture.ask(tenant) == 1) }
        fixture.directory.distrustNotifications()
        #expect(fixture.directory.cachedTenants == 0)
        for tenant in fixture.tenants { #expect(try await fixture.ask(tenant) == 1) }
        fixture.advance(.seconds(5))
        #expect(try await fixture.ask(fixture.tenants[0]) == 1)
    }

    @Test func aTruncatedTableDropsEverything() async throws {
        let fixture = Fixture()
        fixture.probeCameBack(lease: .seconds(3600))
        for tenant in fixture.tenants { #expect(try await fixture.ask(tenant) == 1) }
        fixture.directory.invalidateAll()
        for tenant in fixture.tenants { #expect(try await fixture.ask(tenant) == 1) }
        for tenant in fixture.tenants { #expect(try await fixture.ask(tenant) == 0) }
    }

    /// Past its capacity the directory keeps the tenants read last.
    @Test func overCapacityTheLongestHeldGo() async throws {
        let fixture = Fixture(capacity: 10)
        fixture.probeCameBack(lease: .seconds(3600))
        let tenants = (0..<11).map { _ in UUID() }
        for tenant in tenants {
            #expect(try await fixture.ask(tenant) == 1)
            fixture.advance(.seconds(1))
        }
        #expect(fixture.directory.cachedTenants == 9)
        #expect(try await fixture.ask(tenants[10]) == 0)
        #expect(try await fixture.ask(tenants[2]) == 0)
        #expect(try await fixture.ask(tenants[1]) == 1)
        #expect(try await fixture.ask(tenants[0]) == 1)
    }

    @Test func aZeroLifetimeCachesNothing() async throws {
        let fixture = Fixture(shortLifetime: .zero)
        fixture.probeCameBack(lease: .seconds(3600))
        let tenant = fixture.tenants[0]
        #expect(try await fixture.ask(tenant) == 1)
        #expect(try await fixture.ask(tenant) == 1)
        #expect(fixture.directory.cachedTenants == 0)
    }

    @Test func anUnknownTenantIsNotCached() async throws {
        let reads = Mutex(0)
        let directory = Directory { _ in
            reads.withLock { $0 += 1 }
            return nil
        }
        directory.trustNotifications(until: .now + .seconds(3600))
        let tenant = UUID()
        #expect(try await directory.endpoints(tenant: tenant) == nil)
        #expect(try await directory.endpoints(tenant: tenant) == nil)
        #expect(reads.withLock { $0 } == 2)
    }

    @Test func notificationsSayWhatChanged() {
        let tenant = UUID()
        #expect(DirectoryChange(tenant.uuidString.lowercased()) == .tenant(tenant))
        #expect(DirectoryChange("*") == .all)
        #expect(DirectoryChange("probe") == .unknown)
        #expect(DirectoryChange("") == .unknown)
    }
}

/// Tenants missing from the cache are read together, each once, and a failure stays with
/// what it concerns.
@Suite struct DirectoryReadTests {
    /// A reader that holds its first read until `release`, and notes every read's tenants.
    final class Reader: Sendable {
        let reads = Mutex([[UUID]]())
        let holding = OneShot<Void>()
        let released = OneShot<Void>()
        /// Tenants whose read fails alone; `down` fails whole reads.
        let broken: Set<UUID>
        let down = Mutex(false)

        init(broken: Set<UUID> = []) { self.broken = broken }

        func read(_ tenants: [UUID]) async throws -> [UUID: Result<[Endpoint], any Error>] {
            let first = reads.withLock { reads in
                reads.append(tenants)
                return reads.count == 1
            }
            if first {
                _ = holding.resume(returning: ())
                try await released.wait {}
            }
            if down.withLock({ $0 }) { throw ReadFailed(tenant: nil) }
            var found: [UUID: Result<[Endpoint], any Error>] = [:]
            for tenant in tenants {
                found[tenant] = broken.contains(tenant)
                    ? .failure(ReadFailed(tenant: tenant))
                    : .success([Endpoint(id: UUID(), tenantID: tenant, url: "https://example.com/hook", eventTypes: ["*"], secret: "s")])
            }
            return found
        }
    }

    struct ReadFailed: Error, Equatable {
        var tenant: UUID?
    }

    /// Whether, within ten seconds, `queued` askers wait for the next read and `onTheRead`
    /// for the one in flight.
    static func awaitWaiting(_ directory: Directory, queued: Int, onTheRead: Int) async throws -> Bool {
        try await within(.seconds(10)) {
            while directory.waiting != (queued, onTheRead) { try await Task.sleep(for: .milliseconds(1)) }
            return true
        } == true
    }

    /// Asks for `tenants` in tasks of their own once the first read is in flight, waits
    /// until `queued` askers wait for the next read and `onTheRead` for the first, then lets
    /// the first read return. The answers in the order asked.
    static func askWhileTheFirstReadHolds(
        _ directory: Directory, _ reader: Reader, first: UUID, then tenants: [UUID], queued: Int, onTheRead: Int = 1
    ) async throws -> [(UUID, Result<[Endpoint]?, any Error>)] {
        let firstAsk = Task { try await directory.endpoints(tenant: first) }
        try await reader.holding.wait {}
        let asks = tenants.map { tenant in
            Task { () -> (UUID, Result<[Endpoint]?, any Error>) in
                do {
                    return (tenant, .success(try await directory.endpoints(tenant: tenant)))
                } catch {
                    return (tenant, .failure(error))
                }
            }
        }
        #expect(try await Self.awaitWaiting(directory, queued: queued, onTheRead: onTheRead), "waiting \(directory.waiting)")
        _ = reader.released.resume(returning: ())
        _ = await firstAsk.result
        var results: [(UUID, Result<[Endpoint]?, any Error>)] = []
        for ask in asks { results.append(await ask.value) }
        return results
    }

    @Test func tenantsAskedWhileAReadIsInFlightAreReadTogetherAndOnce() async throws {
        let reader = Reader()
        let directory = Directory(read: reader.read)
        let first = UUID()
        let others = (0..<150).map { _ in UUID() }
        // The first tenant asked again meanwhile joins its read; the others queue, one twice.
        let results = try await Self.askWhileTheFirstReadHolds(
            directory, reader, first: first, then: others + [first, others[0]], queued: 151, onTheRead: 2)
        #expect(results.count == 152)
        #expect(results.allSatisfy { tenant, result in (try? result.get())??.map(\.tenantID) == [tenant] })
        let reads = reader.reads.withLock { $0 }
        #expect(reads.first == [first])
        #expect(reads.dropFirst().map(\.count) == [100, 50])
        #expect(Array(reads.joined()).count == 151 && Set(reads.joined()) == Set(others + [first]))
        // Both askers of a tenant got the answer of its one read.
        let answersForFirst = results.filter { $0.0 == others[0] }.compactMap { try? $0.1.get()?.first?.id }
        #expect(answersForFirst.count == 2 && Set(answersForFirst).count == 1)
        #expect(directory.cachedTenants == 151)
    }

    /// Asked again after it changed, a tenant whose read is in flight is read once more:
    /// the read in flight may predate the change (a worker checks afresh before it drops a
    /// delivery for an endpoint it does not know).
    @Test func anAskAfterAChangeDoesNotJoinTheReadInFlight() async throws {
        let reader = Reader()
        let directory = Directory(read: reader.read)
        let tenant = UUID()
        let before = Task { try await directory.endpoints(tenant: tenant) }
        try await reader.holding.wait {}
        directory.invalidate(tenant: tenant)
        let after = Task { try await directory.endpoints(tenant: tenant) }
        #expect(try await Self.awaitWaiting(directory, queued: 1, onTheRead: 1))
        _ = reader.released.resume(returning: ())
        let (old, new) = (try await before.value?.first?.id, try await after.value?.first?.id)
        #expect(reader.reads.withLock { $0 } == [[tenant], [tenant]])
        #expect(old != nil && new != nil && old != new)
        // The second read's answer is the one kept.
        #expect(try await directory.endpoints(tenant: tenant)?.first?.id == new)
    }

    @Test func aCancelledAskerStopsWaitingWhileTheReadGoesOn() async throws {
        let reader = Reader()
        let directory = Directory(read: reader.read)
        let tenant = UUID()
        let staying = Task { try await directory.endpoints(tenant: tenant) }
        try await reader.holding.wait {}
        let leaving = Task { try await directory.endpoints(tenant: tenant) }
        #expect(try await Self.awaitWaiting(directory, queued: 0, onTheRead: 2))
        leaving.cancel()
        let left = try await within(.seconds(10)) { () -> Bool? in
            if case .failure(let error) = await leaving.result { return error is CancellationError }
            return false
        }
        #expect(left == true)
        _ = reader.released.resume(returning: ())
        #expect(try await staying.value?.count == 1)
    }

    @Test func aTenantThatCannotBeReadFailsAlone() async throws {
        let (bad, good) = (UUID(), UUID())
        let reader = Reader(broken: [bad])
        let directory = Directory(read: reader.read)
        let results = try await Self.askWhileTheFirstReadHolds(directory, reader, first: UUID(), then: [bad, good], queued: 2)
        #expect(reader.reads.withLock { $0.count } == 2)
        #expect(throws: ReadFailed(tenant: bad)) { try results[0].1.get() }
        #expect((try results[1].1.get())?.map(\.tenantID) == [good])
        #expect(directory.cachedTenants == 2)
    }

    /// The database down: everyone waiting on the read fails with its error, nothing is
    /// cached, and the next ask reads again.
    @Test func aFailedReadFailsItsWaitersAndTheNextAskReadsAgain() async throws {
        let reader = Reader()
        reader.down.withLock { $0 = true }
        let directory = Directory(read: reader.read)
        let tenant = UUID()
        let results = try await Self.askWhileTheFirstReadHolds(directory, reader, first: UUID(), then: [tenant], queued: 1)
        #expect(throws: ReadFailed(tenant: nil)) { try results[0].1.get() }
        #expect(directory.cachedTenants == 0)
        reader.down.withLock { $0 = false }
        #expect(try await directory.endpoints(tenant: tenant)?.count == 1)
        #expect(reader.reads.withLock { $0.count } == 3)
    }

    /// A tenant that does not exist is answered nil by its read and not cached.
    @Test func aTenantMissingFromTheAnswerIsUnknown() async throws {
        let directory = Directory { _ in [:] }
        let tenant = UUID()
        #expect(try await directory.endpoints(tenant: tenant) == nil)
        #expect(directory.cachedTenants == 0)
    }
}
