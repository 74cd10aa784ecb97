import Foundation
import HeraldEvents
import HeraldProducer
import Postgres

/// The worker's instructions per delivery, counted by callgrind (scenario 15). CPU time
/// moves by a quarter from run to run on a shared machine; an instruction count of the same
/// binary doing the same fixed work moves by far less, so a change to the worker shows as a
/// difference of this figure between two binaries in one session.
struct InstructionCount {
    /// Instructions per delivery, the idle share taken out.
    var perDelivery: Double
    /// What the worker executes while no message arrives (heartbeats, timers), per second.
    var idlePerSecond: Double
    /// The counted stretch: deliveries and seconds (under valgrind, some 50 times slower).
    var deliveries: Int
    var seconds: Double
    /// The dump of the counted stretch, for `callgrind_annotate`.
    var profile: String
}

/// Runs one worker under `valgrind --tool=callgrind` on its own database and queues:
/// `warmUp` events first (connections made, statements prepared, caches filled), then the
/// counters are zeroed, `events` more are published and drained, and the count is dumped;
/// then the counters are zeroed again for a few idle seconds, whose rate is taken out of
/// the run. The worker runs a copy of the binary without its debug information: valgrind
/// 3.19 (Debian's) cannot read Swift's DWARF 5; symbols stay, so the profile names functions.
func instructions(_ options: Options, events: Int = 2_000, warmUp: Int = 200) async throws -> InstructionCount {
    let output = URL(fileURLWithPath: options.output)
    let binary = output.appendingPathComponent("herald-callgrind").path
    try runTool("/usr/bin/objcopy", ["--strip-debug", options.herald, binary])
    let profiles = output.appendingPathComponent("callgrind").path
    try? FileManager.default.removeItem(atPath: profiles)
    try FileManager.default.createDirectory(atPath: profiles, withIntermediateDirectories: true)
    let tool: WorkerProcess.Tool = (
        program: "/usr/bin/valgrind",
        arguments: ["--tool=callgrind", "--callgrind-out-file=\(profiles)/worker.out", "--log-file=\(profiles)/valgrind.log"],
        binary: binary
    )
    return try await Scenario.run(options, label: "instructions") { scenario in
        let tenants = try await scenario.database.tenants(options.tenants, receiver: options.receiver)
        try await scenario.startWorkers(1, under: tool, within: .seconds(300))
        let pid = String(scenario.workers[0].process.processIdentifier)
        let producer = scenario.producer()
        func drain(_ count: Int, after done: Int) async throws {
            _ = await publish(producer, count: count) { n in
                Event(id: Event.generateID(), type: "client.created", tenantID: tenants[n % tenants.count], data: payload(n, bytes: 1024))
            }
            try await scenario.database.await(
                "SELECT count(*)::bigint FROM deliveries WHERE status = 'delivered'", reaches: done + count, within: .seconds(900),
                label: "instructions")
        }
        try await drain(warmUp, after: 0)
        try runTool("/usr/bin/callgrind_control", ["--zero", pid])
        let started = ContinuousClock.now
        try await drain(events, after: warmUp)
        let busy = seconds(ContinuousClock.now - started)
        let counted = try dump(pid: pid, in: profiles)
        await producer.close()
        try runTool("/usr/bin/callgrind_control", ["--zero", pid])
        let idleStarted = ContinuousClock.now
        try await Task.sleep(for: .seconds(5))
        let idle = try dump(pid: pid, in: profiles)
        let idlePerSecond = Double(idle.count) / seconds(ContinuousClock.now - idleStarted)
        let perDelivery = (Double(counted.count) - idlePerSecond * busy) / Double(events)
        say(
            "instructions: \(counted.count) for \(events) deliveries in \(String(format: "%.1f", busy)) s under callgrind; idle "
                + "\(Int(idlePerSecond)) per second; \(Int(perDelivery)) per delivery; profile \(counted.file)")
        return InstructionCount(perDelivery: perDelivery, idlePerSecond: idlePerSecond, deliveries: events, seconds: busy, profile: counted.file)
    }
}

/// Asks callgrind to write its counters out and reads the total from the newest dump.
private func dump(pid: String, in folder: String) throws -> (count: Int, file: String) {
    let before = Set(try FileManager.default.contentsOfDirectory(atPath: folder))
    try runTool("/usr/bin/callgrind_control", ["--dump", pid])
    let added = try FileManager.default.contentsOfDirectory(atPath: folder).filter { !before.contains($0) && $0.hasPrefix("worker.out") }
    guard let name = added.sorted().last else { throw BenchError("instructions: callgrind wrote no dump into \(folder)") }
    let file = folder + "/" + name
    let text = try String(contentsOfFile: file, encoding: .utf8)
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("totals:") || $0.hasPrefix("summary:") }),
        let count = Int(line.split(separator: " ").last ?? "")
    else { throw BenchError("instructions: no total in \(file)") }
    return (count, file)
}

/// Runs a program to its end; a failure says which and how it ended.
private func runTool(_ program: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw BenchError("\(program) \(arguments.first ?? "") ended with status \(process.terminationStatus)")
    }
}
