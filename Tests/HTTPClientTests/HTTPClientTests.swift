import HeraldSupport
@testable import HTTPClient
import Testing

@Suite struct TransferErrorTests {
    @Test(arguments: [
        (28, TransferError.Kind.timeout), (6, .dns), (5, .dns), (7, .connect), (35, .tls), (60, .tls), (58, .tls),
        (77, .tls), (52, .network), (56, .network), (55, .network), (18, .network), (8, .network), (1, .invalidRequest),
        (3, .invalidRequest), (42, .cancelled), (99, .other), (23, .other),
    ])
    func classifiesCurlCodes(_ code: Int, _ kind: TransferError.Kind) {
        #expect(TransferError.Kind(curlCode: code) == kind)
    }
}

@Suite struct RequestTests {
    @Test(arguments: ["X-Herald-Event", "webhook-id", "a!#$%&'*+-.^_`|~z"])
    func tokenNamesAreAccepted(_ name: String) {
        #expect(HTTPToken.isToken(name))
    }

    @Test(arguments: ["", "Bad Header", "X:Y", "Ünïcode", "X\r\nInjected"])
    func otherNamesAreRefused(_ name: String) {
        #expect(!HTTPToken.isToken(name))
    }

    @Test(arguments: ["a\r\nb", "a\nb", "a\rb", "a\u{0}b"])
    func controlCharactersAreFound(_ value: String) {
        #expect(Transfer.hasControlCharacters(value))
    }

    @Test func ordinaryValuesHaveNoControlCharacters() {
        #expect(!Transfer.hasControlCharacters("sha256=abc, v1,xyz\ttab"))
    }

    /// Every byte value at every place of texts longer and shorter than a word: found
    /// exactly when it is CR, LF or NUL, whether it falls in a word or in the tail.
    @Test func everyByteAtEveryPlaceIsJudgedAsItself() {
        for length in [1, 7, 8, 9, 17, 24] {
            for place in 0..<length {
                for byte in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[place] = UInt8(byte)
                    let found = bytes.withUnsafeBytes { Transfer.hasControlCharacters($0) }
                    #expect(found == [0, 10, 13].contains(byte), "byte \(byte) at \(place) of \(length)")
                }
            }
        }
        // Every other byte value side by side (borrows between neighbours), then each
        // control character put at each place among them.
        let others = (0...255).map(UInt8.init).filter { ![0, 10, 13].contains($0) }
        #expect(!others.withUnsafeBytes { Transfer.hasControlCharacters($0) })
        for control: UInt8 in [0, 10, 13] {
            for place in others.indices {
                var bytes = others
                bytes[place] = control
                #expect(bytes.withUnsafeBytes { Transfer.hasControlCharacters($0) }, "\(control) at \(place)")
            }
        }
    }

    @Test(arguments: [
        ("HTTP/1.1 204 No Content", 204), ("HTTP/2 200", 200), ("HTTP/1.1  301  Moved", 301), ("HTTP/1.1 abc", 0), ("HTTP/1.1", 0),
        ("HTTP/1.1 ", 0),
    ])
    func statusLines(_ line: String, _ code: Int) {
        #expect(Array(line.utf8).withUnsafeBytes { Transfer.statusCode($0) } == code)
    }

    @Test func socketAddressText() {
        #expect(SocketAddress(family: .ipv4, bytes: [127, 0, 0, 1], port: 80).description == "127.0.0.1")
        var v6 = [UInt8](repeating: 0, count: 16)
        v6[15] = 1
        #expect(SocketAddress(family: .ipv6, bytes: v6, port: 80).description == "0:0:0:0:0:0:0:1")
    }

    @Test func headerLookupIsCaseInsensitive() {
        let response = Response(
            status: 429, headers: [("Retry-After", "120")], body: [], bodyTruncated: false, duration: .zero, remoteAddress: nil)
        #expect(response.header("retry-after") == "120")
        #expect(response.header("x-missing") == nil)
    }
}

/// The client's driver thread starts with its first request, never in `init`, and a
/// client that never sent anything shuts down at once.
@Suite struct ClientLifecycleTests {
    @Test func anUnusedClientHoldsNoThreadAndShutsDownAtOnce() async throws {
        let client = Client()
        #expect(!client.isDriving)
        await client.shutdown()
        await client.shutdown()
        #expect(!client.isDriving)
        await #expect(throws: TransferError.self) {
            try await client.execute(Request(url: "http://127.0.0.1:1/", method: "POST", headers: [], body: []))
        }
        #expect(!client.isDriving, "a shut-down client starts nothing")
    }

    @Test func theFirstRequestStartsTheThreadAndShutdownStopsIt() async throws {
        let client = Client()
        // Port 1 on loopback refuses: a classified failure, made on the driver thread.
        let error = await #expect(throws: TransferError.self) {
            try await client.execute(Request(url: "http://127.0.0.1:1/", method: "POST", headers: [], body: [], connectTimeout: .seconds(2)))
        }
        #expect(error?.kind == .connect)
        #expect(client.isDriving)
        await client.shutdown()
        // Again: returns at once and does not touch the closed handle.
        await client.shutdown()
        let after = await #expect(throws: TransferError.self) {
            try await client.execute(Request(url: "http://127.0.0.1:1/", method: "POST", headers: [], body: []))
        }
        #expect(after?.kind == .cancelled)
    }
}
