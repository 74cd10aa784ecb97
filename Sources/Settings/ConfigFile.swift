import Foundation

/// The optional settings file (`HERALD_CONFIG_FILE`): `NAME=value` lines, as Docker's
/// `env_file` and systemd's `EnvironmentFile` read them, so one file serves all three.
/// Blank lines and `#` comments are skipped, `export ` is allowed, a value may be quoted.
public enum ConfigFile {
    /// The file's settings; an unknown name or a line that is not `NAME=value` fails with
    /// its line number (never the value, which may be a secret).
    public static func parse(_ text: String, path: String) throws(SettingsError) -> [Settings.Key: String] {
        var values: [Settings.Key: String] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let equals = line.firstIndex(of: "=") else {
                throw SettingsError(key: .configFile, reason: "\(path), line \(index + 1): not NAME=value")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard let key = Settings.Key(rawValue: name), key != .configFile else {
                throw SettingsError(key: .configFile, reason: "\(path), line \(index + 1): '\(name.prefix(60))' is not a Herald setting")
            }
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }

    /// The settings of the file named by the flags or the environment; none without one.
    public static func values(environment: [String: String], overrides: [Settings.Key: String]) throws(SettingsError) -> [Settings.Key: String] {
        guard let path = overrides[.configFile] ?? environment[Settings.Key.configFile.rawValue], !path.isEmpty else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingsError(key: .configFile, reason: "cannot read \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }
}
