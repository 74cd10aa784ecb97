import ArgumentParser
import Logging
import Migrations
import Settings

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (safe to run from several replicas at once).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let settings = try options.settings()
        let logger = Logger(label: "herald.migrate")
        let files = try Migration.load(directory: settings.migrationsDirectory)
        let applied = try await Migrator(databaseURL: settings.databaseURL, migrations: files, logger: logger).run()
        logger.info("migrations up to date", metadata: ["applied": "\(applied.count)", "known": "\(files.count)"])
    }
}
