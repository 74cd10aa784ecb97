import HeraldSupport
public import Logging
public import Cryptography
public import Delivery
package import Inbound
public import Topology
public import Foundation

/// Everything a Herald process is configured with, read in one place: environment
/// variables (`HERALD_*`) with documented defaults, overridden by command-line flags.
///
/// The defaults match `scripts/services`, so a developer's machine needs no setup.
public struct Settings: Sendable {
    /// PostgreSQL, as a `postgres://` URL.
    public var databaseURL: String
    /// RabbitMQ, as an `amqp://` URL, or a cluster's nodes as URLs separated by commas
    /// (each process connects to one and moves to the next when it is lost).
    public var amqpURL: String
    /// Folder of the numbered `.sql` migration files.
    public var migrationsDirectory: String
    /// A streaming replica the API reads the delivery log and the dashboard's figures
    /// from; nil: the primary.
    public var databaseReadURL: String?
    /// Connections each process keeps to PostgreSQL.
    public var databasePoolSize: Int
    /// Least severe level that is logged.
    public var logLevel: Logger.Level
    /// `text` for people, `json` for log collectors.
    public var logFormat: LogFormat

    /// Prefix of every exchange and queue name.
    public var queuePrefix: String
    /// Delays between attempts; one delay queue each.
    public var retryLadder: Ladder
    /// Prefix of Herald's own request headers (`X-Herald` → `X-Herald-Signature`).
    public var headerPrefix: String
    /// Upper bound of one delivery attempt.
    public var httpTimeout: Duration
    /// Upper bound of DNS + connect within an attempt.
    public var connectTimeout: Duration
    /// Messages a worker processes at once (its prefetch) when messages are small.
    public var workerConcurrency: Int
    /// Bytes of message bodies a worker aims to hold at once: with large messages its
    /// prefetch follows their mean size down from `workerConcurrency`.
    public var workerWindowBytes: Int
    /// When a first copy of an event (of at most 8 KiB of data) sends its first attempts
    /// before the event is stored, and writes the event, its deliveries and the attempts
    /// that delivered in one statement: fewer writes per delivery and no commit before the
    /// request. `auto` does it only while the worker is the only live replica, so that a
    /// copy of an event published twice is still found stored; `true` also beside other
    /// replicas, where such a copy is sent again under the same `webhook-id`.
    public var deliverBeforeStore: DeliverBeforeStore
    /// How long the store of an event whose deliveries were all sent before it waits for
    /// others to share its statement and commit (0: not at all). Nothing waits on such a
    /// store but the log and the broker's ack; under moderate load it saves a commit per event.
    public var storeLinger: Duration
    /// How long a worker's consumer may wait before reading messages that arrived while
    /// less than a quarter of its prefetch window is in progress, so that those of the
    /// next milliseconds are taken, sent and stored with them (0: never).
    public var consumerLinger: Duration
    /// How long a worker trusts its cached endpoint list when PostgreSQL does not tell it
    /// of changes (its notification session is down, or `endpointCacheNotifiedTTL` is 0).
    public var endpointCacheTTL: Duration
    /// How long a worker keeps a tenant's endpoint list while PostgreSQL tells it of every
    /// change (`ChangeListener`); 0 turns the notifications off.
    public var endpointCacheNotifiedTTL: Duration
    /// The most tenants whose endpoints one worker caches.
    public var endpointCacheTenants: Int
    /// Requests one worker has in flight to one endpoint at most (0: no limit), so that a
    /// hanging endpoint cannot take every slot.
    public var endpointConcurrency: Int
    /// How long a delivery waits in the defer queue when its endpoint is at that limit.
    public var deferDelay: Duration
    /// Per cent of failed attempts to one endpoint, over `breakerWindow`, that open its
    /// circuit in a worker: its deliveries are held, not attempted, until a probe succeeds.
    public var breakerFailurePercent: Int
    /// Fewer attempts in the window never open the circuit (0: no circuit breaker).
    public var breakerMinimumAttempts: Int
    public var breakerWindow: Duration
    /// How long an open circuit holds before a probe is sent.
    public var breakerCoolDown: Duration
    /// How often a worker writes its heartbeat and counts the workers sharing rate limits.
    public var heartbeatInterval: Duration
    /// Work queue shards for events (0: one queue all workers share). Each shard is read
    /// by one worker at a time, which keeps a tenant's events in publish order across
    /// worker replicas: what ordered endpoints need when more than one worker runs.
    public var workShards: Int
    /// Times a message may return to a work queue unprocessed before it is parked (the
    /// queues' `x-delivery-limit`): a poison message ends in the parking lot, never dropped.
    public var deliveryLimit: Int
    /// Members of each new quorum queue (`x-quorum-initial-group-size`); nil: the broker's
    /// default, every node of the cluster on RabbitMQ 3.x.
    public var quorumGroupSize: Int?
    /// Consecutive failed attempts that disable an endpoint (0: never).
    public var disableThreshold: Int
    /// The least time those failures must span.
    public var disableWindow: Duration
    /// Largest event `data` accepted, in bytes.
    public var maxDataBytes: Int
    /// Largest message body a worker reads in full; a larger one is parked from its
    /// declared size with only an excerpt read. A worker holds at most
    /// `workerConcurrency` × this in message bodies, about `workerWindowBytes` once it has
    /// seen their sizes.
    public var maxMessageBytes: Int
    /// How long a publish may wait for the broker's confirm.
    public var publishTimeout: Duration
    /// Address the API listens on.
    public var apiHost: String
    public var apiPort: Int
    /// An API connection with no request for this long is closed.
    public var apiIdleTimeout: Duration
    /// Connections the API holds at once; more wait in the listen backlog.
    public var apiMaxConnections: Int
    /// Requests a second one API credential may make (twice that in a burst; 0: no limit).
    public var apiRateLimit: Int
    /// Events a second one tenant may publish over HTTP (twice that in a burst; 0: no limit).
    public var publishRateLimit: Int
    /// Endpoints one tenant may have (0: no limit).
    public var maxEndpointsPerTenant: Int
    /// Ports endpoint URLs may use besides 80 and 443.
    public var allowedPorts: [Int]
    /// Address and port of the worker's /healthz, /readyz and /metrics (port 0: none).
    public var workerHost: String
    public var workerPort: Int
    /// The operator's token for tenants and keys; nil: those routes refuse everyone.
    public var operatorToken: String?
    /// The tenant whose endpoints receive operator events as webhooks; nil: none.
    public var operatorTenant: UUID?
    /// Endpoint URLs may use http (development).
    public var allowHTTP: Bool
    /// Host names exempt from the URL name rules (e.g. localhost in development).
    public var allowedHosts: [String]
    /// Extra domains endpoint URLs may not use (the deployment's own).
    public var blockedDomains: [String]
    /// Address ranges deliveries may connect to despite the internal-address guard.
    public var allowedAddresses: [String]
    /// Attempts and events older than this are deleted.
    public var retention: Duration
    /// How long a rotated-out secret keeps signing.
    public var rotationGrace: Duration
    /// Keys that encrypt endpoint secrets at rest (AES-256-GCM); no current key: stored as they are.
    public var secretKeyring: SecretKeyring
    /// How long a portal link may wait to be opened (it opens once).
    public var portalLinkTTL: Duration
    /// How long a portal session lasts.
    public var portalSessionTTL: Duration
    /// Origins that may frame the portal (the CRM's); empty: none may.
    public var portalFrameAncestors: [String]
    /// Dashboard cookies are `Secure` even when no proxy sends `X-Forwarded-Proto: https`.
    public var secureCookies: Bool
    /// The management API, for the CLI.
    public var apiURL: String
    /// The CLI's credential: a tenant key (or the operator token for tenants and keys).
    public var apiKey: String?
    /// The database whose `outbox` table `herald relay` publishes; nil: `databaseURL`.
    public var outboxDatabaseURL: String?
    /// Where inbound senders post when they have a listener of their own; port 0: the API's.
    public var inboundHost: String
    public var inboundPort: Int
    /// The base of the URLs inbound senders post to (`{publicURL}/in/{token}`).
    public var publicURL: String
    /// How long an inbound request's body may take to arrive (408 after).
    public var inboundBodyTimeout: Duration
    /// Days an inbound webhook is kept per status; a source may keep its own.
    package var inboundRetention: [InboundStatus: Int]
    /// Refused inbound requests stored per source and second; beyond, answered only.
    public var inboundRejectionsKept: Int
    /// Where spans go: an OpenTelemetry collector's OTLP/HTTP traces URL; nil: no span is
    /// recorded, and a `traceparent` that came with a request or event is passed along.
    public var tracesURL: String?
    /// Headers sent with every export (a vendor's API key).
    public var tracesHeaders: [(name: String, value: String)]
    /// `service.name` of this process's spans; nil: `herald-<command>`.
    public var serviceName: String?
    /// Share of new traces recorded (a span with a parent follows its parent's choice).
    public var traceSampleRatio: Double

    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    /// A setting's environment variable, default and meaning: the single list that
    /// both parsing and `herald --help` use.
    public enum Key: String, CaseIterable, Sendable {
        case databaseURL = "HERALD_DATABASE_URL"
        case databaseReadURL = "HERALD_DATABASE_READ_URL"
        case amqpURL = "HERALD_AMQP_URL"
        case migrationsDirectory = "HERALD_MIGRATIONS_DIR"
        case databasePoolSize = "HERALD_DATABASE_POOL_SIZE"
        case logLevel = "HERALD_LOG_LEVEL"
        case logFormat = "HERALD_LOG_FORMAT"
        case queuePrefix = "HERALD_QUEUE_PREFIX"
        case retryLadder = "HERALD_RETRY_LADDER"
        case headerPrefix = "HERALD_HEADER_PREFIX"
        case httpTimeout = "HERALD_HTTP_TIMEOUT"
        case connectTimeout = "HERALD_CONNECT_TIMEOUT"
        case workerConcurrency = "HERALD_WORKER_CONCURRENCY"
        case workerWindowBytes = "HERALD_WORKER_WINDOW_BYTES"
        case deliverBeforeStore = "HERALD_DELIVER_BEFORE_STORE"
        case storeLinger = "HERALD_STORE_LINGER"
        case consumerLinger = "HERALD_CONSUMER_LINGER"
        case endpointCacheTTL = "HERALD_ENDPOINT_CACHE_TTL"
        case endpointCacheNotifiedTTL = "HERALD_ENDPOINT_CACHE_NOTIFIED_TTL"
        case endpointCacheTenants = "HERALD_ENDPOINT_CACHE_TENANTS"
        case endpointConcurrency = "HERALD_ENDPOINT_CONCURRENCY"
        case deferDelay = "HERALD_DEFER_DELAY"
        case breakerFailurePercent = "HERALD_BREAKER_FAILURE_PERCENT"
        case breakerMinimumAttempts = "HERALD_BREAKER_MIN_ATTEMPTS"
        case breakerWindow = "HERALD_BREAKER_WINDOW"
        case breakerCoolDown = "HERALD_BREAKER_COOLDOWN"
        case heartbeatInterval = "HERALD_HEARTBEAT_INTERVAL"
        case workShards = "HERALD_WORK_SHARDS"
        case deliveryLimit = "HERALD_DELIVERY_LIMIT"
        case quorumGroupSize = "HERALD_QUORUM_GROUP_SIZE"
        case disableThreshold = "HERALD_DISABLE_AFTER"
        case disableWindow = "HERALD_DISABLE_WINDOW"
        case maxDataBytes = "HERALD_MAX_DATA_BYTES"
        case maxMessageBytes = "HERALD_MAX_MESSAGE_BYTES"
        case publishTimeout = "HERALD_PUBLISH_TIMEOUT"
        case apiHost = "HERALD_API_HOST"
        case apiPort = "HERALD_API_PORT"
        case apiIdleTimeout = "HERALD_API_IDLE_TIMEOUT"
        case apiMaxConnections = "HERALD_API_MAX_CONNECTIONS"
        case apiRateLimit = "HERALD_API_RATE_LIMIT"
        case publishRateLimit = "HERALD_PUBLISH_RATE_LIMIT"
        case maxEndpointsPerTenant = "HERALD_MAX_ENDPOINTS"
        case allowedPorts = "HERALD_ALLOWED_PORTS"
        case workerHost = "HERALD_WORKER_HOST"
        case workerPort = "HERALD_WORKER_PORT"
        case operatorToken = "HERALD_OPERATOR_TOKEN"
        case operatorTenant = "HERALD_OPERATOR_TENANT"
        case allowHTTP = "HERALD_ALLOW_HTTP"
        case allowedHosts = "HERALD_ALLOWED_HOSTS"
        case blockedDomains = "HERALD_BLOCKED_DOMAINS"
        case allowedAddresses = "HERALD_ALLOWED_ADDRESSES"
        case retention = "HERALD_RETENTION"
        case rotationGrace = "HERALD_ROTATION_GRACE"
        case portalLinkTTL = "HERALD_PORTAL_LINK_TTL"
        case portalSessionTTL = "HERALD_PORTAL_SESSION_TTL"
        case portalFrameAncestors = "HERALD_PORTAL_FRAME_ANCESTORS"
        case secureCookies = "HERALD_SECURE_COOKIES"
        case secretKey = "HERALD_SECRET_KEY"
        case retiredSecretKeys = "HERALD_SECRET_KEYS_RETIRED"
        case apiURL = "HERALD_API_URL"
        case configFile = "HERALD_CONFIG_FILE"
        case apiKey = "HERALD_API_KEY"
        case outboxDatabaseURL = "HERALD_OUTBOX_DATABASE_URL"
        case inboundHost = "HERALD_INBOUND_HOST"
        case inboundPort = "HERALD_INBOUND_PORT"
        case publicURL = "HERALD_PUBLIC_URL"
        case inboundBodyTimeout = "HERALD_INBOUND_BODY_TIMEOUT"
        case inboundRetention = "HERALD_INBOUND_RETENTION"
        case inboundRejectionsKept = "HERALD_INBOUND_REJECTIONS_KEPT"
        case otlpEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"
        case otlpTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        case otlpHeaders = "OTEL_EXPORTER_OTLP_HEADERS"
        case serviceName = "OTEL_SERVICE_NAME"
        case traceSampleRatio = "OTEL_TRACES_SAMPLER_ARG"

