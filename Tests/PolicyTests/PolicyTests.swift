import HTTPClient
import Policy
import Testing

@Suite("URL policy")
struct URLPolicyTests {
    static let hostile: [String] = [
        // IPv4 in every form inet_aton accepts
        "https://127.0.0.1/hook", "https://127.0.0.1:8443/hook", "https://2130706433/", "https://0x7f000001/", "https://0177.0.0.1/",
        "https://0x7f.0x0.0x0.0x1/", "https://127.1/", "https://127.0.1/", "https://0/", "https://0.0.0.0/", "https://10.0.0.5/",
        "https://192.168.1.1/", "https://172.16.0.1/", "https://169.254.169.254/latest/meta-data/", "https://100.64.0.1/",
        "https://017700000001/", "https://1.1.1.1/",
        // IPv6, mapped and bracketed forms
        "https://[::1]/", "https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[0:0:0:0:0:0:0:1]/", "https://[fe80::1%25eth0]/",
        "https://[fd00:ec2::254]/", "https://[::]/",
        // Blocked names
        "https://localhost/", "https://LOCALHOST/", "https://localhost./", "https://api.localhost/", "https://printer.local/",
        "https://db.internal/", "https://metadata.google.internal/computeMetadata/v1/", "https://router.home.arpa/",
        "https://1.0.0.127.in-addr.arpa/", "https://intranet/", "https://herald.example.org/", "https://x.herald.example.org/",
        // Credentials and authority tricks
        "https://user:pass@example.com/", "https://example.com@127.0.0.1/", "https://good.com@evil.com/", "https://:@example.com/",
        "https://example.com\\@127.0.0.1/", "https://%6c%6f%63%61%6c%68%6f%73%74/", "https://exa mple.com/",
        // Schemes other than http(s), and http itself when not allowed
        "http://example.com/", "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
        "data:text/plain,hi", "//example.com/", "example.com/hook", "https:/example.com", "",
        // Malformed hosts and ports
        "https://-bad.com/", "https://exa_mple..com/", "https://example.com:0/", "https://example.com:99999/", "https://example.com:80a/",
        "https:///path", "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "https://exämple.com/",
    ]

    let policy = URLPolicy(blockedDomains: ["herald.example.org"])

    @Test(arguments: hostile)
    func refuses(_ url: String) {
        #expect(policy.violation(url) != nil, "accepted \(url)")
    }

    @Test func thereAreAtLeastFortyHostileURLs() {
        #expect(Self.hostile.count >= 40)
    }

    @Test(arguments: [
        "https://hooks.zapier.com/hooks/catch/123/abc/", "https://hook.eu1.make.com/abcdef", "https://n8n.studio.de:443/webhook/x?y=1",
        "https://example.com", "https://xn--exmple-cua.com/", "https://api.example.co.uk/v1/hooks#frag",
    ])
    func accepts(_ url: String) {
        #expect(policy.violation(url) == nil)
    }

    @Test func httpOnlyWhenTheDeploymentAllowsIt() {
        #expect(URLPolicy(allowHTTP: true).violation("http://example.com/") == nil)
        #expect(URLPolicy(allowHTTP: true).violation("http://127.0.0.1/") != nil)
    }

    @Test func allowedHostsAreExemptFromTheNameRules() {
        let development = URLPolicy(allowHTTP: true, allowedHosts: ["localhost"])
        #expect(development.violation("http://localhost:8080/hook") == nil)
        #expect(development.violation("http://user@localhost/") != nil)
        #expect(development.violation("http://127.0.0.1/") != nil)
    }

    /// Hardening item 7: `example.com:22` was accepted; ports are 80, 443 and the allow-list.
    @Test func portsAreEightyFourFourThreeAndTheAllowList() {
        #expect(policy.violation("https://example.com:22/") != nil)
        #expect(policy.violation("https://n8n.studio.de:5678/webhook/x") != nil)
        #expect(policy.violation("https://example.com:080/") == nil)
        #expect(policy.violation("https://example.com:００８０/") != nil)
        let n8n = URLPolicy(allowedPorts: [5678])
        #expect(n8n.violation("https://n8n.studio.de:5678/webhook/x") == nil)
        #expect(n8n.violation("https://n8n.studio.de:5679/webhook/x") != nil)
    }

