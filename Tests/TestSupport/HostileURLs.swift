/// Endpoint URLs that must never be accepted: every IP literal form, IPv6 and mapped
/// addresses, internal and metadata names, userinfo tricks, and other schemes.
public enum HostileURLs {
    public static let all: [String] = [
        "https://127.0.0.1/hook", "https://127.0.0.1:8443/hook", "https://2130706433/", "https://0x7f000001/", "https://0177.0.0.1/",
        "https://0x7f.0x0.0x0.0x1/", "https://127.1/", "https://127.0.1/", "https://0/", "https://0.0.0.0/", "https://10.0.0.5/",
        "https://192.168.1.1/", "https://172.16.0.1/", "https://169.254.169.254/latest/meta-data/", "https://100.64.0.1/",
        "https://017700000001/", "https://1.1.1.1/",
        "https://[::1]/", "https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[0:0:0:0:0:0:0:1]/", "https://[fe80::1%25eth0]/",
        "https://[fd00:ec2::254]/", "https://[::]/",
        "https://localhost.localdomain/", "https://LOCALHOST.local/", "https://api.localhost/", "https://printer.local/",
        "https://db.internal/", "https://metadata.google.internal/computeMetadata/v1/", "https://router.home.arpa/",
        "https://1.0.0.127.in-addr.arpa/", "https://intranet/", "https://herald.example.org/", "https://x.herald.example.org/",
        "https://user:pass@example.com/", "https://example.com@127.0.0.1/", "https://good.com@evil.com/", "https://:@example.com/",
        "https://example.com\\@127.0.0.1/", "https://%6c%6f%63%61%6c%68%6f%73%74/", "https://exa mple.com/",
        "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)", "data:text/plain,hi",
        "//example.com/", "example.com/hook", "https:/example.com",
        "https://-bad.com/", "https://example.com:0/", "https://example.com:99999/", "https:///path", "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",
    ]
}
