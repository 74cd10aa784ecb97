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
        // The server binds a port the kernel chooses and writes it to a file once it listens:
        // a port picked at random could be taken (CI once lost this test to that).
        let portFile = directory.appendingPathComponent("port")
        let script = """
            import http.server, os, ssl
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers.get("content-length", "0")))
                    self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
                def log_message(self, *a): pass
            server = http.server.HTTPServer(("127.0.0.1", 0), H)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain("\(directory.path)/cert.pem", "\(directory.path)/key.pem")
            server.socket = context.wrap_socket(server.socket, server_side=True)
            with open("\(portFile.path).new", "w") as f:
                f.write(str(server.server_address[1]))
            os.rename("\(portFile.path).new", "\(portFile.path)")
            server.serve_forever()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let errors = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)  // opening it below fails clearly if this did
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        // Python and its TLS context can take seconds to start on a loaded machine.
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let port = Int(text) {
                return TLSReceiver(port: port, process: process, directory: directory)
            }
            guard ContinuousClock.now < deadline, process.isRunning else {
                let ended = !process.isRunning
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                let output = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
                try? FileManager.default.removeItem(at: directory)
                throw TLSReceiverError(ended: ended, output: String(output.suffix(500)))
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
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

/// The TLS receiver's process ended, or did not listen within 30 s; with what it printed.
struct TLSReceiverError: Error, CustomStringConvertible {
    let ended: Bool
    let output: String
    var description: String {
        (ended ? "the TLS receiver's process ended before it listened" : "the TLS receiver did not listen within 30 s")
            + (output.isEmpty ? "" : ": \(output)")
    }
}