        public var defaultValue: String {
            switch self {
            case .databaseURL: "postgres://postgres@127.0.0.1:5433/herald"
            case .databaseReadURL: ""
            case .amqpURL: "amqp://guest:guest@127.0.0.1:5673/"
            case .migrationsDirectory: "migrations"
            case .databasePoolSize: "8"
            case .logLevel: "info"
            case .logFormat: "text"
            case .queuePrefix: "herald"
            case .retryLadder: "1m,5m,30m,2h,12h"
            case .headerPrefix: "X-Herald"
            case .httpTimeout: "10s"
            case .connectTimeout: "5s"
            case .workerConcurrency: "500"
            case .workerWindowBytes: "25165824"
            case .deliverBeforeStore: "auto"
            case .storeLinger: "5ms"
            case .consumerLinger: "5ms"
            case .endpointCacheTTL: "5s"
            case .endpointCacheNotifiedTTL: "10m"
            case .endpointCacheTenants: "10000"
            case .endpointConcurrency: "20"
            case .deferDelay: "10s"
            case .breakerFailurePercent: "50"
            case .breakerMinimumAttempts: "20"
            case .breakerWindow: "60s"
            case .breakerCoolDown: "30s"
            case .heartbeatInterval: "10s"
            case .workShards: "0"
            case .deliveryLimit: "20"
            case .quorumGroupSize: "all"
            case .disableThreshold: "5"
            case .disableWindow: "1h"
            case .maxDataBytes: "262144"
            case .maxMessageBytes: ""
            case .publishTimeout: "10s"
            case .apiHost: "127.0.0.1"
            case .apiPort: "8080"
            case .apiIdleTimeout: "60s"
            case .apiMaxConnections: "1000"
            case .apiRateLimit: "50"
            case .publishRateLimit: "200"
            case .maxEndpointsPerTenant: "100"
            case .allowedPorts: ""
            case .workerHost: "127.0.0.1"
            case .workerPort: "9090"
            case .operatorToken: ""
            case .operatorTenant: ""
            case .allowHTTP: "false"
            case .allowedHosts: ""
            case .blockedDomains: ""
            case .allowedAddresses: ""
            case .retention: "90d"
            case .rotationGrace: "24h"
            case .portalLinkTTL: "15m"
            case .portalSessionTTL: "1h"
            case .portalFrameAncestors: ""
            case .secureCookies: "false"
            case .secretKey: ""
            case .retiredSecretKeys: ""
            case .apiURL: "http://127.0.0.1:8080"
            case .apiKey: ""
            case .outboxDatabaseURL: ""
            case .inboundHost: "127.0.0.1"
            case .inboundPort: "0"
            case .publicURL: ""
            case .configFile: ""
            case .inboundBodyTimeout: "10s"
            case .inboundRetention: "90d"
            case .inboundRejectionsKept: "10"
            case .otlpEndpoint: ""
            case .otlpTracesEndpoint: ""
            case .otlpHeaders: ""
            case .serviceName: ""
            case .traceSampleRatio: "1"
            }
        }

