import HeraldSupport
import Testing

/// Header names compare as HTTP compares them.
@Suite struct HTTPTokenTests {
    /// Every pair of ASCII characters, as names of one character and inside a longer name.
    @Test func asciiLettersMatchInEitherCaseAndEveryOtherByteOnlyItself() {
        for x in UInt8(0)..<128 {
            for y in UInt8(0)..<128 {
                let same = x == y || (Character(Unicode.Scalar(x)).isLetter && Character(Unicode.Scalar(x)).lowercased() == Character(Unicode.Scalar(y)).lowercased())
                let a = String(decoding: [x], as: UTF8.self), b = String(decoding: [y], as: UTF8.self)
                #expect(HTTPToken.equalIgnoringASCIICase(a, b) == same, "\(x) \(y)")
                #expect(HTTPToken.equalIgnoringASCIICase("X-\(a)-Id", "x-\(b)-ID") == same, "\(x) \(y)")
            }
        }
    }

    @Test func otherScriptsAndLengthsDoNotFold() {
        #expect(HTTPToken.equalIgnoringASCIICase("Content-Type", "content-type"))
        #expect(!HTTPToken.equalIgnoringASCIICase("X-É", "x-é"))
        #expect(HTTPToken.equalIgnoringASCIICase("X-É", "x-É"))
        #expect(!HTTPToken.equalIgnoringASCIICase("X-Hub", "X-Hub-Signature"))
        #expect(!HTTPToken.equalIgnoringASCIICase("", "a"))
        #expect(HTTPToken.equalIgnoringASCIICase("", ""))
        // The Kelvin sign folds to "k" in Unicode, not in HTTP.
        #expect(!HTTPToken.equalIgnoringASCIICase("\u{212A}", "k"))
    }
}
