package import Foundation
public import Logging
import Postgres
public import ServiceLifecycle

/// Keeps a worker's `Directory` in step with PostgreSQL: a session of its own listens on
/// `herald_directory`, where migration 0021's triggers name each tenant whose endpoints
/// changed, and the tenant's entry is dropped a moment after the commit.
///
/// Trust is a lease: every half `lease` the session notifies itself on a channel of its own
/// and only a probe that comes back, sent and received by this very server session,
/// extends the directory's trust by `lease` from its sending. A stalled session lets the
/// lease run out; a lost one, or one a pooler moved between server sessions, drops every
/// entry and is opened again.
public struct DirectoryListener: Service, CustomStringConvertible {
    public static let channel = "herald_directory"

    let databaseURL: String
    let directory: Directory
    let lease: Duration
    let retryDelay: Duration
    let logger: Logger

    public var description: String { "DirectoryListener" }

    /// `lease` should not exceed the directory's short lifetime: a change missed by a stalled
    /// session is trusted away at most that long. Each wait on the socket lasts half of it,
    /// which is how soon a shutdown is noticed; the session fails after 10 s of a silent peer.
    public init(databaseURL: String, directory: Directory, lease: Duration = .seconds(4), retryDelay: Duration = .seconds(2), logger: Logger) {
        self.databaseURL = databaseURL
        self.directory = directory
        self.lease = lease
        self.retryDelay = retryDelay
        self.logger = logger
    }

    public func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var connection: Connection?
            do {
                let session = try await Connection.connect(
                    to: databaseURL, applicationName: "herald-directory", peerTimeout: .seconds(10), logger: logger)
                connection = session
                try await listen(on: session, failing: &failing)
            } catch {
                if !failing {
                    logger.warning(
                        "not notified of endpoint changes; endpoint lists are read again every few seconds until the session is back",
                        metadata: ["error": "\(error)"])
                }
                failing = true
            }
            directory.distrustNotifications()
            await connection?.close()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: retryDelay) }
        }
    }

    /// Listens until shutdown; throws when the session fails or turns out not to be one.
    private func listen(on session: Connection, failing: inout Bool) async throws {
        let probeChannel = "herald_directory_probe_\(UInt64.random(in: .min ... .max))"
        // What was cached before the first probe comes back is not trusted: it lives the
        // short lifetime, and what is read under trust replaces it.
        try await session.execute(script: "LISTEN \(Self.channel); LISTEN \(probeChannel)")
        let server = try await session.query("SELECT pg_backend_pid()")[0].decode(Int32.self, 0)
        let interval = lease / 2
        var sent: ContinuousClock.Instant?
        var returned = ContinuousClock.now
        var warnedOfSilence = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = ContinuousClock.now
            if sent.map({ now - $0 >= interval }) ?? true {
                let probing = try await session.query("SELECT pg_backend_pid() FROM pg_notify(\(probeChannel), 'probe')")
                guard try probing[0].decode(Int32.self, 0) == server else { throw MovedSession() }
                sent = now
            }
            if now - returned > lease * 3, !warnedOfSilence {
                logger.warning("the notification session's probes do not come back; endpoint lists are read again every few seconds")
                warnedOfSilence = true
            }
            // In commit order: a change notified before the probe is applied before the probe
            // extends the trust.
            for notification in try await session.notifications(waitingAtMost: interval) {
                if notification.channel == probeChannel {
                    guard notification.sender == server, let sent else { continue }
                    directory.trustNotifications(until: sent + lease)
                    returned = .now
                    if failing || warnedOfSilence { logger.notice("notified of endpoint changes again") }
                    (failing, warnedOfSilence) = (false, false)
                } else if notification.channel == Self.channel {
                    switch DirectoryChange(notification.payload) {
                    case .tenant(let tenant): directory.invalidate(tenant: tenant)
                    case .all: directory.invalidateAll()
                    case .unknown: break
                    }
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
