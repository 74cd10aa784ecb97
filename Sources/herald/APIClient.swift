import ArgumentParser
import Foundation
import HTTPClient
import Settings

/// The flags of the management commands: only what a client of the API needs (the
/// servers' settings are not theirs to list or to check).
struct APIOptions: ParsableArguments {
    @Option(help: "The management API (HERALD_API_URL).")
    var apiUrl: String?

    @Option(help: "Tenant key, or the operator token for tenants and keys (HERALD_API_KEY). Arguments show in `ps`: prefer the variable or --api-key-file.")
    var apiKey: String?

    @Option(help: ArgumentHelp("File holding the tenant key or operator token ('-': standard input).", valueName: "path"))
    var apiKeyFile: String?

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    @Option(help: ArgumentHelp("Print only this field of the answer (of each item of a list), for scripts: TENANT=$(herald tenants create Studio --field id).", valueName: "name"))
    var field: String?
}

/// A credential from a file ('-': standard input), without its trailing line break: a
/// secret given this way never appears in the process list.
func readSecret(fromFile path: String, flag: String) throws -> String {
    let data: Data
    if path == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        guard let read = FileManager.default.contents(atPath: path) else {
            throw ValidationError("\(flag): cannot read '\(path)'")
        }
        data = read
    }
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
    guard !text.isEmpty else { throw ValidationError("\(flag): '\(path)' is empty") }
    return text
}

/// Exit statuses scripts can rely on: 0 done, 1 refused by the API (4xx), 3 the API could
/// not be reached or failed (5xx); 64 is a usage error (from ArgumentParser).
enum CLIExit {
    static let refused = ExitCode(1)
    static let unavailable = ExitCode(3)
}

/// Calls the management API and prints its answers.
struct APIClient {
    let base: String
    let token: String
    let json: Bool
    let field: String?

    /// Which credential a command needs: each takes its own from the environment, so that
    /// with both variables set every command works.
    enum Credential {
        /// A tenant key: `HERALD_API_KEY`.
        case tenant
        /// The operator token: `HERALD_OPERATOR_TOKEN`.
        case `operator`
        /// Either (revoking a key): the operator token if set, else the tenant key.
        case either
    }

