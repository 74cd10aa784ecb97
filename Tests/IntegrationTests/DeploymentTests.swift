import Foundation
import Testing
import TestSupport

/// The deployment files, checked without a Docker engine.
@Suite("Deployment files")
struct DeploymentTests {
    static let root = TestServices.repositoryRoot

    /// The sources the Dockerfile's build stage copies (`COPY SRC… DEST`, before the
    /// runtime stage's `FROM`).
    static func buildStageSources() throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        var sources: [String] = []
        var stages = 0
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            if words.first == "FROM" { stages += 1 }
            guard stages == 1, words.first == "COPY", words.count >= 3, !words[1].hasPrefix("--") else { continue }
            sources += words[1..<(words.count - 1)]
        }
        return sources
    }

    /// The image once failed to build (`invalid custom path 'bench/HeraldBench'`): the
    /// package is loaded from exactly the files the build stage copies, every target path
    /// checked (a full build there would repeat the suite's own build for minutes), and
    /// what it describes is checked for the library a CRM links.
    @Test func thePackageLoadsFromExactlyTheFilesTheDockerfileCopies() async throws {
        let sources = try Self.buildStageSources()
        #expect(sources.contains("Package.swift") && sources.contains("Sources"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("image"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for source in sources {
            try FileManager.default.copyItem(at: Self.root.appendingPathComponent(source), to: folder.appendingPathComponent(source))
        }
        // A symlink into a folder the image lacks would load here but fail to build there.
        let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isSymbolicLinkKey])
        while let file = files?.nextObject() as? URL {
            guard (try? file.resourceValues(forKeys: [.isSymbolicLinkKey]))?.isSymbolicLink == true else { continue }
            #expect(FileManager.default.fileExists(atPath: file.resolvingSymlinksInPath().path), "\(file.lastPathComponent) points outside the image's files")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "package", "--package-path", folder.path, "describe", "--type", "json"]
        let (status, output) = try await process.runToCompletion()
        #expect(status == 0, "the image's file set does not load: \(output.suffix(2000))")
        #expect(output.contains("\"herald\""))
        try Self.expectOnlyHeraldModulesInTheLibrary(described: output)
    }

    /// A CRM that links HeraldProducer gets only modules named Herald…: none of them can
    /// clash with a module of its own (an `AMQP` or `Events` of the CRM's).
    static func expectOnlyHeraldModulesInTheLibrary(described output: String) throws {
        let json = try #require(output.firstIndex(of: "{").map { output[$0...] })
        let package = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let products = try #require(package["products"] as? [[String: Any]])
        let libraries = products.filter { ($0["type"] as? [String: Any])?["library"] != nil }.compactMap { $0["name"] as? String }
        #expect(libraries == ["HeraldProducer"], "the only library a CRM links")
        let targets = try #require(package["targets"] as? [[String: Any]])
        let dependencies = Dictionary(uniqueKeysWithValues: targets.compactMap { target in
            (target["name"] as? String).map { ($0, target["target_dependencies"] as? [String] ?? []) }
        })
        var closure: Set<String> = []
        var next = ["HeraldProducer"]
        while let name = next.popLast() {
            guard closure.insert(name).inserted else { continue }
            next += dependencies[name] ?? []
        }
        #expect(closure.count >= 4)
        #expect(closure.allSatisfy { $0.hasPrefix("Herald") || $0.hasPrefix("CHerald") }, "\(closure.sorted())")
    }

    @Test func theRuntimeImageRunsAsAnUnprivilegedUser() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        let runtime = try #require(text.components(separatedBy: "\nFROM ").last)
        let user = try #require(runtime.split(separator: "\n").last { $0.hasPrefix("USER ") })
        #expect(!["USER root", "USER 0"].contains(String(user)))
    }

    @Test func theBinaryTellsItsVersion() async throws {
        let process = Process()
        process.executableURL = Self.root.appendingPathComponent(".build/debug/herald")
        process.arguments = ["--version"]
        let (status, output) = try await process.runToCompletion()
        #expect(status == 0)
        let version = output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(version.split(separator: ".").count == 3 && version.split(separator: ".").allSatisfy { Int($0) != nil }, "\(version)")
    }

    @Test func theComposeFileIsValid() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["docker-compose", "--file", Self.root.appendingPathComponent("docker-compose.yml").path, "config", "-q"]
        let (status, output) = try await process.runToCompletion()
        #expect(status == 0, "docker-compose config -q: \(output.suffix(2000))")
    }
}
