package import Foundation
public import HeraldSupport
public import Logging
import Postgres
public import ServiceLifecycle

/// Keeps a cache in step with PostgreSQL: a session of its own listens on the cache's
/// channel, where triggers name what changed, and the cache drops it a moment after the
/// commit. A worker's `Directory` listens on `herald_directory` (migration 0021), the API's
/// inbound sources on `herald_inbound_sources` (migration 0022).
///
/// Trust is a lease: every half `lease` the session notifies itself on a channel of its own
/// and only a probe that comes back, sent and received by this very server session,
/// extends the cache's trust by `lease` from its sending. A stalled session lets the
/// lease run out; a lost one, or one a pooler moved between server sessions, drops every
/// entry and is opened again.
public struct ChangeListener: Service, CustomStringConvertible {
    /// What a listener hears, and what it says in the log.
    public struct Feed: Sendable {
        /// The channel the triggers notify.
        public var channel: String
        /// The triggers that announce every change: the lease holds only while all of them
        /// exist and fire (checked with every probe), so a database not yet migrated, or a
        /// trigger disabled, is never trusted.
        public var triggers: [String]
        /// For the log: "endpoint changes".
        public var changes: String
        /// For the log, what happens without the notifications.
        public var meanwhile: String

        /// A worker's endpoint lists (migration 0021).
        public static let directory = Feed(
            channel: "herald_directory",
            triggers: [
                "endpoints_directory_added_or_removed", "endpoints_directory_changed", "endpoints_directory_emptied", "tenants_directory_removed",
                "tenants_directory_emptied",
            ],
            changes: "endpoint changes", meanwhile: "endpoint lists are read again every few seconds")
        /// The API's inbound sources (migration 0022).
        public static let inboundSources = Feed(
            channel: "herald_inbound_sources", triggers: ["inbound_sources_changed", "inbound_sources_emptied"],
            changes: "inbound source changes", meanwhile: "each inbound request looks its source up")
    }

    let databaseURL: String
    let feed: Feed
    let cache: any NotifiedCache
    let lease: Duration
    let retryDelay: Duration
    let logger: Logger

    public var description: String { "ChangeListener(\(feed.channel))" }

    /// `lease` should not exceed the cache's short lifetime: a change missed by a stalled
    /// session is trusted away at most that long. Each wait on the socket lasts half of it,
    /// which is how soon a shutdown is noticed; the session fails after 10 s of a silent peer.
    public init(
        databaseURL: String, feed: Feed, cache: any NotifiedCache, lease: Duration = .seconds(4), retryDelay: Duration = .seconds(2), logger: Logger
    ) {
        self.databaseURL = databaseURL
        self.feed = feed
        self.cache = cache
        self.lease = lease
        self.retryDelay = retryDelay
        self.logger = logger
    }

    /// A worker's endpoint lists.
    public init(databaseURL: String, directory: Directory, lease: Duration = .seconds(4), retryDelay: Duration = .seconds(2), logger: Logger) {
        self.init(databaseURL: databaseURL, feed: .directory, cache: directory, lease: lease, retryDelay: retryDelay, logger: logger)
    }

    public func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var connection: Connection?
            do {
                let session = try await Connection.connect(
                    to: databaseURL, applicationName: "herald-\(feed.channel.dropFirst("herald_".count).replacingOccurrences(of: "_", with: "-"))",
                    peerTimeout: .seconds(10), logger: logger)
                connection = session
                try await listen(on: session, failing: &failing)
            } catch {
                if !failing {
                    logger.warning(
                        "not notified of \(feed.changes); \(feed.meanwhile) until the session is back", metadata: ["error": "\(error)"])
                }
                failing = true
            }
            cache.distrustNotifications()
            await connection?.close()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: retryDelay) }
        }
    }

    /// Listens until shutdown; throws when the session fails or turns out not to be one.
    private func listen(on session: Connection, failing: inout Bool) async throws {
        let probeChannel = "\(feed.channel)_probe_\(UInt64.random(in: .min ... .max))"
        // What was cached before the first probe comes back is not trusted: it lives the
        // short lifetime, and what is read under trust replaces it.
        try await session.execute(script: "LISTEN \(feed.channel); LISTEN \(probeChannel)")
        let server = try await session.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0)
        let interval = lease / 2
        var sent: ContinuousClock.Instant?
        var returned = ContinuousClock.now
        var warnedOfSilence = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = ContinuousClock.now
            if sent.map({ now - $0 >= interval }) ?? true {
                let probing = try await session.query(
                    """
                    SELECT pg_backend_pid(),
                           (SELECT count(DISTINCT tgname) FROM pg_trigger WHERE tgname = ANY(\(feed.triggers)::text[]) AND tgenabled IN ('O', 'A'))::int
                    FROM pg_notify(\(probeChannel), 'probe')
                    """)
                guard try probing[0].decode(Int32.self, 0) == server else { throw MovedSession() }
                guard try probing[0].decode(Int.self, 1) == feed.triggers.count else { throw MissingTriggers(feed: feed) }
                sent = now
            }
            if now - returned > lease * 3, !warnedOfSilence {
                logger.warning("the notification session's probes do not come back; \(feed.meanwhile)")
                warnedOfSilence = true
            }
            // In commit order: a change notified before the probe is applied before the probe
            // extends the trust.
            for notification in try await session.notifications(waitingAtMost: interval) {
                if notification.channel == probeChannel {
                    guard notification.sender == server, let sent else { continue }
                    cache.trustNotifications(until: sent + lease)
                    returned = .now
                    if failing || warnedOfSilence { logger.notice("notified of \(feed.changes) again") }
                    (failing, warnedOfSilence) = (false, false)
                } else if notification.channel == feed.channel {
                    cache.notified(notification.payload)
                }
            }
        }
    }
}

/// A pooler gave the listening session's statements to another server session: `LISTEN`
/// does not hold there.
struct MovedSession: Error, CustomStringConvertible {
    var description: String { "the notification session's statements ran on another server session (a pooler in transaction mode?)" }
}

/// The triggers that would announce changes are missing (the database is not migrated) or
/// disabled: what the session hears is not every change.
struct MissingTriggers: Error, CustomStringConvertible {
    var feed: ChangeListener.Feed
    var description: String {
        "the triggers that announce \(feed.changes) on \(feed.channel) (\(feed.triggers.joined(separator: ", "))) are missing or disabled; run `herald migrate`"
    }
}

/// What a notification on `herald_directory` says.
package enum DirectoryChange: Equatable {
    case tenant(UUID)
    /// A table was emptied (`TRUNCATE`).
    case all
    case unknown

    package init(_ payload: String) {
        if payload == "*" {
            self = .all
        } else if let tenant = UUID(uuidString: payload) {
            self = .tenant(tenant)
        } else {
            self = .unknown
        }
    }
}
