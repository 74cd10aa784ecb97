import Foundation
import Records
import Testing

@Suite struct CursorTests {
    @Test func roundTripsWithMicrosecondPrecision() throws {
        let cursor = Cursor(createdAt: Date(timeIntervalSince1970: 1_778_578_200.123456), id: UUID())
        let decoded = try #require(Cursor(token: cursor.token))
        #expect(decoded.id == cursor.id)
        #expect(abs(decoded.createdAt.timeIntervalSince1970 - cursor.createdAt.timeIntervalSince1970) < 0.000_001)
        #expect(!cursor.token.contains("="))
    }

    @Test(arguments: ["", "garbage", "Zm9v", "MTIzOm5vdC1hLXV1aWQ", String(repeating: "A", count: 300)])
    func rejectsForgedTokens(_ token: String) {
        #expect(Cursor(token: token) == nil)
    }
}
