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
