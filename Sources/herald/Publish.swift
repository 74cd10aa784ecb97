import HeraldSupport
import ArgumentParser
import HeraldEvents
import Foundation
import Logging
import HeraldProducer
import Settings
import Topology

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish events to the event exchange, with publisher confirms.",
        discussion: """
            One event from flags (--tenant, --type, and --data or --sample), or JSON lines from a
            file or standard input (--file -), one event object per line:
              {"tenant_id": "…", "type": "client.created", "data": {…}, "id": "…", "attributes": {…}}
            id and occurred_at are optional. Prints one line per event; exits 1 if any failed.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: "Tenant id (UUID).") var tenant: String?
    @Option(help: "Event type, e.g. client.created.") var type: String?
    @Option(help: "The data object as JSON.") var data: String?
    @Flag(help: "Use the catalog's sample payload for --type.") var sample = false
    @Option(help: "Event id (default: generated).") var id: String?
    @Option(name: .customLong("attribute"), help: ArgumentHelp("An attribute (repeatable).", valueName: "KEY=VALUE"))
    var attributes: [String] = []
    @Option(help: "JSON lines to publish; - for standard input.") var file: String?

    func run() async throws {
        let settings = try options.settings()
        let limits = EventLimits(maxDataBytes: settings.maxDataBytes)
        let events = try readEvents(limits: limits)
        let producer = Producer(
            configuration: .init(
                amqpURL: settings.amqpURL, exchange: Topology(prefix: settings.queuePrefix).eventsExchange, limits: limits,
                timeout: settings.publishTimeout),
            logger: Logger(label: "herald.publish"))
        let results = await withTaskGroup(of: (Int, String?).self) { group in
            for (index, event) in events.enumerated() {
                group.addTask {
                    switch event {
                    case .failure(let error): return (index, "\(error)")
                    case .success(let event):
                        do {
                            try await producer.publish(event)
                            return (index, nil)
                        } catch {
                            return (index, "\(error)")
                        }
                    }
                }
            }
            var results = [(Int, String?)]()
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }
        }
        await producer.close()
        var failed = 0
        for (index, error) in results {
            if let error {
                failed += 1
                print("line \(index + 1): failed: \(error)")
            } else if case .success(let event) = events[index] {
                print("published \(event.id) \(event.type)")
            }
        }
        if failed > 0 { throw ExitCode.failure }
    }

    private func readEvents(limits: EventLimits) throws -> [Result<Event, EventError>] {
        if let file {
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                text = String(decoding: data, as: UTF8.self)
            }
            return text.split(separator: "\n", omittingEmptySubsequences: true).map { line in
                Result { () throws(EventError) in try WireFormat.decode(Array(line.utf8), limits: limits, fillingDefaults: true) }
            }
        }
        guard let tenant, let tenantID = UUID(text: tenant) else { throw ValidationError("--tenant must be a UUID") }
        guard let type else { throw ValidationError("--type is required (or --file)") }
        let body: String
        if sample {
            guard let entry = Catalog.entry(type) else { throw ValidationError("no sample for '\(type)' in the catalog") }
            body = entry.sample
        } else {
            guard let data else { throw ValidationError("--data or --sample is required") }
            body = data
        }
        var pairs: [String: String] = [:]
        for attribute in attributes {
            let parts = attribute.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--attribute takes KEY=VALUE") }
            pairs[parts[0]] = parts[1]
        }
        let event = Event(id: id ?? Event.generateID(), type: type, tenantID: tenantID, data: Array(body.utf8), attributes: pairs)
        do {
            try event.validate(limits)
        } catch {
            throw ValidationError(error.description)
        }
        return [.success(event)]
    }
}
