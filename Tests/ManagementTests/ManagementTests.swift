import Foundation
import Management
import Testing

@Suite struct KeyTests {
    @Test func keysAreRandomAndOnlyTheirHashIsKept() {
        let key = APIKey.generate()
        #expect(key.hasPrefix("hk_") && key.count == 67)
        #expect(key != APIKey.generate())
        #expect(APIKey.hash(key).count == 64)
        #expect(APIKey.hash(key) == APIKey.hash(key))
        #expect(!APIKey.hash(key).contains(key.dropFirst(3)))
    }

    @Test func operatorTokensCompare() {
        #expect(APIKey.matches("s3cret", "s3cret"))
        #expect(!APIKey.matches("s3cret", "s3cret "))
        #expect(!APIKey.matches("", "s3cret"))
    }
}

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
