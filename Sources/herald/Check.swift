import HeraldAMQP
import ArgumentParser
import Foundation
import Logging
import Migrations
import Postgres
import Settings

/// A smoke check of a deployment: both servers reachable, the schema current, and a
/// message making the round trip through the broker with a publisher confirm.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that PostgreSQL and RabbitMQ are reachable and usable; exit 1 if not.")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let settings = try options.settings()
        let logger = Logger(label: "herald.check")
        var failures = 0
        func report(_ name: String, _ body: () async throws -> String) async {
            do {
                print("ok    \(name): \(try await body())")
            } catch {
                failures += 1
                print("FAIL  \(name): \(error)")
            }
        }

        await report("postgres") {
            let pool = try Pool(url: settings.databaseURL, size: 1, logger: logger)
            let version = try await pool.query("SHOW server_version")[0].decode(String.self, 0)
            let files = try Migration.load(directory: settings.migrationsDirectory)
            let applied = try await pool.query("SELECT count(*) FROM schema_migrations")[0].decode(Int.self, 0)
            await pool.close()
            guard applied >= files.count else {
                throw ValidationError("\(files.count - applied) migration(s) pending: run `herald migrate`")
            }
            return "server \(version), \(applied) migration(s) applied"
        }

        await report("rabbitmq") {
            let connection = try await HeraldAMQP.Connection.connect(to: settings.amqpURL, logger: logger)
            let channel = try await connection.openChannel()
            try await channel.enableConfirms()
            let queue = try await channel.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
            let token = UUID().uuidString
            let started = ContinuousClock.now
            try await channel.publish(Message(body: Array(token.utf8)), exchange: "", routingKey: queue, mandatory: true)
            let consumer = try await channel.consume(queue)
            var iterator = consumer.makeAsyncIterator()
            guard let delivery = try await iterator.next(), delivery.message.body == Array(token.utf8) else {
                throw ValidationError("the test message did not come back")
            }
            channel.ack(delivery.deliveryTag)
            let elapsed = ContinuousClock.now - started
            await connection.close()
            return "\(connection.url.redacted), confirmed round trip in \(elapsed.formatted(.units(allowed: [.milliseconds])))"
        }

        if failures > 0 { throw ExitCode.failure }
    }
}
