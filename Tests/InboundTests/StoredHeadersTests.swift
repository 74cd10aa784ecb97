import Foundation
import Testing

@testable import Inbound

/// The headers a stored webhook keeps: valid JSON, read back as they came, credentials
/// left out.
@Suite struct StoredHeadersTests {
    func source(_ verification: Verification = .github) -> InboundSource {
        InboundSource(id: UUID(), tenantID: UUID(), name: "forms", verification: verification)
    }

    @Test func everyValueIsReadBackAsItCame() throws {
        let headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"), ("X-Quote", #"a "quoted" \ back\slash"#), ("X-Path", "/a/b?c=d&e"),
            ("X-Controls", "tab\there\u{1}\u{1F}\u{7F}"), ("X-Unicode", "Zoë — 東京 🚀 \u{2028}"), ("X-Empty", ""),
            ("x-repeated", "1"), ("X-Repeated", "2"),
        ]
        let text = String(decoding: InboundStore.headersJSON(InboundRequest(headers: headers, body: []), source: source()), as: UTF8.self)
        // JSON as a parser reads it, not only as the reader below does.
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String]])
        #expect(parsed == headers.map { [$0.name, $0.value] })
        let read = InboundStore.headers(text)
        #expect(read.map(\.name) == headers.map(\.name) && read.map(\.value) == headers.map(\.value))
    }

    @Test func credentialsAreLeftOutWhateverTheirCase() {
        let headers: [(name: String, value: String)] = [
            ("Authorization", "Bearer a"), ("COOKIE", "s=1"), ("x-api-key", "k"), ("X-Token", "t"), ("X-Kept", "yes"),
        ]
        let text = String(
            decoding: InboundStore.headersJSON(InboundRequest(headers: headers, body: []), source: source(.headerToken(header: "x-token", prefix: ""))),
            as: UTF8.self)
        #expect(InboundStore.headers(text).map(\.name) == ["X-Kept"])
        #expect(InboundStore.headersJSON(InboundRequest(headers: [], body: []), source: source()) == Array("[]".utf8))
    }
}
