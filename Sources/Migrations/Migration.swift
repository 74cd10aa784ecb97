import Cryptography
import Foundation

/// One numbered SQL file of `migrations/`, e.g. `0001_core.sql`.
public struct Migration: Sendable, Equatable {
    public let version: Int
    /// The file name, recorded in `schema_migrations`.
    public let name: String
    public let sql: String
    /// Hex SHA-256 of the file: an applied file must never change.
    public let checksum: String

    public init(name: String, sql: String) throws(MigrationError) {
        guard name.hasSuffix(".sql"), let underscore = name.firstIndex(of: "_"),
            let version = Int(name[..<underscore]), version > 0,
            name[..<underscore].allSatisfy(\.isASCII), name[name.index(after: underscore)...].count > 4
        else {
            throw MigrationError(.invalidFileName, file: name)
        }
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = Hex.encode(SHA256.hash(Array(sql.utf8)))
    }

    /// The `.sql` files of `directory`, in version order. Other files are ignored;
    /// two files with one version are an error.
    public static func load(directory: String) throws(MigrationError) -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigrationError(.unreadable, file: directory)
        }
        var migrations: [Migration] = []
        for name in names where name.hasSuffix(".sql") {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), let sql = String(data: data, encoding: .utf8)
            else {
                throw MigrationError(.unreadable, file: name)
            }
            migrations.append(try Migration(name: name, sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw MigrationError(.duplicateVersion, file: b.name, other: a.name)
        }
        return migrations
    }
}

/// A row of `schema_migrations`.
public struct AppliedMigration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let checksum: String

    public init(version: Int, name: String, checksum: String) {
        self.version = version
        self.name = name
        self.checksum = checksum
    }
}

/// Which files still need applying, given what the database has recorded.
///
/// An applied file whose checksum changed stops everything: the database no longer
/// matches the code's history. A recorded version with no file (a newer release ran
/// first) is tolerated and reported, so older replicas keep starting in a rolling deploy.
public struct MigrationPlan: Sendable, Equatable {
    public let pending: [Migration]
    /// Versions recorded in the database that no file describes.
    public let unknownApplied: [AppliedMigration]

    public init(files: [Migration], applied: [AppliedMigration]) throws(MigrationError) {
        let byVersion = Dictionary(applied.map { ($0.version, $0) }, uniquingKeysWith: { first, _ in first })
        var pending: [Migration] = []
        for file in files {
            if let record = byVersion[file.version] {
                guard record.checksum == file.checksum else {
                    throw MigrationError(.changedAfterApply, file: file.name)
                }
            } else {
                pending.append(file)
            }
        }
        let known = Set(files.map(\.version))
        self.pending = pending
        self.unknownApplied = applied.filter { !known.contains($0.version) }.sorted { $0.version < $1.version }
    }
}

/// Why migrations could not run.
public struct MigrationError: Error, CustomStringConvertible, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// Not `NNNN_description.sql`.
        public static let invalidFileName = Code("invalidFileName")
        /// Two files share a version number.
        public static let duplicateVersion = Code("duplicateVersion")
        /// A file already applied to the database has been edited since.
        public static let changedAfterApply = Code("changedAfterApply")
        /// The folder or a file could not be read as UTF-8 text.
        public static let unreadable = Code("unreadable")
    }

    public let code: Code
    public let file: String
    public let other: String?

    public init(_ code: Code, file: String, other: String? = nil) {
        self.code = code
        self.file = file
        self.other = other
    }

    public var description: String {
        switch code {
        case .invalidFileName: "migration file '\(file)' is not named NNNN_description.sql"
        case .duplicateVersion: "migration files '\(other ?? "?")' and '\(file)' have the same version"
        case .changedAfterApply:
            "migration '\(file)' was changed after it was applied; add a new migration instead of editing it"
        default: "cannot read migrations from '\(file)'"
        }
    }
}
