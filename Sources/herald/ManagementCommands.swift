import ArgumentParser
import FanOut
import Foundation

struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and list tenants, open their portal (operator token).", subcommands: [Create.self, List.self, PortalLink.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant; prints it with its id.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The tenant's name.") var name: String

        func run() async throws {
            let client = try APIClient(api, credential: .operator)
            try client.show(try await client.send("POST", "/v1/tenants", body: ["name": name]), columns: [])
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenants.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            let client = try APIClient(api, credential: .operator)
            try client.show(try await client.send("GET", "/v1/tenants"), columns: ["id", "name", "created_at"])
        }
    }

    struct PortalLink: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "portal-link", abstract: "A single-use link that opens the tenant portal (append its path to Herald's address).")
        @OptionGroup var api: APIOptions
        @Argument(help: "Tenant id.") var tenant: String
        @Flag(help: "The session can look but not change anything.") var readOnly = false

        func run() async throws {
            let client = try APIClient(api, credential: .operator)
            try client.show(try await client.send("POST", "/v1/tenants/\(tenant)/portal-links", body: ["read_only": readOnly]), columns: [])
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Issue (operator token), list and revoke tenant API keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a tenant's keys (never the keys themselves): with --tenant and the operator token, or the tenant's own with its key.")
        @OptionGroup var api: APIOptions
        @Option(help: "Tenant id (operator token); without it, the keys of the tenant whose key is used.") var tenant: String?

        func run() async throws {
            let columns = ["id", "name", "created_at", "revoked_at"]
            if let tenant {
                let client = try APIClient(api, credential: .operator)
                try client.show(try await client.send("GET", "/v1/tenants/\(tenant)/keys"), columns: columns)
            } else {
                let client = try APIClient(api)
                try client.show(try await client.send("GET", "/v1/keys"), columns: columns)
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue an API key for a tenant; the key is shown once.")
        @OptionGroup var api: APIOptions
        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "A name to recognise the key by.") var name: String = ""

        func run() async throws {
            let client = try APIClient(api, credential: .operator)
            try client.show(try await client.send("POST", "/v1/tenants/\(tenant)/keys", body: ["name": name]), columns: [])
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key; requests with it are refused at once.")
        @OptionGroup var api: APIOptions
        @Argument(help: "Key id.") var id: String

        func run() async throws {
            let client = try APIClient(api, credential: .either)
            _ = try await client.send("DELETE", "/v1/keys/\(id)")
            if !api.json { print("revoked \(id)") }
        }
    }
}

/// Endpoint fields shared by `create` and `update`.
struct EndpointFields: ParsableArguments {
    @Option(help: "Target URL.") var url: String?
    @Option(help: "Event types and wildcards, comma-separated (client.created,invoice.*).") var events: String?
    @Option(help: "Description.") var description: String?
    @Option(help: "Payload format: raw, envelope, craftdesk or customermates.") var format: String?
    @Option(
        name: .customLong("rename"),
        help: ArgumentHelp("Rename an envelope key (repeatable): id, type, timestamp, tenant or data.", valueName: "KEY=NAME"))
    var renames: [String] = []
    @Option(name: .customLong("payload-filter"), help: ArgumentHelp("Filter on the event's data, as JSON ('{}' removes it).", valueName: "JSON"))
    var payloadFilter: String?
    @Option(help: "Signature profile: \(SignatureProfile.names.joined(separator: ", ")).") var signature: String?
    @Option(help: "body-hmac: the header holding the signature.") var signatureHeader: String?
    @Option(help: "body-hmac: hex (default) or base64.") var signatureEncoding: String?
    @Option(help: "body-hmac: written before the digest, such as sha256=.") var signatureValuePrefix: String?
    @Option(help: "body-hmac: a header carrying the event type.") var signatureEventHeader: String?
    @Option(help: "timestamped-hmac: the headers' prefix, such as X-CreatorDesk.") var signatureHeaderPrefix: String?
    @Option(name: .customLong("header"), help: ArgumentHelp("Custom header (repeatable).", valueName: "NAME=VALUE")) var headers: [String] = []
    @Option(
        name: .customLong("header-file"),
        help: ArgumentHelp("Custom headers, one NAME=VALUE a line ('-': standard input): for credentials, which `ps` would show as --header.", valueName: "path"))
    var headerFile: String?
    @Option(name: .customLong("filter"), help: ArgumentHelp("Attribute filter (repeatable).", valueName: "KEY=V1,V2")) var filters: [String] = []
    @Option(help: ArgumentHelp("The most requests per second the endpoint receives from all workers (0 removes the limit).", valueName: "N"))
    var rateLimit: Int?
    @Option(help: "true: one delivery at a time, in the order the events were stored (FIFO); a retrying delivery holds the ones behind it.")
    var ordered: Bool?
    @Option(help: "Confirms the DPA in this person's name.") var dpaConfirmedBy: String?
    @Option(help: "true to enable (needs the DPA), false to disable.") var enabled: Bool?

    func body() throws -> [String: Any] {
        var body: [String: Any] = [:]
        body["url"] = url
        body["event_types"] = events.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        body["description"] = description
        body["payload_format"] = format
        if !renames.isEmpty { body["payload_fields"] = try pairs(renames, flag: "--rename") }
        if let payloadFilter {
            guard let filter = try? JSONSerialization.jsonObject(with: Data(payloadFilter.utf8)) as? [String: Any] else {
                throw ValidationError("--payload-filter: must be a JSON object, such as '{\"total\": {\"$gte\": \"1000\"}}'")
            }
            body["payload_filter"] = filter
        }
        let settings: [String: String?] = [
            "header": signatureHeader, "encoding": signatureEncoding, "value_prefix": signatureValuePrefix, "event_header": signatureEventHeader,
            "header_prefix": signatureHeaderPrefix,
        ]
        let given = settings.compactMapValues { $0 }
        if let signature {
            body["signature"] = given.merging(["profile": signature]) { $1 }
        } else if !given.isEmpty {
            throw ValidationError("--signature-… options need --signature naming the profile")
        }
        let headers = try headerPairs()
        if !headers.isEmpty { body["headers"] = headers }
        if !filters.isEmpty { body["filters"] = try pairs(filters, flag: "--filter").mapValues { $0.split(separator: ",").map(String.init) } }
        body["rate_limit"] = rateLimit
        body["ordered"] = ordered
        body["dpa_confirmed_by"] = dpaConfirmedBy
        body["enabled"] = enabled
        return body
    }

    /// The headers of --header-file, then of --header (which win).
    func headerPairs() throws -> [String: String] {
        var result: [String: String] = [:]
        if let headerFile {
            let lines = try readSecret(fromFile: headerFile, flag: "--header-file").split(whereSeparator: \.isNewline).map(String.init)
            result = try pairs(lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }, flag: "--header-file")
        }
        return result.merging(try pairs(headers, flag: "--header")) { _, flag in flag }
    }
}

