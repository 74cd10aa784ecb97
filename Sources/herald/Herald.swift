import ArgumentParser
import Foundation
import Logging
import Settings

@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Self-hosted, multi-tenant webhook delivery.",
        discussion: """
            Configuration comes from these environment variables; each has a flag of the
            same name on the subcommands (e.g. --database-url) that takes precedence.

            \(Settings.environmentHelp)
            """,
        subcommands: [Migrate.self, Check.self])
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

    /// Environment and flags, combined once, then logging set up from them.
    func settings() throws -> Settings {
        var overrides: [Settings.Key: String] = [:]
        overrides[.databaseURL] = databaseUrl
        overrides[.amqpURL] = amqpUrl
        overrides[.migrationsDirectory] = migrationsDir
        overrides[.logLevel] = logLevel
        overrides[.logFormat] = logFormat
        let settings: Settings
        do {
            settings = try Settings(environment: ProcessInfo.processInfo.environment, overrides: overrides)
        } catch {
            throw ValidationError(error.description)
        }
        LogSetup.bootstrap(settings)
        return settings
    }
}
