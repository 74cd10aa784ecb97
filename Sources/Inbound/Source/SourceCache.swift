package import Foundation
import HeraldSupport
import Synchronization

/// The inbound sources the API has looked up, by the SHA-256 of their URL's token, so that
/// a sender's request costs no lookup and no parsing of the source's settings.
///
/// A source is kept only while a `ChangeListener`'s lease vouches that every change to a
/// source is notified (migration 0022), and only if nothing changed while it was read:
/// without the lease every request looks its source up, as if there were no cache. A token
/// rotated out but still in its grace is not kept either: it is looked up until it expires.
package final class SourceCache: NotifiedCache {
    /// A source as a request needs it: its settings and its verification secret, opened
    /// (never shown: its description names the source only).
    package struct Found: Sendable, Equatable, CustomStringConvertible {
        package var source: InboundSource
        package var secret: String

        package init(source: InboundSource, secret: String) {
            self.source = source
            self.secret = secret
        }

        package var description: String { "source \(source.id.uuidString.lowercased()) (secret withheld)" }
    }

    /// Taken before a lookup: what the lookup finds is kept only if no change came since.
    package struct Ticket: Sendable {
        let changes: Int
    }

    private struct Entry {
        var found: Found
        var fetchedAt: ContinuousClock.Instant
    }

    private struct State {
        var entries: [[UInt8]: Entry] = [:]
        /// The hash each kept source is kept under: one per source, since a token in its
        /// grace is never kept.
        var hashes: [UUID: [UInt8]] = [:]
        /// Counts every change notified or made here: a lookup that saw it move may have
        /// read a source as it was before the change.
        var changes = 0
        var trustedUntil: ContinuousClock.Instant?

        func trusted(at now: ContinuousClock.Instant) -> Bool { trustedUntil.map { now < $0 } ?? false }

        mutating func changed(_ source: UUID) {
            changes += 1
            if let hash = hashes.removeValue(forKey: source) { entries[hash] = nil }
        }

        mutating func changedAll() {
            changes += 1
            entries = [:]
            hashes = [:]
        }

        mutating func keep(_ entry: Entry, under hash: [UInt8]) {
            let source = entry.found.source.id
            if let old = hashes[source], old != hash { entries[old] = nil }
            if let replaced = entries[hash]?.found.source.id, replaced != source { hashes[replaced] = nil }
            entries[hash] = entry
            hashes[source] = hash
        }

        mutating func drop(_ hash: [UInt8]) {
            if let entry = entries.removeValue(forKey: hash) { hashes[entry.found.source.id] = nil }
        }
    }

    private let lifetime: Duration
    private let capacity: Int
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex(State())

    /// An entry is read again after `lifetime` whatever the notifications say; at most
    /// `capacity` sources are kept. `now` is the clock (a test's own).
    package init(lifetime: Duration = .seconds(600), capacity: Int = 10_000, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        precondition(capacity > 0)
        self.lifetime = lifetime
        self.capacity = capacity
        self.now = now
    }

    /// The source of a token's hash, if it is kept and the lease holds.
    package func cached(_ tokenHash: [UInt8]) -> Found? {
        let now = now()
        return state.withLock { state in
            guard state.trusted(at: now), let entry = state.entries[tokenHash], now - entry.fetchedAt < lifetime else { return nil }
            return entry.found
        }
    }

    /// Before a lookup; nil when nothing it finds may be kept (the lease does not hold).
    package func ticket() -> Ticket? {
        let now = now()
        return state.withLock { $0.trusted(at: now) ? Ticket(changes: $0.changes) : nil }
    }

    /// Keeps what a lookup found under the token's current hash, unless something changed
    /// since `ticket` or the lease ran out meanwhile.
    package func keep(_ found: Found, tokenHash: [UInt8], ticket: Ticket?) {
        guard let ticket else { return }
        let now = now()
        state.withLock { state in
            guard state.trusted(at: now), state.changes == ticket.changes else { return }
            state.keep(Entry(found: found, fetchedAt: now), under: tokenHash)
            guard state.entries.count > capacity else { return }
            // Over capacity: the entries past their lifetime go, then the longest held, down
            // to nine tenths, so that eviction runs once per tenth of the capacity.
            for (hash, entry) in state.entries where now - entry.fetchedAt >= lifetime { state.drop(hash) }
            let keep = capacity * 9 / 10
            guard state.entries.count > keep else { return }
            for (hash, _) in state.entries.sorted(by: { $0.value.fetchedAt < $1.value.fetchedAt }).prefix(state.entries.count - keep) {
                state.drop(hash)
            }
        }
    }

    /// Drops the source (this process changed or deleted it, or PostgreSQL said so); a
    /// lookup in flight is not kept.
    package func invalidate(source: UUID) {
        state.withLock { $0.changed(source) }
    }

    /// A notification on `herald_inbound_sources`: the source it names, or every source.
    package func notified(_ payload: String) {
        if payload == "*" {
            state.withLock { $0.changedAll() }
        } else if let source = UUID(uuidString: payload) {
            invalidate(source: source)
        }
    }

    package func trustNotifications(until: ContinuousClock.Instant) {
        state.withLock { $0.trustedUntil = until }
    }

    package func distrustNotifications() {
        state.withLock { state in
            state.trustedUntil = nil
            state.changedAll()
        }
    }

    /// Sources kept now.
    package var count: Int { state.withLock { $0.entries.count } }
}