    /// Random text and mutations of good URLs: the policy never traps, and whatever it
    /// accepts is https with a dotted host name, no credentials and no IP literal.
    @Test func survivesRandomInput() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcxyz019.-_:/@[]%?#\\ \u{0}\u{7F}é".unicodeScalars)
        let seeds = ["https://hooks.zapier.com/hooks/catch/1/abc", "https://example.com:443/x?y=1", "https://[::1]/", "https://127.0.0.1/"]
        var accepted = 0
        for round in 0..<20_000 {
            var scalars = Array(seeds[round % seeds.count].unicodeScalars)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let index = Int.random(in: 0..<scalars.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: scalars[index] = alphabet.randomElement(using: &generator)!
                case 1: scalars.insert(alphabet.randomElement(using: &generator)!, at: index)
                default: if scalars.count > 1 { scalars.remove(at: index) }
                }
            }
            var text = String.UnicodeScalarView()
            text.append(contentsOf: scalars)
            let url = String(text)
            guard policy.violation(url) == nil else { continue }
            accepted += 1
            let authority = url.dropFirst("https://".count).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            #expect(url.lowercased().hasPrefix("https://"), "\(url)")
            #expect(!authority.contains("@") && !authority.contains("[") && !authority.contains("%"), "\(url)")
            #expect(authority.contains("."), "\(url)")
        }
        #expect(accepted > 0)
    }

    @Test func longURLsAreRefused() {
        #expect(policy.violation("https://example.com/" + String(repeating: "a", count: 2100)) != nil)
    }
}

@Suite("Address policy")
struct AddressPolicyTests {
    func v4(_ text: String) -> SocketAddress {
        SocketAddress(family: .ipv4, bytes: text.split(separator: ".").map { UInt8($0)! }, port: 443)
    }

    func v6(_ text: String) -> SocketAddress {
        SocketAddress(family: .ipv6, bytes: Network(text)!.bytes, port: 443)
    }

    @Test(arguments: [
        "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1",
        "100.127.255.255", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    ])
    func refusesInternalIPv4(_ address: String) {
        #expect(!AddressPolicy().permits(v4(address)))
    }

    @Test(arguments: [
        "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe",
        "::127.0.0.1", "2001:db8::1",
        // Hardening item 10: 6to4 around an internal IPv4, NAT64 local use, site-local, IPv4-translated.
        "2002:7f00:1::1", "2002:a9fe:a9fe::", "2002:c0a8:101::5", "64:ff9b:1::a01:203", "64:ff9b:1:ffff::1", "fec0::1",
        "feff::1", "::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe",
    ])
    func refusesInternalIPv6(_ address: String) {
        #expect(!AddressPolicy().permits(v6(address)))
    }

    @Test(arguments: ["93.184.216.34", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1"])
    func permitsPublicIPv4(_ address: String) {
        #expect(AddressPolicy().permits(v4(address)))
    }

    @Test(arguments: ["2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:93.184.216.34", "2002:5db8:d822::1", "::ffff:0:5db8:d822"])
    func permitsPublicIPv6(_ address: String) {
        #expect(AddressPolicy().permits(v6(address)))
    }

    @Test func theAllowListWins() {
        let policy = AddressPolicy(allowed: [Network("127.0.0.0/8")!, Network("::1/128")!])
        #expect(policy.permits(v4("127.0.0.1")))
        #expect(policy.permits(v6("::1")))
        #expect(!policy.permits(v4("10.0.0.1")))
    }

    @Test func networksParse() {
        #expect(Network("10.0.0.0/8")?.prefix == 8)
        #expect(Network("fc00::/7")?.bytes.count == 16)
        #expect(Network("1.2.3.4")?.prefix == 32)
        #expect(Network("1.2.3/8") == nil)
        #expect(Network("10.0.0.0/33") == nil)
        #expect(Network("::1::2/128") == nil)
        #expect(Network("1:2:3:4:5:6:7:8:9") == nil)
    }
}

@Suite("Token bucket")
struct TokenBucketTests {
    @Test func aFullBucketLetsTheBurstThroughThenPacesAtTheRate() {
        var bucket = TokenBucket(rate: 10, burst: 5, now: 0)
        for _ in 0..<5 { #expect(bucket.take(now: 0) == nil) }
        let wait = bucket.take(now: 0)
        #expect(wait.map { abs($0 - 0.1) < 1e-9 } == true)
        #expect(bucket.take(now: 0.05) != nil)
        #expect(bucket.take(now: 0.1) == nil)
        #expect(bucket.take(now: 0.1) != nil)
        // A long pause refills only up to the burst.
        for _ in 0..<5 { #expect(bucket.take(now: 100) == nil) }
        #expect(bucket.take(now: 100) != nil)
    }

    @Test func noRateMeansNoLimit() {
        var bucket = TokenBucket(rate: 0, burst: 1, now: 0)
        for _ in 0..<1000 { #expect(bucket.take(now: 0) == nil) }
        #expect(bucket.isFull(now: 0))
    }

    @Test func aClockGoingBackwardsRefillsNothing() {
        var bucket = TokenBucket(rate: 1, burst: 1, now: 10)
        #expect(bucket.take(now: 10) == nil)
        #expect(bucket.take(now: 5) != nil)
        #expect(!bucket.isFull(now: 10.5))
        #expect(bucket.isFull(now: 11))
    }
}
