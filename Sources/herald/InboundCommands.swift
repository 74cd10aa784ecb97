import ArgumentParser
import Foundation

/// A source's fields shared by `create` and `update`.
struct SourceFields: ParsableArguments {
    @Option(help: "The sending service, as you name it (GitHub, Creatio forms).") var service: String?
    @Option(help: "none, token, basic, hmac, standard-webhooks, github, stripe, shopify or herald.") var verify: String?
    @Option(
        name: .customLong("verify-option"),
        help: ArgumentHelp("A setting of the method (repeatable): header, prefix, query, username, encoding, signed, timestamp_header, tolerance_seconds.", valueName: "KEY=VALUE"))
    var verifyOptions: [String] = []
    @Option(help: "Secret, token or password (default: generated). Arguments show in `ps`: prefer --secret-file.") var secret: String?
    @Option(help: ArgumentHelp("File holding the secret ('-': standard input).", valueName: "path")) var secretFile: String?
    @Option(help: "Map every webhook to this event type.") var eventType: String?
    @Option(help: "Read the event type from this header.") var eventTypeHeader: String?
    @Option(help: "Read the event type from this JSON path ($.EntityName).") var eventTypePath: String?
    @Option(name: .customLong("event-map"), help: ArgumentHelp("Value → event type; the values are the registered entities (repeatable).", valueName: "VALUE=TYPE"))
    var eventMap: [String] = []
    @Option(help: "The object that becomes the event's data (default: the whole body).") var dataPath: String?
    @Flag(help: "Store only: remove the mapping.") var noMapping = false
    @Option(help: "The header that carries the sender's delivery id.") var dedupHeader: String?
    @Option(help: "The JSON path of the sender's delivery id.") var dedupPath: String?
    @Option(help: "Seconds a delivery id is remembered.") var dedupWindow: Int?
    @Option(help: "Largest body accepted (default 1 MiB).") var maxBodyBytes: Int?
    @Option(name: .customLong("retention"), help: ArgumentHelp("Days kept for a status (repeatable).", valueName: "STATUS=DAYS")) var retention: [String] = []

    func body() throws -> [String: Any] {
        var body: [String: Any] = [:]
        body["service"] = service
        if let verify {
            var verification: [String: Any] = ["method": verify]
            for (key, value) in try pairs(verifyOptions, flag: "--verify-option") {
                verification[key] = key == "tolerance_seconds" ? (Int(value) as Any? ?? value) : value
            }
            body["verification"] = verification
        } else if !verifyOptions.isEmpty {
            throw ValidationError("--verify-option needs --verify")
        }
        if secret != nil && secretFile != nil { throw ValidationError("give --secret or --secret-file, not both") }
        body["secret"] = try secretFile.map { try readSecret(fromFile: $0, flag: "--secret-file") } ?? secret
        var mapping: [String: Any] = [:]
        mapping["event_type"] = eventType
        mapping["event_type_header"] = eventTypeHeader
        mapping["event_type_path"] = eventTypePath
        if !eventMap.isEmpty { mapping["event_types"] = try pairs(eventMap, flag: "--event-map") }
        mapping["data_path"] = dataPath
        if noMapping {
            guard mapping.isEmpty else { throw ValidationError("--no-mapping removes the mapping; give no mapping option with it") }
            body["mapping"] = NSNull()
        } else if !mapping.isEmpty {
            body["mapping"] = mapping
        }
        switch (dedupHeader, dedupPath) {
        case (let header?, nil): body["dedup"] = ["header": header]
        case (nil, let path?): body["dedup"] = ["json_path": path]
        case (nil, nil): break
        default: throw ValidationError("give --dedup-header or --dedup-path, not both")
        }
        body["dedup_window_seconds"] = dedupWindow
        body["max_body_bytes"] = maxBodyBytes
        if !retention.isEmpty {
            body["retention_days"] = try pairs(retention, flag: "--retention").mapValues { (text: String) throws -> Int in
                guard let days = Int(text) else { throw ValidationError("--retention: '\(text)' is not a number of days") }
                return days
            }
        }
        return body
    }
}

struct Sources: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage inbound sources: one URL per sending service (tenant key).",
        subcommands: [Create.self, List.self, Show.self, Update.self, Delete.self, RotateURL.self, Secret.self])

    static let columns = ["id", "name", "service", "url"]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a source; prints its URL and secret.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The source's name.") var name: String
        @OptionGroup var fields: SourceFields

        func run() async throws {
            let client = try APIClient(api)
            var body = try fields.body()
            body["name"] = name
            if body["verification"] == nil { body["verification"] = ["method": "none"] }
            try client.show(try await client.send("POST", "/v1/sources", body: body), columns: [])
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's sources.")
        @OptionGroup var api: APIOptions
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("GET", "/v1/sources"), columns: Sources.columns)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one source: its URL, verification and mapping.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("GET", "/v1/sources/\(id)"), columns: [])
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a source's verification, mapping or limits.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        @Option(help: "A new name.") var name: String?
        @OptionGroup var fields: SourceFields

        func run() async throws {
            let client = try APIClient(api)
            var body = try fields.body()
            body["name"] = name
            try client.show(try await client.send("PATCH", "/v1/sources/\(id)", body: body), columns: [])
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a source and its stored webhooks; its URL answers 404.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            _ = try await client.send("DELETE", "/v1/sources/\(id)")
            if !api.json { print("deleted \(id)") }
        }
    }

    struct RotateURL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-url", abstract: "A new URL; the old one keeps working for the grace period, then answers 404.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        @Option(help: "Seconds the old URL keeps working (default: HERALD_ROTATION_GRACE).") var grace: Int?
        func run() async throws {
            let client = try APIClient(api)
            var body: [String: Any] = [:]
            body["grace_seconds"] = grace
            try client.show(try await client.send("POST", "/v1/sources/\(id)/rotate-url", body: body), columns: [])
        }
    }

    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reveal the verification secret, to paste into the sending service.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("GET", "/v1/sources/\(id)/secret"), columns: [])
        }
    }
}

struct InboundWebhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inbound", abstract: "Read the webhooks sources received, replay one through its mapping (tenant key).",
        subcommands: [List.self, Show.self, Replay.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the webhooks sources received, newest first.")
        @OptionGroup var api: APIOptions
        @Option(help: "Only this source.") var source: String?
        @Option(help: "received, processed, parse_error, rejected or duplicate.") var status: String?
        @Option(help: "Received at or after (ISO 8601).") var since: String?
        @Option(help: "Received before (ISO 8601).") var until: String?
        @Option(help: "Page size, 1 to 200.") var limit: Int?
        @Option(help: "Next page, from a previous answer.") var cursor: String?

        func run() async throws {
            let client = try APIClient(api)
            var query: [String] = []
            for (name, value) in [("source_id", source), ("status", status), ("since", since), ("until", until), ("limit", limit.map(String.init)), ("cursor", cursor)] {
                if let value { query.append("\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value)") }
            }
            let path = query.isEmpty ? "/v1/inbound" : "/v1/inbound?" + query.joined(separator: "&")
            try client.show(try await client.send("GET", path), columns: ["id", "received_at", "status", "response_status", "event_type", "error"])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one received webhook: headers, body and what it became.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("GET", "/v1/inbound/\(id)"), columns: [])
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a stored webhook through its source's present mapping again.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("POST", "/v1/inbound/\(id)/replay"), columns: [])
        }
    }
}
