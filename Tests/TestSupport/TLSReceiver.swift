import Foundation
import Glibc

/// An HTTPS receiver with a self-signed certificate (openssl + Python's http.server),
/// for the TLS failure case.
public final class TLSReceiver: Sendable {
    public let port: Int
    private let process: Process
    /// The key and certificate, removed when the receiver stops (the server reads them
    /// after it starts listening).
    private let directory: URL

    public static func start() throws -> TLSReceiver {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-tls-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-keyout", directory.appendingPathComponent("key.pem").path, "-out", directory.appendingPathComponent("cert.pem").path,
        ]
        openssl.standardError = FileHandle.nullDevice
        openssl.standardOutput = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        let port = 30_000 + Int.random(in: 0..<10_000)
        let script = """
            import http.server, ssl
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers.get("content-length", "0")))
                    self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
                def log_message(self, *a): pass
            server = http.server.HTTPServer(("127.0.0.1", \(port)), H)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain("\(directory.path)/cert.pem", "\(directory.path)/key.pem")
            server.socket = context.wrap_socket(server.socket, server_side=True)
            server.serve_forever()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until it accepts TCP connections: Python and its TLS context can take
        // seconds to start on a loaded machine (5 s were not always enough in CI).
        let deadline = ContinuousClock.now + .seconds(30)
        while !Socket.connect(port: port) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                try? FileManager.default.removeItem(at: directory)
                throw TLSReceiverError(port: port)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return TLSReceiver(port: port, process: process, directory: directory)
    }

    private init(port: Int, process: Process, directory: URL) {
        self.port = port
        self.process = process
        self.directory = directory
    }

    /// SIGKILL: a test runner may hand its children an ignored SIGTERM.
    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// The TLS receiver did not accept connections within 30 s (or its process ended).
struct TLSReceiverError: Error, CustomStringConvertible {
    let port: Int
    var description: String { "the TLS receiver on port \(port) did not accept connections within 30 s" }
}

private enum Socket {
    static func connect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
