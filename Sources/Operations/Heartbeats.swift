public import Foundation
import HeraldSupport
public import Logging
public import Postgres
public import ServiceLifecycle

/// A worker replica as the operator console shows it.
public struct ReplicaView: Sendable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int
    public var version: String
    public var concurrency: Int
    public var inFlight: Int
    public var consuming: Bool
    public var startedAt: Date
    public var seenAt: Date
    /// Whether its last heartbeat is recent (within three intervals).
    public var alive: Bool
}

/// The worker replicas' heartbeats: the only code on `worker_heartbeats`.
public struct Heartbeats: Sendable {
    let pool: Pool

    public init(pool: Pool) {
        self.pool = pool
    }

    /// What a replica says about itself now.
    public struct Beat: Sendable, Equatable {
        public var inFlight: Int
        public var consuming: Bool
        /// It counts on being the only live replica (it sends events before storing them).
        public var alone: Bool

        public init(inFlight: Int, consuming: Bool, alone: Bool = false) {
            self.inFlight = inFlight
            self.consuming = consuming
            self.alone = alone
        }
    }

    func beat(_ replica: Heartbeat.Identity, _ beat: Beat) async throws {
        try await pool.query(
            """
            INSERT INTO worker_heartbeats (id, host, pid, version, concurrency, in_flight, consuming, alone, started_at, seen_at)
            VALUES (\(replica.id), \(replica.host), \(replica.pid), \(replica.version), \(replica.concurrency), \(beat.inFlight),
                    \(beat.consuming), \(beat.alone), \(replica.startedAt), now())
            ON CONFLICT (id) DO UPDATE SET in_flight = excluded.in_flight, consuming = excluded.consuming, alone = excluded.alone, seen_at = now()
            """)
    }

    /// A replica alive now (a heartbeat within three intervals).
    public struct Live: Sendable, Equatable {
        public var id: String
        /// Consuming: it shares an endpoint's rate limit and the work queue's shards. One
        /// that is not may start any moment, so it still keeps another from being alone.
        public var consuming: Bool
        /// It counts on being the only live replica, and said so lately.
        public var alone: Bool
    }

    /// The replicas alive now (a heartbeat within three `interval`s), by id; one counts on
    /// being alone if its heartbeat said so within two `look`s (it writes one each look
    /// while it does: a replica that died saying so holds no one back for long).
    func liveReplicas(interval: Duration, look: Duration) async throws -> [Live] {
        let stale = (interval * 3).seconds, recent = (look * 2).seconds
        return try await pool.query(
            """
            SELECT id, consuming, alone AND seen_at > now() - make_interval(secs => \(recent))
            FROM worker_heartbeats WHERE seen_at > now() - make_interval(secs => \(stale)) ORDER BY id
            """
        ).map { Live(id: try $0.decode(String.self, 0), consuming: try $0.decode(Bool.self, 1), alone: try $0.decode(Bool.self, 2)) }
    }

    func remove(_ id: String) async throws {
        try await pool.query("DELETE FROM worker_heartbeats WHERE id = \(id)")
    }

    /// Forgets replicas silent for a day (each restart is a new row); housekeeping calls it.
    public func forgetSilent() async throws -> Int {
        try await pool.query("DELETE FROM worker_heartbeats WHERE seen_at < now() - interval '1 day'").affectedRows
    }

    /// Every replica seen, newest first; one silent for longer than three `interval`s is
    /// not alive.
    public func replicas(interval: Duration = Heartbeat.defaultInterval) async throws -> [ReplicaView] {
        let stale = Double(interval.components.seconds * 3)
        return try await pool.query(
            """
            SELECT id, host, pid, version, concurrency, in_flight, consuming, started_at, seen_at,
                   seen_at > now() - make_interval(secs => \(stale))
            FROM worker_heartbeats ORDER BY started_at DESC
            """
        ).map { row in
            ReplicaView(
                id: try row.decode(String.self, 0), host: try row.decode(String.self, 1), pid: try row.decode(Int.self, 2),
                version: try row.decode(String.self, 3), concurrency: try row.decode(Int.self, 4), inFlight: try row.decode(Int.self, 5),
                consuming: try row.decode(Bool.self, 6), startedAt: try row.decode(Date.self, 7), seenAt: try row.decode(Date.self, 8),
                alive: try row.decode(Bool.self, 9))
        }
    }
}

/// A worker's heartbeat: every `interval` it writes what it holds; on a graceful stop it
/// removes its row, so the console tells a replica stopped from one that died. With
/// `replicas`, it also reads the live replicas every `look` (a tenth of `interval`, so
/// every process must use the same interval): a worker that counts on being alone must
/// see a new replica within two looks. While a beat says so it is written every look, and
/// a beat that starts to say so is written at once, before the look that confirms it.
public struct Heartbeat: Service, CustomStringConvertible {
    public static let defaultInterval = Duration.seconds(10)

    public struct Identity: Sendable {
        public var id: String
        public var host: String
        public var pid: Int
        public var version: String
        public var concurrency: Int
        public var startedAt: Date

        /// This process: host name and pid, with a random suffix so a reused pid is a new replica.
        public static func current(version: String, concurrency: Int) -> Identity {
            let host = ProcessInfo.processInfo.hostName
            let pid = Int(ProcessInfo.processInfo.processIdentifier)
            let suffix = UUID().uuidString.prefix(8).lowercased()
            return Identity(id: "\(host)-\(pid)-\(suffix)", host: host, pid: pid, version: version, concurrency: concurrency, startedAt: Date())
        }
    }

    public var description: String { "Heartbeat(\(identity.id))" }

    let heartbeats: Heartbeats
    let identity: Identity
    let interval: Duration
    let read: @Sendable () -> Heartbeats.Beat
    /// Told, after each look, which replicas are alive now, what this one last wrote, and
    /// when the look was asked.
    let replicas: (@Sendable ([Heartbeats.Live], Heartbeats.Beat, ContinuousClock.Instant) -> Void)?
    let logger: Logger

    public init(
        pool: Pool, identity: Identity, interval: Duration = Heartbeat.defaultInterval, logger: Logger,
        replicas: (@Sendable ([Heartbeats.Live], Heartbeats.Beat, ContinuousClock.Instant) -> Void)? = nil, read: @escaping @Sendable () -> Heartbeats.Beat
    ) {
        heartbeats = Heartbeats(pool: pool)
        self.identity = identity
        self.interval = interval
        self.read = read
        self.replicas = replicas
        self.logger = logger
    }

    /// How often the live replicas are read when someone is told: a tenth of the interval.
    public static func look(_ interval: Duration) -> Duration { interval / 10 }
    var look: Duration { Self.look(interval) }

    public func run() async throws {
        var written: Heartbeats.Beat?
        var lastBeat = ContinuousClock.now
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let beat = read()
                if written == nil || beat.alone || beat.alone != written?.alone || ContinuousClock.now - lastBeat >= interval {
                    written = nil
                    try await heartbeats.beat(identity, beat)
                    (written, lastBeat) = (beat, .now)
                }
                if let replicas, let written {
                    let asked = ContinuousClock.now
                    replicas(try await heartbeats.liveReplicas(interval: interval, look: look), written, asked)
                    // Counting on being alone from this look on: said now, confirmed by the next.
                    if read().alone != written.alone { continue }
                }
                failing = false
            } catch {
                if !failing { logger.warning("heartbeat not written or read; retrying", metadata: ["error": "\(error)"]) }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: replicas == nil ? interval : look) }
        }
        try? await heartbeats.remove(identity.id)
    }
}
