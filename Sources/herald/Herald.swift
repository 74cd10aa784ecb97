import ArgumentParser
import Foundation
import Logging
import Settings

/// The entry point: the main thread waits for the command instead of parking in
/// `dispatch_main`, as an `async` main does. Parked there, it calls `sigsuspend` on
/// libdispatch's read-only mask, which Debian's valgrind cannot follow: the benchmark's
/// instruction count runs the worker under callgrind. Nothing in Herald uses the main queue.
@main
enum Entry {
    static func main() {
        let finished = DispatchSemaphore(value: 0)
        // Detached: `main` is isolated to the main actor, whose queue nothing drains here.
        Task.detached {
            await Herald.main()
            finished.signal()
        }
        finished.wait()
    }
}

struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Self-hosted, multi-tenant webhook delivery.",
        discussion: """
            Configuration comes from these environment variables. Flags on the subcommands
            take precedence: --database-url and the others below, or --set NAME=VALUE for any.

            \(Settings.environmentHelp)
            """,
        version: Herald.version,
        subcommands: [
            Migrate.self, WorkerCommand.self, APICommand.self, Publish.self, RelayCommand.self, Check.self, ConfigCommand.self, VerifyCommand.self, ListenCommand.self, Tenants.self, Keys.self, Endpoints.self,
            Deliveries.self, Sources.self, InboundWebhooks.self, ParkedMessages.self, Secrets.self,
        ])

    /// The release this binary is; `herald --version` prints it.
    static let version = "0.9.0"
}

/// The flags every subcommand shares; each overrides its environment variable.
struct GlobalOptions: ParsableArguments {
    @Option(help: "PostgreSQL URL (HERALD_DATABASE_URL).")
    var databaseUrl: String?

    @Option(help: "RabbitMQ URL (HERALD_AMQP_URL).")
    var amqpUrl: String?

    @Option(help: "Migrations folder (HERALD_MIGRATIONS_DIR).")
    var migrationsDir: String?

    @Option(help: "Log level (HERALD_LOG_LEVEL).")
    var logLevel: String?

    @Option(help: "Log format, text or json (HERALD_LOG_FORMAT).")
    var logFormat: String?

    @Option(help: "Prefix of exchange and queue names (HERALD_QUEUE_PREFIX).")
    var queuePrefix: String?

    @Option(help: "Retry delays, e.g. 1m,5m,30m,2h,12h (HERALD_RETRY_LADDER).")
    var retryLadder: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Any setting: --set HERALD_HTTP_TIMEOUT=5s (repeatable).", valueName: "NAME=VALUE"))
    var assignments: [String] = []

    /// The settings the flags set, by key.
    func overrides() throws -> [Settings.Key: String] {
        var overrides: [Settings.Key: String] = [:]
        overrides[.databaseURL] = databaseUrl
        overrides[.amqpURL] = amqpUrl
        overrides[.migrationsDirectory] = migrationsDir
        overrides[.logLevel] = logLevel
        overrides[.logFormat] = logFormat
        overrides[.queuePrefix] = queuePrefix
        overrides[.retryLadder] = retryLadder
        for assignment in assignments {
            let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let key = Settings.Key(rawValue: parts[0]) else {
                throw ValidationError("--set takes NAME=VALUE with a HERALD_* name from --help, got '\(assignment.prefix(60))'")
            }
            overrides[key] = parts[1]
        }
        return overrides
    }

    /// Environment and flags, combined once, then logging set up from them.
    func settings() throws -> Settings {
        let overrides = try overrides()
        let environment = ProcessInfo.processInfo.environment
        let settings: Settings
        do {
            settings = try Settings(environment: environment, file: try ConfigFile.values(environment: environment, overrides: overrides), overrides: overrides)
        } catch {
            throw ValidationError(error.description)
        }
        LogSetup.bootstrap(settings)
        return settings
    }
}