        public var summary: String {
            switch self {
            case .databaseURL: "PostgreSQL URL"
            case .databaseReadURL: "a streaming replica the API reads the delivery log and the dashboard's charts from (empty: the primary); writes and the reads that decide them stay on the primary"
            case .amqpURL: "RabbitMQ URL (heartbeat=SECONDS may be added as a query item); a cluster's nodes as URLs separated by commas"
            case .migrationsDirectory: "folder of the numbered .sql migrations"
            case .databasePoolSize: "PostgreSQL connections per process"
            case .logLevel: "trace, debug, info, notice, warning, error or critical"
            case .logFormat: "text or json"
            case .queuePrefix: "prefix of exchange and queue names"
            case .retryLadder: "delays between attempts (ms, s, m, h, d)"
            case .headerPrefix: "prefix of the signature and event headers"
            case .httpTimeout: "total time of one delivery attempt"
            case .connectTimeout: "DNS and connect time within an attempt"
            case .workerConcurrency: "messages a worker processes at once"
            case .workerWindowBytes: "bytes of message bodies a worker aims to hold; with large messages its prefetch follows their mean size down"
            case .deliverBeforeStore: "auto, true or false: send an event's first attempts before storing it (events of at most 8 KiB), then write event, deliveries and delivered attempts at once (fewer writes, lower latency); auto: only while this worker is the only live replica, true: also beside others, where a copy of an event published twice that another replica takes is sent again under the same webhook-id"
            case .storeLinger: "longest wait of a store whose deliveries were all sent before it, for others to share its commit (0 to 1s; 0: none)"
            case .consumerLinger: "longest wait of a worker's consumer, while less than a quarter of its prefetch window is in progress, before reading messages that arrived, so that the next are taken with them (0 to 1s; 0: none)"
            case .endpointCacheTTL: "how long a worker caches a tenant's endpoint list when PostgreSQL does not tell it of changes (0: no cache)"
            case .endpointCacheNotifiedTTL: "how long a worker caches a tenant's endpoint list while PostgreSQL tells it of every change (LISTEN herald_directory; 0: no notifications, the TTL above applies)"
            case .endpointCacheTenants: "the most tenants whose endpoint lists one worker caches (about 1 KiB each with one endpoint; past it the longest held go)"
            case .endpointConcurrency: "the most requests a worker has in flight to one endpoint; each endpoint's limit adapts to its latency between 1 and this (0: no limit)"
            case .deferDelay: "wait of a delivery whose endpoint is at that limit (same on every process)"
            case .breakerFailurePercent: "per cent of failed attempts to an endpoint within the window that open its circuit in a worker (deliveries held, not attempted, until a probe succeeds)"
            case .breakerMinimumAttempts: "fewer attempts within the window never open a circuit (0: no circuit breaker)"
            case .breakerWindow: "the rolling window over which a worker counts an endpoint's attempts and failures"
            case .breakerCoolDown: "how long an open circuit holds before one probe is sent"
            case .heartbeatInterval: "how often a worker writes its heartbeat and counts the workers that share each endpoint's rate limit and the shards"
            case .deliveryLimit: "times a message may return to a work queue unprocessed (a crashed worker, a database outage) before it is parked with the reason; each return waits longer, from 1 s doubling to 60 s (x-delivery-limit; same on every process)"
            case .quorumGroupSize: "members of each new quorum queue: all (the broker's default, every node on RabbitMQ 3.x) or a number (x-quorum-initial-group-size; same on every process)"
            case .workShards: "work queues events are split into by tenant, each read by one worker at a time so a tenant's events keep their publish order across workers (0: one queue all workers share; same on every process)"
            case .disableThreshold: "consecutive failed attempts that disable an endpoint (0: never)"
            case .disableWindow: "least time those failures must span (0: the count alone)"
            case .maxDataBytes: "largest event data object in bytes"
            case .maxMessageBytes: "largest message a worker reads; larger ones are parked unread (unset: HERALD_MAX_DATA_BYTES + 65536)"
            case .publishTimeout: "how long a publish waits for the broker's confirm"
            case .apiHost: "address the API listens on"
            case .apiPort: "port the API listens on"
            case .apiIdleTimeout: "an API connection idle this long is closed"
            case .apiMaxConnections: "connections the API holds at once"
            case .apiRateLimit: "requests per second per API credential, twice that in a burst (0: no limit)"
            case .publishRateLimit: "events per second per tenant over HTTP, twice that in a burst (0: no limit)"
            case .maxEndpointsPerTenant: "endpoints one tenant may have (0: no limit)"
            case .allowedPorts: "ports endpoint URLs may use besides 80 and 443, comma-separated"
            case .workerHost: "address the worker's health and metrics listen on"
            case .workerPort: "port of the worker's health and metrics (0: none)"
            case .operatorToken: "token for creating tenants and keys (empty: disabled)"
            case .operatorTenant: "a tenant id: its endpoints receive operator events (endpoint.disabled, delivery.exhausted, …) as webhooks (empty: only the PREFIX.operator exchange)"
            case .allowHTTP: "endpoint URLs may use http (development)"
            case .allowedHosts: "host names exempt from the URL rules, comma-separated"
            case .blockedDomains: "more domains endpoint URLs may not use, comma-separated"
            case .allowedAddresses: "CIDR ranges deliveries may reach despite the internal-address guard"
            case .retention: "age after which attempts and events are deleted"
            case .rotationGrace: "how long a rotated-out secret keeps signing"
            case .portalLinkTTL: "how long a tenant portal link may wait to be opened (each opens once)"
            case .portalSessionTTL: "how long a tenant portal session lasts"
            case .portalFrameAncestors: "origins that may show the portal in a frame, space-separated (the CRM's: https://crm.example.com); empty: none"
            case .secureCookies: "dashboard cookies are Secure without X-Forwarded-Proto (the API is served over HTTPS)"
            case .secretKey: "base64 of 32 random bytes that encrypt endpoint secrets at rest (unset: stored in plaintext)"
            case .retiredSecretKeys: "earlier HERALD_SECRET_KEY values, comma-separated, still read until `herald secrets rekey`"
            case .apiURL: "the management API, for the CLI"
            case .apiKey: "the CLI's tenant key (or the operator token)"
            case .outboxDatabaseURL: "database of the outbox table for herald relay (empty: HERALD_DATABASE_URL)"
            case .inboundHost: "address of the inbound listener, when it has a port of its own"
            case .inboundPort: "port of a listener for inbound senders only (0: they post to the API's listener)"
            case .publicURL: "base of the inbound URLs senders post to (empty: the inbound or API listener's address)"
            case .configFile: "a file of NAME=value lines (the env_file format of Docker and systemd) for settings better kept out of the environment; a variable set in the environment wins"
            case .inboundBodyTimeout: "time an inbound request's body may take to arrive (408 after)"
            case .inboundRetention: "days inbound webhooks are kept: one age, then status=age pairs (90d,rejected=7d)"
            case .inboundRejectionsKept: "refused inbound requests stored per source and second (more are answered only)"
            case .otlpEndpoint: "an OpenTelemetry collector's OTLP/HTTP base URL (http://127.0.0.1:4318); spans are posted to /v1/traces as JSON (empty: none recorded, an incoming traceparent is passed along)"
            case .otlpTracesEndpoint: "the full OTLP/HTTP traces URL, instead of OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces"
            case .otlpHeaders: "headers sent to the collector, name=value pairs, comma-separated (a vendor's key)"
            case .serviceName: "service.name of this process's spans (empty: herald-worker, herald-api, …)"
            case .traceSampleRatio: "share of new traces recorded, 0 to 1 (a span follows its parent's sampled flag)"
            }
        }
    }

