package import Foundation
public import Logging
import Postgres
public import ServiceLifecycle

/// Keeps a worker's `Directory` in step with PostgreSQL: a session of its own listens on
/// `herald_directory`, where migration 0021's triggers name the tenant whose endpoints
/// changed (any write, by the API, a worker or an operator's SQL), and the tenant's entry
/// is dropped a moment after the commit.
///
/// Trust is a lease, not a state: every `probeInterval` the session notifies itself, and
/// only a probe that comes back extends the directory's trust by `lease`. A session that
/// stalls (a half-open socket) lets the lease run out and the directory fall back to its
/// short lifetime; a session lost drops every entry, since what is notified until the next
/// session listens is missed (entries read before its first probe returns live the short
/// lifetime). A session behind a pooler in transaction mode, where `LISTEN` does not hold,
/// never sees its probe and is never trusted.
public struct DirectoryListener: Service, CustomStringConvertible {
    public static let channel = "herald_directory"

    let databaseURL: String
    let directory: Directory
    let probeInterval: Duration
    let lease: Duration
    let retryDelay: Duration
    let logger: Logger

    public var description: String { "DirectoryListener" }

    /// `probeInterval` also bounds each wait on the socket, so a shutdown is noticed within it.
    public init(
        databaseURL: String, directory: Directory, probeInterval: Duration = .seconds(2), lease: Duration? = nil,
        retryDelay: Duration = .seconds(2), logger: Logger
    ) {
        self.databaseURL = databaseURL
        self.directory = directory
        self.probeInterval = probeInterval
        self.lease = lease ?? probeInterval * 3
        self.retryDelay = retryDelay
        self.logger = logger
    }

    public func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            var connection: Connection?
            do {
                let session = try await Connection.connect(to: databaseURL, applicationName: "herald-directory", logger: logger)
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

    /// Listens until shutdown; throws when the session fails.
    private func listen(on session: Connection, failing: inout Bool) async throws {
        // What was cached before the first probe comes back is not trusted: it lives the
        // short lifetime, and what is read under trust replaces it.
        try await session.execute(script: "LISTEN \(Self.channel)")
        if failing { logger.notice("notified of endpoint changes again") }
        failing = false
        let probe = "probe:\(UInt64.random(in: .min ... .max))"
        var sent: ContinuousClock.Instant?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = ContinuousClock.now
            if sent.map({ now - $0 >= probeInterval }) ?? true {
                try await session.query("SELECT pg_notify(\(Self.channel), \(probe))")
                sent = now
            }
            for notification in try await session.notifications(waitingAtMost: probeInterval) where notification.channel == Self.channel {
                // In commit order: a change notified before the probe is applied before the
                // probe extends the trust.
                switch DirectoryChange(notification.payload, probe: probe) {
                case .tenant(let tenant): directory.invalidate(tenant: tenant)
                case .all: directory.invalidateAll()
                case .probe: if let sent { directory.trustNotifications(until: sent + lease) }
                case .unknown: break
                }
            }
        }
    }
}

/// What a notification on `herald_directory` says.
package enum DirectoryChange: Equatable {
    case tenant(UUID)
    /// A table was emptied (`TRUNCATE`).
    case all
    /// This listener's own probe.
    case probe
    /// Another listener's probe, or anything else.
    case unknown

    package init(_ payload: String, probe: String) {
        if payload == probe {
            self = .probe
        } else if payload == "*" {
            self = .all
        } else if let tenant = UUID(uuidString: payload) {
            self = .tenant(tenant)
        } else {
            self = .unknown
        }
    }
}
