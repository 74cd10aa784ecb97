import Foundation
import Inbound
import Testing

@testable import API

/// The answer to an inbound request, written without an encoder, is what the API's
/// encoder writes for every other answer.
@Suite struct InboundAnswerTests {
    /// The same fields through `API.encoder`.
    struct Encoded: Encodable {
        var id: String
        var status: String
        var duplicateOf: String?
        var error: String?
    }

    @Test(arguments: [
        InboundAnswer(id: "3f0c", status: .processed, duplicateOf: nil, error: nil),
        InboundAnswer(id: "3f0c", status: .duplicate, duplicateOf: "9a1b", error: nil),
        InboundAnswer(id: "3f0c", status: .parseError, duplicateOf: nil, error: #"body: "x" is not JSON \ at /a/b"#),
        InboundAnswer(id: "3f0c", status: .parseError, duplicateOf: "d", error: "line\nbreak\ttab\r\u{8}\u{C}\u{0}\u{1}\u{1F}\u{7F} Zoë 東京 🚀 \u{2028}"),
        InboundAnswer(id: "", status: .received, duplicateOf: "", error: ""),
    ])
    func sameBytesAsTheEncoder(_ answer: InboundAnswer) throws {
        let expected = try API.encoder.encode(Encoded(id: answer.id, status: answer.status.rawValue, duplicateOf: answer.duplicateOf, error: answer.error))
        #expect(answer.json == Array(expected), "\(String(decoding: answer.json, as: UTF8.self)) against \(String(decoding: expected, as: UTF8.self))")
    }
}