    /// Reads `environment`, then applies `overrides` (flags); a value that does not
    /// parse fails with the variable's name.
    public init(environment: [String: String], file: [Key: String] = [:], overrides: [Key: String] = [:]) throws(SettingsError) {
        func value(_ key: Key) -> String {
            overrides[key] ?? environment[key.rawValue] ?? file[key] ?? key.defaultValue
        }
        databaseURL = value(.databaseURL)
        guard databaseURL.hasPrefix("postgres://") || databaseURL.hasPrefix("postgresql://") else {
            throw SettingsError(key: .databaseURL, reason: "must be a postgres:// or postgresql:// URL")
        }
        databaseReadURL = value(.databaseReadURL).isEmpty ? nil : value(.databaseReadURL)
        if let url = databaseReadURL, !(url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")) {
            throw SettingsError(key: .databaseReadURL, reason: "must be a postgres:// or postgresql:// URL")
        }
        amqpURL = value(.amqpURL)
        guard amqpURL.split(separator: ",").allSatisfy({ $0.trimmingCharacters(in: .whitespaces).hasPrefix("amqp://") }) else {
            throw SettingsError(key: .amqpURL, reason: "must be an amqp:// URL, or the cluster's nodes as amqp:// URLs separated by commas")
        }
        migrationsDirectory = value(.migrationsDirectory)
        guard let poolSize = Int(value(.databasePoolSize)), (1...500).contains(poolSize) else {
            throw SettingsError(key: .databasePoolSize, reason: "must be a whole number from 1 to 500, got '\(value(.databasePoolSize))'")
        }
        databasePoolSize = poolSize
        guard let level = Logger.Level(rawValue: value(.logLevel).lowercased()) else {
            throw SettingsError(key: .logLevel, reason: "unknown level '\(value(.logLevel))'")
        }
        logLevel = level
        guard let format = LogFormat(rawValue: value(.logFormat).lowercased()) else {
            throw SettingsError(key: .logFormat, reason: "must be text or json, got '\(value(.logFormat))'")
        }
        logFormat = format
        queuePrefix = value(.queuePrefix)
        guard !queuePrefix.isEmpty, queuePrefix.count <= 100,
            queuePrefix.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0) })
        else {
            throw SettingsError(key: .queuePrefix, reason: "must be 1 to 100 letters, digits, '.', '_' or '-'")
        }
        do {
            retryLadder = try Ladder(parsing: value(.retryLadder))
        } catch {
            throw SettingsError(key: .retryLadder, reason: error.description)
        }
        headerPrefix = value(.headerPrefix)
        guard headerPrefix.hasPrefix("X-"), headerPrefix.count <= 40,
            headerPrefix.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" })
        else {
            throw SettingsError(key: .headerPrefix, reason: "must look like X-Name (letters, digits and '-')")
        }
        func duration(_ key: Key, allowZero: Bool = false) throws(SettingsError) -> Duration {
            let text = value(key)
            if allowZero && text == "0" { return .zero }
            guard let parsed = Ladder.parse(text) else {
                throw SettingsError(key: key, reason: "'\(text)' is not a duration like 500ms, 10s, 5m or 1h")
            }
            return parsed
        }
        func integer(_ key: Key, _ range: ClosedRange<Int>) throws(SettingsError) -> Int {
            guard let parsed = Int(value(key)), range.contains(parsed) else {
                throw SettingsError(key: key, reason: "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return parsed
        }
        httpTimeout = try duration(.httpTimeout)
        connectTimeout = try duration(.connectTimeout)
        workerConcurrency = try integer(.workerConcurrency, 1...5000)
        workerWindowBytes = try integer(.workerWindowBytes, 1024 * 1024...16 * 1024 * 1024 * 1024)
        endpointCacheTTL = try duration(.endpointCacheTTL, allowZero: true)
        endpointCacheNotifiedTTL = try duration(.endpointCacheNotifiedTTL, allowZero: true)
        endpointCacheTenants = try integer(.endpointCacheTenants, 1...10_000_000)
        endpointConcurrency = try integer(.endpointConcurrency, 0...5000)
        deferDelay = try duration(.deferDelay)
        breakerFailurePercent = try integer(.breakerFailurePercent, 1...100)
        breakerMinimumAttempts = try integer(.breakerMinimumAttempts, 0...100_000)
        breakerWindow = try duration(.breakerWindow)
        breakerCoolDown = try duration(.breakerCoolDown)
        heartbeatInterval = try duration(.heartbeatInterval)
        workShards = try integer(.workShards, 0...64)
        deliveryLimit = try integer(.deliveryLimit, 1...10_000)
        if value(.quorumGroupSize) == "all" {
            quorumGroupSize = nil
        } else {
            guard let size = Int(value(.quorumGroupSize)), (1...99).contains(size) else {
                throw SettingsError(key: .quorumGroupSize, reason: "must be all or a whole number from 1 to 99")
            }
            quorumGroupSize = size
        }
        disableThreshold = try integer(.disableThreshold, 0...1000)
        disableWindow = try duration(.disableWindow, allowZero: true)
        maxDataBytes = try integer(.maxDataBytes, 1...16 * 1024 * 1024)
        // The envelope around `data` (id, type, attributes) is far below 64 KiB.
        let leastMessage = maxDataBytes + 65536
        if value(.maxMessageBytes).isEmpty {
            maxMessageBytes = leastMessage
        } else {
            maxMessageBytes = try integer(.maxMessageBytes, leastMessage...128 * 1024 * 1024)
        }
        publishTimeout = try duration(.publishTimeout)
        apiHost = value(.apiHost)
        apiPort = try integer(.apiPort, 0...65535)
        apiIdleTimeout = try duration(.apiIdleTimeout)
        apiMaxConnections = try integer(.apiMaxConnections, 1...1_000_000)
        apiRateLimit = try integer(.apiRateLimit, 0...1_000_000)
        publishRateLimit = try integer(.publishRateLimit, 0...1_000_000)
        maxEndpointsPerTenant = try integer(.maxEndpointsPerTenant, 0...1_000_000)
        workerHost = value(.workerHost)
        workerPort = try integer(.workerPort, 0...65535)
        operatorToken = value(.operatorToken).isEmpty ? nil : value(.operatorToken)
        if value(.operatorTenant).isEmpty {
            operatorTenant = nil
        } else {
            guard let tenant = UUID(text: value(.operatorTenant)) else {
                throw SettingsError(key: .operatorTenant, reason: "must be a tenant id (a UUID)")
            }
            operatorTenant = tenant
        }
        if let token = operatorToken, token.count < 16 {
            throw SettingsError(key: .operatorToken, reason: "must be at least 16 characters")
        }
        func flag(_ key: Key) throws(SettingsError) -> Bool {
            switch value(key).lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw SettingsError(key: key, reason: "must be true or false")
            }
        }
        allowHTTP = try flag(.allowHTTP)
        switch value(.deliverBeforeStore).lowercased() {
        case "auto": deliverBeforeStore = .auto
        case "true", "1", "yes": deliverBeforeStore = .always
        case "false", "0", "no": deliverBeforeStore = .never
        default: throw SettingsError(key: .deliverBeforeStore, reason: "must be auto, true or false, got '\(value(.deliverBeforeStore))'")
        }
        storeLinger = try duration(.storeLinger, allowZero: true)
        guard storeLinger <= .seconds(1) else { throw SettingsError(key: .storeLinger, reason: "must be at most 1s, got '\(value(.storeLinger))'") }
        consumerLinger = try duration(.consumerLinger, allowZero: true)
        guard consumerLinger <= .seconds(1) else {
            throw SettingsError(key: .consumerLinger, reason: "must be at most 1s, got '\(value(.consumerLinger))'")
        }
        secureCookies = try flag(.secureCookies)
        func list(_ key: Key) -> [String] {
            value(key).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        allowedHosts = list(.allowedHosts)
        blockedDomains = list(.blockedDomains)
        allowedAddresses = list(.allowedAddresses)
        allowedPorts = try list(.allowedPorts).map { (text: String) throws(SettingsError) -> Int in
            guard let port = Int(text), (1...65535).contains(port) else {
                throw SettingsError(key: .allowedPorts, reason: "'\(text)' is not a port from 1 to 65535")
            }
            return port
        }
        retention = try duration(.retention)
        rotationGrace = try duration(.rotationGrace, allowZero: true)
        portalLinkTTL = try duration(.portalLinkTTL)
        portalSessionTTL = try duration(.portalSessionTTL)
        portalFrameAncestors = value(.portalFrameAncestors).split(separator: " ").map(String.init)
        for origin in portalFrameAncestors where !(origin.hasPrefix("https://") || origin.hasPrefix("http://")) || origin.contains(";") {
            throw SettingsError(key: .portalFrameAncestors, reason: "'\(origin.prefix(100))' is not an origin like https://crm.example.com")
        }
        do {
            secretKeyring = try SecretKeyring(
                current: value(.secretKey).isEmpty ? nil : value(.secretKey), retired: list(.retiredSecretKeys))
        } catch {
            throw SettingsError(key: error.retired ? .retiredSecretKeys : .secretKey, reason: error.reason)
        }
        apiURL = value(.apiURL)
        guard apiURL.hasPrefix("http://") || apiURL.hasPrefix("https://") else {
            throw SettingsError(key: .apiURL, reason: "must be an http:// or https:// URL")
        }
        apiKey = value(.apiKey).isEmpty ? nil : value(.apiKey)
        outboxDatabaseURL = value(.outboxDatabaseURL).isEmpty ? nil : value(.outboxDatabaseURL)
        if let url = outboxDatabaseURL, !(url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")) {
            throw SettingsError(key: .outboxDatabaseURL, reason: "must be a postgres:// or postgresql:// URL")
        }
        inboundHost = value(.inboundHost)
        inboundPort = try integer(.inboundPort, 0...65535)
        let senders = inboundPort == 0 ? "\(apiHost):\(apiPort)" : "\(inboundHost):\(inboundPort)"
        publicURL = value(.publicURL).isEmpty ? "http://\(senders)" : value(.publicURL)
        guard publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://") else {
            throw SettingsError(key: .publicURL, reason: "must be an http:// or https:// URL")
        }
        inboundBodyTimeout = try duration(.inboundBodyTimeout)
        inboundRejectionsKept = try integer(.inboundRejectionsKept, 0...1_000_000)
        let traces = value(.otlpTracesEndpoint).isEmpty ? value(.otlpEndpoint) : value(.otlpTracesEndpoint)
        if traces.isEmpty {
            tracesURL = nil
        } else {
            let key: Key = value(.otlpTracesEndpoint).isEmpty ? .otlpEndpoint : .otlpTracesEndpoint
            guard traces.hasPrefix("http://") || traces.hasPrefix("https://") else {
                throw SettingsError(key: key, reason: "must be an http:// or https:// URL")
            }
            tracesURL = key == .otlpTracesEndpoint ? traces : (traces.hasSuffix("/") ? String(traces.dropLast()) : traces) + "/v1/traces"
        }
        tracesHeaders = try list(.otlpHeaders).enumerated().map { (index: Int, item: String) throws(SettingsError) -> (name: String, value: String) in
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
                // Named by position: an item without `=` may be a key in full.
                throw SettingsError(key: .otlpHeaders, reason: "each item must be name=value (item \(index + 1) is not)")
            }
            return (parts[0], parts[1].removingPercentEncoding ?? parts[1])
        }
        serviceName = value(.serviceName).isEmpty ? nil : value(.serviceName)
        guard let ratio = Double(value(.traceSampleRatio)), (0...1).contains(ratio) else {
            throw SettingsError(key: .traceSampleRatio, reason: "must be a number from 0 to 1")
        }
        traceSampleRatio = ratio
        inboundRetention = [:]
        func days(_ text: String) throws(SettingsError) -> Int {
            guard let age = Ladder.parse(text), age.components.seconds >= 86_400, age.components.seconds % 86_400 == 0 else {
                throw SettingsError(key: .inboundRetention, reason: "'\(text)' is not a whole number of days like 90d")
            }
            return Int(age.components.seconds / 86_400)
        }
        for (index, item) in list(.inboundRetention).enumerated() {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 1 && index == 0 {
                let age = try days(parts[0])
                for status in InboundStatus.allCases { inboundRetention[status] = age }
            } else if parts.count == 2, let status = InboundStatus(rawValue: parts[0]) {
                inboundRetention[status] = try days(parts[1])
            } else {
                throw SettingsError(
                    key: .inboundRetention,
                    reason: "'\(item.prefix(100))' is not an age or status=age (statuses: \(InboundStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
    }

    /// The table of variables for `--help`.
    public static var environmentHelp: String {
        let width = Key.allCases.map(\.rawValue.count).max() ?? 0
        return Key.allCases.map { key in
            let name = key.rawValue + String(repeating: " ", count: width - key.rawValue.count)
            let fallback = key.defaultValue.isEmpty ? "unset" : key.defaultValue
            return "  \(name)  \(key.summary) (default: \(fallback))"
        }.joined(separator: "\n")
    }
}

/// A setting that could not be used; names the variable, never echoes a URL (it may hold a password).
public struct SettingsError: Error, CustomStringConvertible, Equatable {
    public let key: Settings.Key
    public let reason: String
    public var description: String { "\(key.rawValue): \(reason)" }
}

extension Settings {
    /// What every outgoing request is built with; the API shows the same on its help page.
    public var requestSettings: RequestSettings {
        RequestSettings(headerPrefix: headerPrefix, timeout: httpTimeout, connectTimeout: connectTimeout)
    }

    public var disablePolicy: DisablePolicy {
        DisablePolicy(threshold: disableThreshold, window: disableWindow)
    }

    /// The exchanges and queues every process declares alike.
    public var topology: Topology {
        Topology(
            prefix: queuePrefix, ladder: retryLadder, deferDelay: deferDelay, shards: workShards, deliveryLimit: deliveryLimit,
            quorumGroupSize: quorumGroupSize)
    }
}
