public import Logging

/// Everything a Herald process is configured with, read in one place: environment
/// variables (`HERALD_*`) with documented defaults, overridden by command-line flags.
///
/// The defaults match `scripts/services`, so a developer's machine needs no setup.
public struct Settings: Sendable {
    /// PostgreSQL, as a `postgres://` URL.
    public var databaseURL: String
    /// RabbitMQ, as an `amqp://` URL.
    public var amqpURL: String
    /// Folder of the numbered `.sql` migration files.
    public var migrationsDirectory: String
    /// Connections each process keeps to PostgreSQL.
    public var databasePoolSize: Int
    /// Least severe level that is logged.
    public var logLevel: Logger.Level
    /// `text` for people, `json` for log collectors.
    public var logFormat: LogFormat

    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    /// A setting's environment variable, default and meaning: the single list that
    /// both parsing and `herald --help` use.
    public enum Key: String, CaseIterable, Sendable {
        case databaseURL = "HERALD_DATABASE_URL"
        case amqpURL = "HERALD_AMQP_URL"
        case migrationsDirectory = "HERALD_MIGRATIONS_DIR"
        case databasePoolSize = "HERALD_DATABASE_POOL_SIZE"
        case logLevel = "HERALD_LOG_LEVEL"
        case logFormat = "HERALD_LOG_FORMAT"

        public var defaultValue: String {
            switch self {
            case .databaseURL: "postgres://postgres@127.0.0.1:5433/herald"
            case .amqpURL: "amqp://guest:guest@127.0.0.1:5673/"
            case .migrationsDirectory: "migrations"
            case .databasePoolSize: "8"
            case .logLevel: "info"
            case .logFormat: "text"
            }
        }

        public var summary: String {
            switch self {
            case .databaseURL: "PostgreSQL URL"
            case .amqpURL: "RabbitMQ URL (heartbeat=SECONDS may be added as a query item)"
            case .migrationsDirectory: "folder of the numbered .sql migrations"
            case .databasePoolSize: "PostgreSQL connections per process"
            case .logLevel: "trace, debug, info, notice, warning, error or critical"
            case .logFormat: "text or json"
            }
        }
    }

    /// Reads `environment`, then applies `overrides` (flags); a value that does not
    /// parse fails with the variable's name.
    public init(environment: [String: String], overrides: [Key: String] = [:]) throws(SettingsError) {
        func value(_ key: Key) -> String {
            overrides[key] ?? environment[key.rawValue] ?? key.defaultValue
        }
        databaseURL = value(.databaseURL)
        guard databaseURL.hasPrefix("postgres://") || databaseURL.hasPrefix("postgresql://") else {
            throw SettingsError(key: .databaseURL, reason: "must be a postgres:// or postgresql:// URL")
        }
        amqpURL = value(.amqpURL)
        guard amqpURL.hasPrefix("amqp://") else {
            throw SettingsError(key: .amqpURL, reason: "must be an amqp:// URL")
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
    }

    /// The table of variables for `--help`.
    public static var environmentHelp: String {
        let width = Key.allCases.map(\.rawValue.count).max() ?? 0
        return Key.allCases.map { key in
            let name = key.rawValue + String(repeating: " ", count: width - key.rawValue.count)
            return "  \(name)  \(key.summary) (default: \(key.defaultValue))"
        }.joined(separator: "\n")
    }
}

/// A setting that could not be used; names the variable, never echoes a URL (it may hold a password).
public struct SettingsError: Error, CustomStringConvertible, Equatable {
    public let key: Settings.Key
    public let reason: String
    public var description: String { "\(key.rawValue): \(reason)" }
}
