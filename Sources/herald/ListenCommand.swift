import ArgumentParser
import Foundation
import Hummingbird
import Inbound
import Logging
import ServiceLifecycle
import UnixSignals

/// `herald listen`: a receiver on this machine that prints every webhook it gets and
/// whether its signature holds: the quickest way to see what an endpoint would receive
/// (point an endpoint at it, or a tunnel in front of it, and send a test event).
struct ListenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract: "Receive webhooks locally: print each request (headers, body, signature check) and answer 204.")

    @Option(help: "Port to listen on (loopback only unless --host says otherwise).") var port = 8765
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "The endpoint's signing secret, to check each request's signature.") var secret: String?
    @Option(help: ArgumentHelp("File holding the secret ('-': standard input).", valueName: "path")) var secretFile: String?
    @Option(help: "herald, standard-webhooks, stripe or github.") var scheme = "standard-webhooks"
    @Option(help: "The herald scheme's header prefix.") var headerPrefix = "X-Herald"
    @Option(help: "Largest body read, in bytes.") var maxBodyBytes = 1 << 20
    @Option(help: "Stop after this many webhooks (0: run until Ctrl-C); with & in a script, `wait` then waits for them.") var count = 0

    func run() async throws {
        let key = try secretFile.map { try readSecret(fromFile: $0, flag: "--secret-file") } ?? secret
        let verification: Verification? =
            switch (key, scheme) {
            case (nil, _): nil
            case (_, "standard-webhooks"): .standardWebhooks(tolerance: Verification.defaultTolerance)
            case (_, "stripe"): .stripe(tolerance: Verification.defaultTolerance)
            case (_, "github"): .github
            case (_, "herald"): .herald(prefix: headerPrefix, tolerance: Verification.defaultTolerance)
            default: throw ValidationError("--scheme: herald, standard-webhooks, stripe or github, not '\(scheme.prefix(40))'")
            }
        let limit = maxBodyBytes
        let (arrivals, arrived) = AsyncStream.makeStream(of: Void.self)
        let router = Router()
        router.on("**", method: .post) { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: limit)
            let body = Array(buffer.readableBytesView)
            let headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
            var lines = ["--- \(Date().formatted(.iso8601)) POST \(request.uri.path) (\(body.count) bytes)"]
            for (name, value) in headers { lines.append("\(name): \(value)") }
            lines.append("")
            lines.append(String(decoding: body, as: UTF8.self))
            if let verification, let key {
                let failure = verification.failure(of: InboundRequest(headers: headers, body: body), secret: key, now: Date())
                lines.append(failure.map { "signature: INVALID (\($0))" } ?? "signature: valid (\(scheme))")
            }
            // Unbuffered, so a pipe sees each request as it comes.
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            arrived.yield()
            return Response(status: .noContent)
        }
        var logger = Logger(label: "herald.listen")
        logger.logLevel = .warning
        FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)/ (any path); Ctrl-C stops\n".utf8))
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "herald-listen"), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let expected = count
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { arrived.finish() }
                try await group.run()
            }
            if expected > 0 {
                // A graceful shutdown: the last request's answer is sent before the listener closes.
                for await _ in arrivals.prefix(expected) {}
                await group.triggerGracefulShutdown()
            }
            try await tasks.waitForAll()
        }
    }
}