struct Endpoints: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the tenant's webhook endpoints (tenant key).",
        subcommands: [
            Create.self, List.self, Show.self, Update.self, Delete.self, Enable.self, Disable.self, Activate.self, RotateSecret.self,
            ConfirmSecret.self, Secret.self, Test.self,
        ])

    static let columns = ["id", "url", "event_types", "enabled", "consecutive_failures", "disabled_reason"]

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an endpoint; prints it with its signing secret.")
        @OptionGroup var api: APIOptions
        @OptionGroup var fields: EndpointFields
        @Option(help: "Signing secret (default: generated). Arguments show in `ps`: prefer --secret-file.") var secret: String?
        @Option(help: ArgumentHelp("File holding the signing secret ('-': standard input).", valueName: "path")) var secretFile: String?

        func validate() throws {
            if secret != nil && secretFile != nil { throw ValidationError("give --secret or --secret-file, not both") }
        }

        func run() async throws {
            let client = try APIClient(api)
            var body = try fields.body()
            body["secret"] = try secretFile.map { try readSecret(fromFile: $0, flag: "--secret-file") } ?? secret
            try client.show(try await client.send("POST", "/v1/endpoints", body: body), columns: [])
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's endpoints.")
        @OptionGroup var api: APIOptions
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("GET", "/v1/endpoints"), columns: Endpoints.columns)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one endpoint with all its settings.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("GET", "/v1/endpoints/\(id)"), columns: [])
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an endpoint's fields; --header adds or replaces one header and keeps the others.")

        @OptionGroup var api: APIOptions
        @Argument var id: String
        @OptionGroup var fields: EndpointFields
        @Option(name: .customLong("remove-header"), help: ArgumentHelp("Remove a custom header (repeatable).", valueName: "NAME"))
        var removedHeaders: [String] = []

        func run() async throws {
            let client = try APIClient(api)
            var body = try fields.body()
            let given = try fields.headerPairs()
            if !given.isEmpty || !removedHeaders.isEmpty {
                // The API replaces the whole map: start from the current one. Its redacted
                // values go back as "[redacted]", which keeps what they stand for.
                let current = try await client.send("GET", "/v1/endpoints/\(id)") as? [String: Any]
                var headers = current?["headers"] as? [String: String] ?? [:]
                for name in removedHeaders {
                    guard let existing = headers.keys.first(where: { $0.caseInsensitiveCompare(name) == .orderedSame }) else {
                        throw ValidationError("--remove-header: the endpoint has no header '\(name.prefix(100))'")
                    }
                    headers[existing] = nil
                }
                for (name, value) in given {
                    if let existing = headers.keys.first(where: { $0.caseInsensitiveCompare(name) == .orderedSame }) { headers[existing] = nil }
                    headers[name] = value
                }
                body["headers"] = headers
            }
            try client.show(try await client.send("PATCH", "/v1/endpoints/\(id)", body: body), columns: [])
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an endpoint and its delivery log.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            _ = try await client.send("DELETE", "/v1/endpoints/\(id)")
            if !api.json { print("deleted \(id)") }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable an endpoint (its DPA must be confirmed).")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("POST", "/v1/endpoints/\(id)/enable"), columns: [])
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an endpoint; its deliveries are recorded as skipped.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("POST", "/v1/endpoints/\(id)/disable"), columns: [])
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-enable after an automatic disable; reset the failure count.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        @Flag(help: "Also resend the deliveries skipped while it was disabled.") var replaySkipped = false
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("POST", "/v1/endpoints/\(id)/activate", body: ["replay_skipped": replaySkipped]), columns: [])
        }
    }

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a new signing secret; the previous one signs during the grace period.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        @Option(help: "Seconds the old secret keeps signing (default: HERALD_ROTATION_GRACE).") var grace: Int?
        func run() async throws {
            let client = try APIClient(api)
            var body: [String: Any] = [:]
            body["grace_seconds"] = grace
            try client.show(try await client.send("POST", "/v1/endpoints/\(id)/rotate-secret", body: body), columns: [])
        }
    }

    struct ConfirmSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Confirm a rotation: the receiver has the new secret, so the previous one stops signing.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("POST", "/v1/endpoints/\(id)/confirm-secret"), columns: [])
        }
    }

    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reveal the signing secret.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("GET", "/v1/endpoints/\(id)/secret"), columns: [])
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a catalog sample event to this endpoint through the pipeline.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        @Option(help: "Event type from the catalog.") var event: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("POST", "/v1/endpoints/\(id)/test", body: ["event_type": event]), columns: [])
        }
    }
}

