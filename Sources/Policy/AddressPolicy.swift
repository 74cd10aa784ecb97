import Foundation
public import HTTPClient

/// Which addresses deliveries may connect to: never loopback, private, link-local,
/// CGNAT, multicast, unspecified, reserved or cloud-metadata ranges (IPv4 and IPv6,
/// IPv4-mapped and NAT64 forms included), unless an operator allow-list names them.
/// Checked on the address the socket is about to connect to, so a DNS answer that
/// changed after the URL was accepted cannot reach an internal service.
public struct AddressPolicy: Sendable, Equatable {
    public var allowed: [Network]

    public init(allowed: [Network] = []) {
        self.allowed = allowed
    }

    public func permits(_ address: SocketAddress) -> Bool {
        if allowed.contains(where: { $0.contains(address.bytes) }) { return true }
        return !Self.isForbidden(address.bytes)
    }

    /// The closure form the HTTP client takes.
    public var check: @Sendable (SocketAddress) -> Bool {
        let policy = self
        return { policy.permits($0) }
    }

    static let forbidden: [Network] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fe80::/10", "fec0::/10", "fc00::/7", "ff00::/8", "2001:db8::/32", "100::/64", "2001::/32",
        "64:ff9b:1::/48",
    ].compactMap { Network($0) }

    static func isForbidden(_ bytes: [UInt8]) -> Bool {
        if bytes.count == 16 {
            // IPv4-mapped (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), IPv4-compatible
            // (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address in their last four bytes.
            let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
            let translated = bytes[0..<8].allSatisfy { $0 == 0 } && bytes[8] == 0xff && bytes[9] == 0xff && bytes[10] == 0 && bytes[11] == 0
            let compatible = bytes[0..<12].allSatisfy { $0 == 0 } && bytes[12..<16].contains { $0 != 0 }
            let nat64 = bytes[0..<12] == [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0][...]
            if mapped || translated || compatible || nat64 { return isForbidden(Array(bytes[12..<16])) }
            // 6to4 (2002:aabb:ccdd::/48) carries it in bytes 2 to 5.
            if bytes[0] == 0x20 && bytes[1] == 0x02 && isForbidden(Array(bytes[2..<6])) { return true }
        }
        return forbidden.contains { $0.contains(bytes) }
    }
}

/// An address range such as `10.0.0.0/8` or `fc00::/7`.
public struct Network: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let address = Network.parse(String(parts[0])) else { return nil }
        let bits = address.count * 8
        let prefix = parts.count == 2 ? Int(parts[1]) : bits
        guard let prefix, (0...bits).contains(prefix) else { return nil }
        self.bytes = address
        self.prefix = prefix
    }

    public var description: String { "\(bytes.count == 4 ? bytes.map(String.init).joined(separator: ".") : "ipv6")/\(prefix)" }

    public func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var remaining = prefix
        for index in bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address[index] & mask != bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// Dotted IPv4 or RFC 4291 IPv6 text (with `::` and an embedded IPv4 tail).
    static func parse(_ text: String) -> [UInt8]? {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            let octets = parts.compactMap { UInt8($0) }
            return octets.count == 4 ? octets : nil
        }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            guard !part.isEmpty else { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains("."), let v4 = parse(String(piece)) {
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                } else {
                    guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                    result.append(value)
                }
            }
            return result
        }
        guard let first = groups(halves[0]) else { return nil }
        head = first
        if halves.count == 2 {
            sawGap = true
            guard let second = groups(halves[1]) else { return nil }
            tail = second
        }
        let missing = 8 - head.count - tail.count
        guard sawGap ? missing >= 1 : missing == 0 else { return nil }
        let all = head + Array(repeating: 0, count: max(0, missing)) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
