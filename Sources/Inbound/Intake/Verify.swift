import Cryptography
import Delivery
package import Foundation
import HeraldSupport

/// A request to a source's URL as the intake sees it: no socket, no server types.
package struct InboundRequest: Sendable {
    package var headers: [(name: String, value: String)]
    /// The query's parameters, decoded.
    package var query: [(name: String, value: String)]
    /// The body as read: all of it, or nothing when it was larger than the source allows.
    package var body: [UInt8]
    /// Bytes the sender sent or announced (more than were read when too large).
    package var bodySize: Int
    package var isTooLarge: Bool
    /// The body did not arrive in time.
    package var timedOut: Bool
    package var remoteAddress: String

    package init(
        headers: [(name: String, value: String)], query: [(name: String, value: String)] = [], body: [UInt8], bodySize: Int? = nil,
        isTooLarge: Bool = false, timedOut: Bool = false, remoteAddress: String = ""
    ) {
        self.headers = headers
        self.query = query
        self.body = body
        self.bodySize = bodySize ?? body.count
        self.isTooLarge = isTooLarge
        self.timedOut = timedOut
        self.remoteAddress = remoteAddress
    }

    /// The first value of a header, by name compared as HTTP compares them: ASCII letters
    /// in either case, every other byte as it is.
    package func header(_ name: String) -> String? {
        headers.first { HTTPToken.equalIgnoringASCIICase($0.name, name) }?.value
    }
}

