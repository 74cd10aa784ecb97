public import Foundation
public import Logging
import Glibc
import Postgres

/// Where the integration tests find the real servers that `scripts/services` starts.
///
/// `main` serves the parallel suites; `faults` is a second pair of servers that the
/// fault tests restart, so that they never disturb the others.
public enum TestServices {
    /// A loopback port nothing listens on now, from the kernel: for a process a test starts.
    public static func freePort() throws -> Int {
        try freePorts(1)[0]
    }

    /// `count` different loopback ports nothing listens on now: each stays bound until all are chosen.
    public static func freePorts(_ count: Int) throws -> [Int] {
        var descriptors: [Int32] = []
        defer { for fd in descriptors { _ = Glibc.close(fd) } }
        return try (0..<count).map { _ in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw FreePortError(reason: String(cString: strerror(errno))) }
            descriptors.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            guard bound else { throw FreePortError(reason: String(cString: strerror(errno))) }
            return Int(UInt16(bigEndian: address.sin_port))
        }
    }

    public static var amqpURL: String {
        env("HERALD_AMQP_URL", "amqp://guest:guest@127.0.0.1:5673/")
    }

    public static var databaseURL: String {
        env("HERALD_DATABASE_URL", "postgres://postgres@127.0.0.1:5433/herald")
    }

    public static var faultsAMQPURL: String {
        env("HERALD_FAULTS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5674/?heartbeat=5")
    }

    public static var faultsDatabaseURL: String {
        env("HERALD_FAULTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5434/herald")
    }

    /// The streaming replica of the main PostgreSQL (`scripts/services start replica`).
    public static var replicaDatabaseURL: String {
        env("HERALD_REPLICA_DATABASE_URL", "postgres://postgres@127.0.0.1:5435/herald")
    }

    public static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    /// The repository root, for scripts and migrations.
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `scripts/services ARGS…` and fails if it does.
    public static func script(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = repositoryRoot.appendingPathComponent("scripts/services")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ScriptFailed(arguments: arguments, status: process.terminationStatus)
        }
    }

    /// Runs `scripts/services` and returns what it printed.
    public static func scriptOutput(_ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = repositoryRoot.appendingPathComponent("scripts/services")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ScriptFailed(arguments: arguments, status: process.terminationStatus)
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A name no other test uses, for queues, exchanges and databases.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    private static func env(_ name: String, _ fallback: String) -> String {
        ProcessInfo.processInfo.environment[name] ?? fallback
    }
}

public struct ScriptFailed: Error, CustomStringConvertible {
    public let arguments: [String]
    public let status: Int32
    public var description: String { "scripts/services \(arguments.joined(separator: " ")) exited with \(status)" }
}

/// A database of its own for one test, dropped afterwards.
public func withTestDatabase<T>(
    base: String = TestServices.databaseURL, _ body: (String) async throws -> T
) async throws -> T {
    let name = TestServices.uniqueName("herald_test")
    let admin = try await Connection.connect(to: base, logger: TestServices.logger)
    // Identifiers cannot be bound; the name is generated here from hex digits only.
    try await admin.execute(script: "CREATE DATABASE \(name)")
    await admin.close()
    // Dropped over a connection of its own: the test may have restarted the server.
    func drop() async throws {
        let admin = try await Connection.connect(to: base, logger: TestServices.logger)
        try await admin.execute(script: "DROP DATABASE \(name) WITH (FORCE)")
        await admin.close()
    }
    let url = base.replacingDatabase(with: name)
    do {
        let result = try await body(url)
        try await drop()
        return result
    } catch {
        try? await drop()
        throw error
    }
}

extension String {
    /// The same postgres URL pointing at another database.
    func replacingDatabase(with name: String) -> String {
        guard var components = URLComponents(string: self) else { return self }
        components.path = "/" + name
        return components.string ?? self
    }
}

/// The kernel gave no loopback port.
struct FreePortError: Error, CustomStringConvertible {
    let reason: String
    var description: String { "no free loopback port: \(reason)" }
}
