import Foundation
public import Hummingbird
public import Logging

/// `/healthz`, `/readyz` and `/metrics` for processes that have no API of their own (the worker).
public enum OpsServer {
    public static func application(
        host: String, port: Int, readiness: @escaping @Sendable () async -> [String: Bool], logger: Logger
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ in Self.json(["status": "ok"], status: .ok) }
        router.get("/readyz") { _, _ in
            let checks = await readiness()
            let ready = checks.values.allSatisfy { $0 }
            var body: [String: Any] = ["status": ready ? "ready" : "unavailable"]
            body["checks"] = checks
            return Self.json(body, status: ready ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: Telemetry.render())))
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "herald"), logger: logger)
    }

    private static func json(_ object: [String: Any], status: HTTPResponse.Status) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
