import ArgumentParser
import Foundation
import Inbound

/// `herald verify`: the receiver's check, from the terminal, on a request saved to a file.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a saved webhook request's signature against a secret (exit 0: it matches; 1: it does not, and why).",
        discussion: """
            The file holds the request as received: headers (an HTTP request line first is allowed), an \
            empty line, then the body byte for byte, as `nc -l` or a proxy saves it.
            """)

    @Argument(help: ArgumentHelp("The saved request ('-': standard input).", valueName: "file")) var request: String
    @Option(help: "herald, standard-webhooks, stripe or github.") var scheme = "standard-webhooks"
    @Option(help: "The endpoint's signing secret. Arguments show in `ps`: prefer --secret-file.") var secret: String?
    @Option(help: ArgumentHelp("File holding the secret ('-': standard input).", valueName: "path")) var secretFile: String?
    @Option(help: "The herald scheme's header prefix (HERALD_HEADER_PREFIX of the sender).") var headerPrefix = "X-Herald"
    @Option(help: "Refuse a timestamp further than this many seconds from now (0: a saved request's age is not checked).")
    var tolerance = 0

    func validate() throws {
        if (secret == nil) == (secretFile == nil) { throw ValidationError("give --secret or --secret-file") }
        if request == "-" && secretFile == "-" { throw ValidationError("only one of the request and the secret can come from standard input") }
    }

    func run() throws {
        let key = try secretFile.map { try readSecret(fromFile: $0, flag: "--secret-file") } ?? secret ?? ""
        let bytes: [UInt8]
        if request == "-" {
            bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: request) else { throw ValidationError("cannot read \(request)") }
            bytes = Array(data)
        }
        let saved = try Self.parse(bytes)
        // A saved request is old by the time it is checked: its age counts only when asked.
        let window = tolerance > 0 ? tolerance : Int(Int32.max)
        let verification: Verification =
            switch scheme {
            case "standard-webhooks": .standardWebhooks(tolerance: window)
            case "stripe": .stripe(tolerance: window)
            case "github": .github
            case "herald": .herald(prefix: headerPrefix, tolerance: window)
            default: throw ValidationError("--scheme: herald, standard-webhooks, stripe or github, not '\(scheme.prefix(40))'")
            }
        if let failure = verification.failure(of: saved, secret: key, now: Date()) {
            print("invalid: \(failure)")
            throw ExitCode(1)
        }
        print("valid: the \(scheme) signature matches the body (\(saved.body.count) bytes)")
    }

    /// Headers, an empty line (CRLF or LF), the body; a request line first is skipped.
    static func parse(_ bytes: [UInt8]) throws -> InboundRequest {
        let crlf: [UInt8] = Array("\r\n\r\n".utf8)
        let lf: [UInt8] = Array("\n\n".utf8)
        func find(_ needle: [UInt8]) -> Int? {
            guard bytes.count >= needle.count else { return nil }
            return (0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle }
        }
        let (end, separator) =
            switch (find(crlf), find(lf)) {
            case (let a?, let b?): a < b ? (a, crlf.count) : (b, lf.count)
            case (let a?, nil): (a, crlf.count)
            case (nil, let b?): (b, lf.count)
            case (nil, nil): throw ValidationError("the file has no empty line between the headers and the body")
            }
        var headers: [(name: String, value: String)] = []
        for line in String(decoding: bytes[..<end], as: UTF8.self).split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":"), !line.contains(" HTTP/") else { continue }
            headers.append((String(line[..<colon]).trimmingCharacters(in: .whitespaces), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        guard !headers.isEmpty else { throw ValidationError("no header lines (Name: value) before the empty line") }
        return InboundRequest(headers: headers, body: Array(bytes[(end + separator)...]))
    }
}