struct Deliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the delivery log, resend deliveries (tenant key).", subcommands: [List.self, Show.self, Retry.self, Recover.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deliveries, newest first (filter by endpoint, status, event).")
        @OptionGroup var api: APIOptions
        @Option(help: "Only this endpoint.") var endpoint: String?
        @Option(help: "pending, retrying, delivered, failed or skipped.") var status: String?
        @Option(help: "Only this event type.") var type: String?
        @Option(help: "Only the deliveries of this event id.") var event: String?
        @Option(help: "Created at or after (ISO 8601).") var since: String?
        @Option(help: "Created before (ISO 8601).") var until: String?
        @Option(help: "Page size, 1 to 200.") var limit: Int?
        @Option(help: "Next page, from a previous answer.") var cursor: String?

        func run() async throws {
            let client = try APIClient(api)
            var query: [String] = []
            for (name, value) in [("status", status), ("event_type", type), ("event_id", event), ("since", since), ("until", until), ("limit", limit.map(String.init)), ("cursor", cursor)] {
                if let value { query.append("\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value)") }
            }
            let base = endpoint.map { "/v1/endpoints/\($0)/deliveries" } ?? "/v1/deliveries"
            let path = query.isEmpty ? base : base + "?" + query.joined(separator: "&")
            try client.show(try await client.send("GET", path), columns: ["id", "event_type", "event_id", "status", "attempts", "last_status_code", "created_at"])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one delivery with its event and every attempt.")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            let detail = try await client.send("GET", "/v1/deliveries/\(id)")
            let object = detail as? [String: Any]
            let attempts: [String: Any] = ["items": object?["attempts"] ?? []]
            if let field = client.field {
                // The delivery's field, or each attempt's when only the attempts have it.
                let delivery = object?["delivery"] as? [String: Any]
                try client.show(delivery?[field] != nil ? delivery : attempts, columns: [])
                return
            }
            if api.json {
                try client.show(detail, columns: [])
                return
            }
            try client.show(object?["delivery"], columns: [])
            print("")
            try client.show(attempts, columns: ["attempt", "trigger", "started_at", "duration_ms", "status_code", "error_class", "response_excerpt"])
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resend now with a new request id (recorded as manual).")
        @OptionGroup var api: APIOptions
        @Argument var id: String
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("POST", "/v1/deliveries/\(id)/retry"), columns: [])
        }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resend every failed delivery of an endpoint since a time.")
        @OptionGroup var api: APIOptions
        @Option(help: "Endpoint id.") var endpoint: String
        @Option(help: "ISO 8601 date-time.") var since: String
        @Flag(help: "Only count them.") var dryRun = false
        func run() async throws {
            let client = try APIClient(api)
            try client.show(try await client.send("POST", "/v1/endpoints/\(endpoint)/recover", body: ["since": since, "dry_run": dryRun]), columns: [])
        }
    }
}