    /// Reads only `HERALD_API_URL`, `HERALD_API_KEY` and `HERALD_OPERATOR_TOKEN`: a server
    /// setting in the same environment (an operator token the API would refuse as too short,
    /// say) never stops a tenant's command.
    init(_ options: APIOptions, credential: Credential = .tenant, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func variable(_ key: Settings.Key) -> String? { environment[key.rawValue].flatMap { $0.isEmpty ? nil : $0 } }
        base = (options.apiUrl ?? variable(.apiURL) ?? Settings.Key.apiURL.defaultValue).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
            throw ValidationError("--api-url / HERALD_API_URL must be an http:// or https:// URL")
        }
        let given = try options.apiKeyFile.map { try readSecret(fromFile: $0, flag: "--api-key-file") } ?? options.apiKey
        let (fallback, needed): (String?, String) =
            switch credential {
            case .tenant: (variable(.apiKey), "a tenant key: set HERALD_API_KEY or pass --api-key-file")
            case .operator: (variable(.operatorToken), "the operator token: set HERALD_OPERATOR_TOKEN or pass --api-key-file")
            case .either:
                (variable(.operatorToken) ?? variable(.apiKey), "the operator token or a tenant key: set HERALD_OPERATOR_TOKEN or HERALD_API_KEY")
            }
        guard let key = given ?? fallback else { throw ValidationError("this command needs \(needed)") }
        token = key
        json = options.json
        field = options.field
    }

    /// Sends a request and returns the parsed JSON answer (nil for 204).
    func send(_ method: String, _ path: String, body: [String: Any]? = nil) async throws -> Any? {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        headers.append(("Authorization", "Bearer \(token)"))
        var bytes: [UInt8] = []
        if let body {
            headers.append(("Content-Type", "application/json"))
            bytes = Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))
        }
        let client = Client()
        let response: Response
        do {
            response = try await client.execute(
                Request(url: base + path, method: method, headers: headers, body: bytes, maxResponseBytes: 16 * 1024 * 1024, overflow: .abort))
            await client.shutdown()
        } catch {
            await client.shutdown()
            printError("cannot reach \(base): \(error)", problem: ["title": "unreachable", "detail": "cannot reach \(base): \(error)"])
            throw CLIExit.unavailable
        }
        let parsed = response.body.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(response.body))
        guard (200..<300).contains(response.status) else {
            var problem = parsed as? [String: Any] ?? ["detail": String(decoding: response.body.prefix(500), as: UTF8.self)]
            problem["status"] = response.status
            printError("\(response.status): \(problem["detail"] as? String ?? "")", problem: problem)
            throw response.status >= 500 ? CLIExit.unavailable : CLIExit.refused
        }
        return parsed
    }

    /// Prints `value` as JSON with `--json`, else as a table of `columns` (a list under
    /// `items`) or as `key: value` lines (one object).
    func show(_ value: Any?, columns: [String]) throws {
        guard let value else { return }
        if let field {
            let objects = (value as? [String: Any])?["items"] as? [[String: Any]] ?? [(value as? [String: Any]) ?? [:]]
            for object in objects {
                guard let found = object[field] else {
                    let known = object.keys.sorted().joined(separator: ", ")
                    printError("--field: the answer has no '\(field.prefix(60))' (it has: \(known))", problem: ["detail": "no field \(field.prefix(60))"])
                    throw ExitCode.validationFailure
                }
                print(Self.text(found))
            }
            return
        }
        if json {
            if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]) {
                print(String(decoding: data, as: UTF8.self))
            }
            return
        }
        if let object = value as? [String: Any], let items = object["items"] as? [[String: Any]] {
            printTable(items, columns: columns)
            if let next = object["next_cursor"] as? String { print("more: --cursor \(next)") }
        } else if let object = value as? [String: Any] {
            let width = object.keys.map(\.count).max() ?? 0
            for key in object.keys.sorted() {
                print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + Self.text(object[key]))
            }
        }
    }

    private func printTable(_ rows: [[String: Any]], columns: [String]) {
        let cells = rows.map { row in columns.map { Self.text(row[$0]) } }
        let widths = columns.indices.map { index in max(columns[index].count, cells.map { $0[index].count }.max() ?? 0) }
        func line(_ values: [String]) -> String {
            zip(values, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        print(line(columns.map { $0.uppercased() }))
        for row in cells { print(line(row)) }
    }

    static func text(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: return "-"
        case let string as String: return string
        case let array as [Any]: return array.map { text($0) }.joined(separator: ",")
        case let object as [String: Any]:
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        case let number as NSNumber:
            return String(cString: number.objCType) == "c" ? (number.boolValue ? "true" : "false") : number.stringValue
        default: return "\(value!)"
        }
    }

    /// On standard error: a line of text, or with `--json` the problem as one JSON object
    /// (the API's problem+json, with its status), so a script parses errors as it parses answers.
    private func printError(_ message: String, problem: [String: Any]) {
        if json, let data = try? JSONSerialization.data(withJSONObject: ["error": problem], options: [.sortedKeys, .withoutEscapingSlashes]) {
            FileHandle.standardError.write(data + Data("\n".utf8))
        } else {
            FileHandle.standardError.write(Data(("herald: " + message + "\n").utf8))
        }
    }
}

/// `KEY=VALUE` pairs from repeated flags.
func pairs(_ values: [String], flag: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for value in values {
        let parts = value.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("\(flag) takes KEY=VALUE, got '\(value.prefix(60))'") }
        result[parts[0]] = parts[1]
    }
    return result
}
