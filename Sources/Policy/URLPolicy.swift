import Foundation

/// Which endpoint URLs a tenant may register. Checked on create and update; the
/// connect-time `AddressPolicy` covers what a name later resolves to.
public struct URLPolicy: Sendable, Equatable {
    /// Accept `http://` as well as `https://` (local development and tests).
    public var allowHTTP: Bool
    /// Host names refused, with all their subdomains (the deployment's own domains, …).
    public var blockedDomains: [String]
    /// Host names exempt from the name rules (e.g. `localhost` in development).
    public var allowedHosts: [String]
    public var maxLength: Int
    /// Ports allowed besides 80 and 443 (`allowedHosts` may use any).
    public var allowedPorts: [Int]

    /// Always refused: loopback and local names, cloud metadata names.
    public static let builtInBlockedDomains = ["localhost", "local", "internal", "localdomain", "home.arpa", "arpa", "metadata.google.internal"]

    public init(allowHTTP: Bool = false, blockedDomains: [String] = [], allowedHosts: [String] = [], allowedPorts: [Int] = [], maxLength: Int = 2048) {
        self.allowHTTP = allowHTTP
        self.allowedPorts = allowedPorts
        self.blockedDomains = blockedDomains.map { $0.lowercased() }
        self.allowedHosts = allowedHosts.map { $0.lowercased() }
        self.maxLength = maxLength
    }

    /// Nil when `url` may be used; otherwise why not, for the API's error.
    public func violation(_ url: String) -> String? {
        guard !url.isEmpty, url.count <= maxLength else { return "must be 1 to \(maxLength) characters" }
        guard url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "\\" }) else {
            return "must be plain ASCII without spaces, control characters or backslashes (use punycode for international names)"
        }
        let lowered = url.lowercased()
        let scheme: String
        if lowered.hasPrefix("https://") {
            scheme = "https"
        } else if lowered.hasPrefix("http://") {
            scheme = "http"
        } else {
            return "must start with https://"
        }
        if scheme == "http" && !allowHTTP { return "must use https" }
        let rest = url.dropFirst(scheme.count + 3)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else { return "must not contain credentials" }
        guard !authority.contains("%") else { return "must not percent-encode the host" }
        guard !authority.contains("["), !authority.contains("]") else { return "must use a host name, not an IP address" }
        var host = Substring(authority)
        var port: Int?
        if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            let text = authority[authority.index(after: colon)...]
            guard text.count <= 5, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber), let number = Int(text), (1...65535).contains(number) else {
                return "has an invalid port"
            }
            port = number
        }
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else { return "has no host" }
        guard URLComponents(string: url)?.host != nil else { return "is not a valid URL" }
        if allowedHosts.contains(name) { return nil }
        if let port, port != 80, port != 443, !allowedPorts.contains(port) {
            return "may use port 80 or 443\(allowedPorts.isEmpty ? "" : " or one of \(allowedPorts.map(String.init).joined(separator: ", "))"), not \(port)"
        }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.allSatisfy(Self.isNumericLabel) { return "must use a host name, not an IP address" }
        guard labels.allSatisfy(Self.isHostLabel) else { return "has an invalid host name" }
        guard labels.count >= 2 else { return "must use a fully qualified host name" }
        if let last = labels.last, last.allSatisfy(\.isNumber) { return "must use a host name, not an IP address" }
        for domain in Self.builtInBlockedDomains + blockedDomains where name == domain || name.hasSuffix("." + domain) {
            return "points to a blocked host"
        }
        return nil
    }

    /// A label inet_aton would read as part of an IPv4 address: decimal, octal or 0x-hex.
    static func isNumericLabel(_ label: Substring) -> Bool {
        if label.hasPrefix("0x") { return label.dropFirst(2).allSatisfy(\.isHexDigit) }
        return !label.isEmpty && label.allSatisfy(\.isNumber)
    }

    static func isHostLabel(_ label: Substring) -> Bool {
        guard (1...63).contains(label.count), label.first != "-", label.last != "-" else { return false }
        return label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
    }
}