struct ParkedMessages: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parked",
        abstract: "Messages the worker could not process: list, replay once the cause is fixed, or discard (operator token).",
        subcommands: [List.self, Replay.self, Discard.self])

    /// The API path of one parked message (its id may be an old message id of any text).
    static func path(_ id: String) -> String {
        "/v1/parked/" + (id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? id)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List parked messages with the reason each was parked.")
        @OptionGroup var api: APIOptions
        @Option(help: "How many, 1 to 1000 (default 100).") var limit: Int?

        func run() async throws {
            let client = try APIClient(api, credential: .operator)
            let path = limit.map { "/v1/parked?limit=\($0)" } ?? "/v1/parked"
            try client.show(try await client.send("GET", path), columns: ["id", "parked_at", "routing_key", "body_bytes", "reason"])
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a parked message into the work queue again.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The parked message's id (from list).") var id: String

        func run() async throws {
            let client = try APIClient(api, credential: .operator)
            _ = try await client.send("POST", ParkedMessages.path(id) + "/replay")
            if !api.json { print("replayed \(id)") }
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a parked message for good.")
        @OptionGroup var api: APIOptions
        @Argument(help: "The parked message's id (from list).") var id: String

        func run() async throws {
            let client = try APIClient(api, credential: .operator)
            _ = try await client.send("DELETE", ParkedMessages.path(id))
            if !api.json { print("discarded \(id)") }
        }
    }
}
