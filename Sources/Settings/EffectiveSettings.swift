import Foundation

/// One setting as `herald config` shows it: its value with secrets masked, and where the
/// value came from.
public struct EffectiveSetting: Sendable, Equatable {
    /// Where a value came from; a flag wins over the environment, the environment over the
    /// settings file, the file over the default.
    public enum Source: String, Sendable {
        case `default`, file, environment, flag
    }

    public var key: Settings.Key
    public var value: String
    public var source: Source
}

extension Settings {
    /// Every setting in the order `--help` lists them, with the value this process would use
    /// and its source. Secrets (tokens, keys) show as `********` when set; a URL keeps
    /// everything but its password.
    public static func effective(environment: [String: String], file: [Key: String] = [:], overrides: [Key: String] = [:]) -> [EffectiveSetting] {
        Key.allCases.map { key in
            let (value, source): (String, EffectiveSetting.Source) =
                if let flag = overrides[key] {
                    (flag, .flag)
                } else if let variable = environment[key.rawValue] {
                    (variable, .environment)
                } else if let line = file[key] {
                    (line, .file)
                } else {
                    (key.defaultValue, .default)
                }
            return EffectiveSetting(key: key, value: mask(value, of: key), source: source)
        }
    }

    /// The keys whose whole value is a secret.
    static let secretKeys: Set<Key> = [.operatorToken, .secretKey, .retiredSecretKeys, .apiKey, .otlpHeaders]

    /// `value` as it may be shown: a secret as `********` (empty stays empty), a URL's
    /// password as `****`.
    static func mask(_ value: String, of key: Key) -> String {
        if secretKeys.contains(key) { return value.isEmpty ? "" : "********" }
        guard value.contains("://") else { return value }
        // A list of URLs (a cluster's nodes): each masked on its own.
        return value.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let url = item.trimmingCharacters(in: .whitespaces)
            guard url.contains("@") || url.contains("://") else { return String(item) }
            guard var components = URLComponents(string: url) else { return "(a URL that cannot be shown)" }
            guard components.password != nil else { return url.contains("@") && components.user == nil ? "(a URL that cannot be shown)" : url }
            components.password = "****"
            return components.string ?? "(a URL that cannot be shown)"
        }.joined(separator: ",")
    }
}