extension Verification {
    /// Why `request` is not from the sender holding `secret`; nil when it is. Every
    /// signature and token is compared in constant time.
    package func failure(of request: InboundRequest, secret: String, now: Date) -> String? {
        switch self {
        case .none:
            return nil
        case .headerToken(let header, let prefix):
            guard let value = request.header(header) else { return "the \(header) header is missing" }
            guard value.hasPrefix(prefix) else { return "the \(header) header does not start with '\(prefix)'" }
            return Self.sameSecret(String(value.dropFirst(prefix.count)), secret) ? nil : "the token in \(header) is wrong"
        case .queryToken(let parameter):
            guard let value = request.query.first(where: { $0.name == parameter })?.value else {
                return "the query parameter \(parameter) is missing"
            }
            return Self.sameSecret(value, secret) ? nil : "the token in the query parameter \(parameter) is wrong"
        case .basic(let username):
            guard let header = request.header("Authorization"), header.count > 6, header.prefix(6).lowercased() == "basic ",
                let decoded = Base64.decode(header.dropFirst(6).trimmingCharacters(in: .whitespaces)),
                let credentials = String(validating: decoded, as: UTF8.self), let colon = credentials.firstIndex(of: ":")
            else { return "the Authorization header does not carry Basic credentials" }
            let userMatches = Self.sameSecret(String(credentials[..<colon]), username)
            let passwordMatches = Self.sameSecret(String(credentials[credentials.index(after: colon)...]), secret)
            return userMatches && passwordMatches ? nil : "the Basic credentials are wrong"
        case .hmac(let header, let prefix, let encoding, let signed):
            guard let value = request.header(header) else { return "the \(header) header is missing" }
            guard value.hasPrefix(prefix) else { return "the \(header) header does not start with '\(prefix)'" }
            let given = String(value.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
            var message = request.body
            if case .timestampedBody(let timestampHeader, let tolerance) = signed {
                guard let timestamp = request.header(timestampHeader) else { return "the \(timestampHeader) header is missing" }
                guard let time = Self.time(timestamp) else { return "the \(timestampHeader) header is not unix seconds or an ISO 8601 time" }
                if let stale = Self.staleness(time, now: now, tolerance: tolerance, header: timestampHeader) { return stale }
                message = Array("\(timestamp).".utf8) + request.body
            }
            let expected = SHA256.hmac(key: Array(secret.utf8), message: message)
            let decoded = encoding == .hex ? Hex.decode(given.lowercased()) : Base64.decode(given)
            guard let decoded else { return "the \(header) header is not \(encoding.rawValue)" }
            return constantTimeEquals(decoded, expected) ? nil : "the signature in \(header) does not match the body"
        case .github:
            guard let value = request.header("X-Hub-Signature-256") else { return "the X-Hub-Signature-256 header is missing" }
            guard value.hasPrefix("sha256="), let given = Hex.decode(value.dropFirst(7).lowercased()) else {
                return "the X-Hub-Signature-256 header is not sha256=<hex>"
            }
            let expected = SHA256.hmac(key: Array(secret.utf8), message: request.body)
            return constantTimeEquals(given, expected) ? nil : "the signature in X-Hub-Signature-256 does not match the body"
        case .shopify:
            guard let value = request.header("X-Shopify-Hmac-Sha256") else { return "the X-Shopify-Hmac-Sha256 header is missing" }
            guard let given = Base64.decode(value.trimmingCharacters(in: .whitespaces)) else { return "the X-Shopify-Hmac-Sha256 header is not base64" }
            let expected = SHA256.hmac(key: Array(secret.utf8), message: request.body)
            return constantTimeEquals(given, expected) ? nil : "the signature in X-Shopify-Hmac-Sha256 does not match the body"
        case .stripe(let tolerance):
            guard let value = request.header("Stripe-Signature") else { return "the Stripe-Signature header is missing" }
            var timestamp: String?
            var signatures: [[UInt8]] = []
            for item in value.split(separator: ",") {
                let pair = item.split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { continue }
                let key = pair[0].trimmingCharacters(in: .whitespaces)
                if key == "t" { timestamp = String(pair[1]) }
                if key == "v1", let bytes = Hex.decode(pair[1].lowercased()) { signatures.append(bytes) }
            }
            guard let timestamp, let seconds = Int64(timestamp) else { return "the Stripe-Signature header has no t=<seconds>" }
            guard !signatures.isEmpty else { return "the Stripe-Signature header has no v1 signature" }
            if let stale = Self.staleness(Date(timeIntervalSince1970: Double(seconds)), now: now, tolerance: tolerance, header: "Stripe-Signature") {
                return stale
            }
            let expected = SHA256.hmac(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + request.body)
            return Self.anyMatches(signatures, expected) ? nil : "no v1 signature in Stripe-Signature matches the body"
        case .standardWebhooks(let tolerance):
            guard let id = request.header("webhook-id"), let timestamp = request.header("webhook-timestamp"),
                let signatureHeader = request.header("webhook-signature")
            else { return "the webhook-id, webhook-timestamp and webhook-signature headers are required" }
            guard let seconds = Int64(timestamp) else { return "the webhook-timestamp header is not unix seconds" }
            if let stale = Self.staleness(Date(timeIntervalSince1970: Double(seconds)), now: now, tolerance: tolerance, header: "webhook-timestamp") {
                return stale
            }
            let expected = SHA256.hmac(key: Signature.standardKey(secret), message: Array("\(id).\(timestamp).".utf8) + request.body)
            let given = signatureHeader.split(separator: " ").compactMap { entry -> [UInt8]? in
                guard entry.hasPrefix("v1,") else { return nil }
                return Base64.decode(entry.dropFirst(3))
            }
            guard !given.isEmpty else { return "the webhook-signature header has no v1 signature" }
            return Self.anyMatches(given, expected) ? nil : "no v1 signature in webhook-signature matches the body"
        case .herald(let prefix, let tolerance):
            let signatureName = "\(prefix)-Signature"
            let timestampName = "\(prefix)-Timestamp"
            guard let given = request.header(signatureName), let timestamp = request.header(timestampName) else {
                return "the \(signatureName) and \(timestampName) headers are required"
            }
            guard let time = RFC3339.parse(timestamp) else { return "the \(timestampName) header is not an ISO 8601 time" }
            if let stale = Self.staleness(time, now: now, tolerance: tolerance, header: timestampName) { return stale }
            let expected = Signature.herald(secret: secret, timestamp: timestamp, body: request.body)
            return constantTimeEquals(Array(given.utf8), Array(expected.utf8)) ? nil : "the signature in \(signatureName) does not match the body"
        }
    }

    /// Every candidate is compared, so the time taken does not say which one matched.
    static func anyMatches(_ candidates: [[UInt8]], _ expected: [UInt8]) -> Bool {
        var matched = false
        for candidate in candidates where constantTimeEquals(candidate, expected) { matched = true }
        return matched
    }

    /// Token comparison that reveals neither the contents nor the length of the secret.
    static func sameSecret(_ given: String, _ secret: String) -> Bool {
        constantTimeEquals(SHA256.hash(Array(given.utf8)), SHA256.hash(Array(secret.utf8)))
    }

    static func time(_ text: String) -> Date? {
        if let seconds = Int64(text) { return Date(timeIntervalSince1970: Double(seconds)) }
        return RFC3339.parse(text)
    }

    /// Why `time` is too far from `now`; nil within the tolerance. In floating point: a
    /// sender's timestamp may be anything an Int64 holds, which no Int conversion survives.
    static func staleness(_ time: Date, now: Date, tolerance: Int, header: String) -> String? {
        let distance = time.timeIntervalSince(now)
        if abs(distance) <= Double(tolerance) { return nil }
        let shown = abs(distance) < 1e9 ? "\(Int(abs(distance).rounded())) s" : "more than 30 years"
        return "the \(header) time is \(shown) \(distance < 0 ? "old" : "ahead"); the tolerance is \(tolerance) s"
    }
}
