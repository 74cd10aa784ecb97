import Foundation
import Migrations
import Testing

@Suite struct MigrationFileTests {
    @Test(arguments: [("0001_core.sql", 1), ("12_add_keys.sql", 12), ("0100_x_y.sql", 100)])
    func parsesVersions(_ name: String, _ version: Int) throws {
        #expect(try Migration(name: name, sql: "SELECT 1").version == version)
    }

    @Test(arguments: ["core.sql", "0001.sql", "0001_.sql", "0000_zero.sql", "x001_a.sql", "0001_a.txt", "-1_a.sql"])
    func rejectsBadNames(_ name: String) {
        #expect(throws: MigrationError(.invalidFileName, file: name)) { try Migration(name: name, sql: "") }
    }

    @Test func checksumFollowsContent() throws {
        let a = try Migration(name: "0001_a.sql", sql: "CREATE TABLE a ();")
        let b = try Migration(name: "0001_a.sql", sql: "CREATE TABLE a ( );")
        #expect(a.checksum != b.checksum)
        #expect(a.checksum.count == 64)
    }

    @Test func loadsSortedAndIgnoresOtherFiles() throws {
        try withTemporaryDirectory(["0002_b.sql": "B", "0010_c.sql": "C", "0001_a.sql": "A", "README.md": "x"]) { directory in
            let migrations = try Migration.load(directory: directory)
            #expect(migrations.map(\.name) == ["0001_a.sql", "0002_b.sql", "0010_c.sql"])
            #expect(migrations.map(\.sql) == ["A", "B", "C"])
        }
    }

    @Test func duplicateVersionsAreAnError() throws {
        try withTemporaryDirectory(["0001_a.sql": "A", "001_b.sql": "B"]) { directory in
            #expect(throws: MigrationError.self) { try Migration.load(directory: directory) }
        }
    }

    @Test func missingFolderIsAnError() {
        #expect(throws: MigrationError(.unreadable, file: "/nonexistent/migrations")) {
            try Migration.load(directory: "/nonexistent/migrations")
        }
    }

    @Test func theRepositorysMigrationsLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let migrations = try Migration.load(directory: root.appendingPathComponent("migrations").path)
        #expect(migrations.first?.name == "0001_core.sql")
        #expect(migrations.map(\.version) == Array(1...migrations.count))
    }

    /// `body` with a new folder holding `files`, removed afterwards.
    private func withTemporaryDirectory(_ files: [String: String], _ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-migrations-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, content) in files {
            try content.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try body(directory.path)
    }
}

@Suite struct MigrationPlanTests {
    let files = [
        try! Migration(name: "0001_a.sql", sql: "A"),
        try! Migration(name: "0002_b.sql", sql: "B"),
    ]

    @Test func freshDatabaseGetsEverything() throws {
        let plan = try MigrationPlan(files: files, applied: [])
        #expect(plan.pending == files)
        #expect(plan.unknownApplied.isEmpty)
    }

    @Test func appliedFilesAreSkipped() throws {
        let applied = [AppliedMigration(version: 1, name: "0001_a.sql", checksum: files[0].checksum)]
        #expect(try MigrationPlan(files: files, applied: applied).pending == [files[1]])
    }

    @Test func anEditedAppliedFileStopsEverything() {
        let applied = [AppliedMigration(version: 1, name: "0001_a.sql", checksum: String(repeating: "0", count: 64))]
        #expect(throws: MigrationError(.changedAfterApply, file: "0001_a.sql")) {
            try MigrationPlan(files: files, applied: applied)
        }
    }

    @Test func newerVersionsInTheDatabaseAreReportedNotFatal() throws {
        let applied = files.map { AppliedMigration(version: $0.version, name: $0.name, checksum: $0.checksum) }
            + [AppliedMigration(version: 3, name: "0003_future.sql", checksum: "x")]
        let plan = try MigrationPlan(files: files, applied: applied)
        #expect(plan.pending.isEmpty)
        #expect(plan.unknownApplied.map(\.version) == [3])
    }
}
