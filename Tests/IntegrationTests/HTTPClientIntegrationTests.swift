import Foundation
import HTTPClient
import Synchronization
import Testing
import TestSupport

@Suite("HTTP client over libcurl multi (real server)")
struct HTTPClientIntegrationTests {
    @Test func twoHundredConcurrentRequestsComplete() async throws {
        let server = try await TestHTTPServer.start { request in
            .status(200, headers: [("X-Echo-Length", String(request.body.count))], body: Array("ok".utf8))
        }
        let client = Client()
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<200 {
                group.addTask {
                    let response = try await client.execute(
                        Request(url: server.url + "/hook/\(index)", headers: [("Content-Type", "application/json")], body: Array("{\"i\":\(index)}".utf8)))
                    return (response.status, response.header("x-echo-length"))
                }
            }
            var statuses: [(Int, String?)] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
        #expect(statuses.count == 200)
        #expect(statuses.allSatisfy { $0.0 == 200 })
        #expect(Set(server.requests.map(\.uri)).count == 200)
        #expect(server.requests.allSatisfy { $0.method == "POST" && $0.header("content-type") == "application/json" })
        await client.shutdown()
        await server.stop()
    }

    @Test func sendsHeadersAndBodyExactly() async throws {
        let server = try await TestHTTPServer.start()
        let client = Client()
        let body = Array(#"{"name":"Anna Beispiel","note":"ü\n"}"#.utf8) + Array(repeating: UInt8(ascii: " "), count: 3000)
        let response = try await client.execute(
            Request(url: server.url + "/in", headers: [("X-Herald-Event", "client.created"), ("User-Agent", "Herald-Webhooks/test")], body: body))
        #expect(response.status == 200)
        let request = try #require(server.requests.first)
        #expect(request.body == body)
        #expect(request.header("x-herald-event") == "client.created")
        #expect(request.header("user-agent") == "Herald-Webhooks/test")
        // No `Expect: 100-continue` round trip for bodies over 1 KiB.
        #expect(request.header("expect") == nil)
        #expect(response.remoteAddress == "127.0.0.1")
        await client.shutdown()
        await server.stop()
    }

    /// Handles are reset and reused: nothing of one request reaches the next.
    @Test func aReusedHandleCarriesNothingOver() async throws {
        let server = try await TestHTTPServer.start()
        let client = Client()
        let first = try await client.execute(
            Request(url: server.url + "/first", method: "PUT", headers: [("X-Only-First", "yes")], body: Array("first body".utf8)))
        #expect(first.status == 200)
        #expect(client.idleHandles == 1)
        // Refused, then a request on the handle a failure gave back.
        await #expect(throws: TransferError.self) {
            try await client.execute(Request(url: "http://127.0.0.1:1/", method: "POST", headers: [("X-Refused", "yes")], body: [1], connectTimeout: .seconds(2)))
        }
        #expect(client.idleHandles == 1)
        let second = try await client.execute(Request(url: server.url + "/second", method: "GET", headers: [], body: []))
        #expect(second.status == 200)
        #expect(client.idleHandles == 1, "the one handle served all three")
        let requests = server.requests
        #expect(requests.map(\.uri) == ["/first", "/second"])
        #expect(requests.map(\.method) == ["PUT", "GET"])
        #expect(requests[1].body.isEmpty)
        #expect(requests[1].header("x-only-first") == nil && requests[1].header("x-refused") == nil)
        #expect(requests[1].header("content-length") == nil)
        await client.shutdown()
        #expect(client.idleHandles == 0)
        await server.stop()
    }

    /// libcurl reads a body where the handle keeps it: a larger body grows that memory, a
    /// smaller one after it is sent in full and no more, binary bytes included, and an
    /// error message written there reaches the caller.
    @Test func bodiesOfEverySizeReachTheServerExactlyOnOneHandle() async throws {
        let server = try await TestHTTPServer.start()
        let client = Client()
        let bytes = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let bodies: [[UInt8]] = [Array(bytes), Array(bytes.prefix(100)), Array(bytes.prefix(5_000)), [], Array(bytes.prefix(17_000))]
        // Header values of every length, small strings and large, ASCII and not, written
        // into the handle's memory beside the body.
        let values = ["-", "v", "grüße, 東京 ✓", String(repeating: "0123456789", count: 300), "short-native-string-value"]
        for (index, body) in bodies.enumerated() {
            let headers = [(name: "X-Index", value: "\(index)"), (name: "X-Value", value: values[index])]
            let response = try await client.execute(Request(url: server.url + "/b\(index)", headers: headers, body: body))
            #expect(response.status == 200)
            #expect(client.idleHandles == 1)
        }
        let refused = await #expect(throws: TransferError.self) {
            try await client.execute(Request(url: "http://127.0.0.1:1/", body: Array(bytes), connectTimeout: .seconds(2)))
        }
        #expect(refused?.message.isEmpty == false)
        #expect(server.requests.map(\.body) == bodies)
        #expect(server.requests.map { $0.header("X-Index") } == bodies.indices.map { "\($0)" })
        #expect(server.requests.map { $0.header("X-Value") ?? "missing" } == values)
        #expect(server.requests.allSatisfy { $0.method == "POST" })
        await client.shutdown()
        await server.stop()
    }

    @Test func keepsConnectionsAlive() async throws {
        let server = try await TestHTTPServer.start()
        let client = Client()
        for _ in 0..<20 {
            #expect(try await client.execute(Request(url: server.url, body: [1])).status == 200)
        }
        #expect(server.requests.count == 20)
        #expect(server.connectionCount == 1)
        await client.shutdown()
        await server.stop()
    }

    @Test func aServerThatNeverAnswersTripsTheTimeout() async throws {
        let server = try await TestHTTPServer.start { _ in .hang }
        let client = Client()
        do {
            _ = try await client.execute(Request(url: server.url, body: [1], timeout: .milliseconds(500)))
            Issue.record("a hanging server produced a response")
        } catch {
            #expect(error.kind == .timeout)
        }
        await client.shutdown()
        await server.stop()
    }

    @Test func aRequestOfACancelledTaskIsNotSent() async throws {
        let server = try await TestHTTPServer.start { _ in .hang }
        let client = Client()
        let cancelled = Task { () -> TransferError.Kind? in
            withUnsafeCurrentTask { $0?.cancel() }
            do throws(TransferError) {
                _ = try await client.execute(Request(url: server.url, body: [1], timeout: .seconds(5)))
                return nil
            } catch {
                return error.kind
            }
        }
        // Sent, it would hang until its timeout.
        #expect(await cancelled.value == .cancelled)
        #expect(server.requests.isEmpty)
        await client.shutdown()
        await server.stop()
    }

    @Test func aHangingServerDoesNotDelayOthers() async throws {
        let slow = try await TestHTTPServer.start { _ in .hang }
        let fast = try await TestHTTPServer.start()
        let client = Client()
        let hanging = Task { try? await client.execute(Request(url: slow.url, body: [1], timeout: .seconds(20))) }
        try await slow.waitForRequests(1)
        for _ in 0..<50 {
            #expect(try await client.execute(Request(url: fast.url, body: [1])).status == 200)
        }
        // All fast requests completed while the slow one was still outstanding.
        #expect(fast.requests.count == 50)
        hanging.cancel()
        #expect(await hanging.value == nil)
        await client.shutdown()
        await slow.stop()
        await fast.stop()
    }

    @Test func aTenMegabyteBodyIsCapped() async throws {
        let server = try await TestHTTPServer.start { _ in .largeBody(status: 200, bytes: 10 * 1024 * 1024) }
        let client = Client()
        let response = try await client.execute(Request(url: server.url, body: [1], maxResponseBytes: 4096))
        #expect(response.status == 200)
        #expect(response.body.count == 4096)
        #expect(response.bodyTruncated)
        // Aborted at the cap, the status is still known: a capped response, not an error.
        let aborted = try await client.execute(Request(url: server.url, body: [1], maxResponseBytes: 4096, overflow: .abort))
        #expect(aborted.status == 200)
        #expect(aborted.body.count == 4096)
        #expect(aborted.bodyTruncated)
        await client.shutdown()
        await server.stop()
    }

    @Test func redirectsAreNotFollowed() async throws {
        let target = try await TestHTTPServer.start()
        let server = try await TestHTTPServer.start { _ in .status(302, headers: [("Location", "http://127.0.0.1:\(target.port)/")]) }
        let client = Client()
        let response = try await client.execute(Request(url: server.url, body: [1]))
        #expect(response.status == 302)
        #expect(response.header("location") == target.url + "/")
        #expect(server.requests.count == 1)
        #expect(target.requests.isEmpty)
        await client.shutdown()
        await server.stop()
        await target.stop()
    }

    @Test func connectionRefusedIsReportedAsSuch() async throws {
        let server = try await TestHTTPServer.start()
        let url = server.url
        await server.stop()
        let client = Client()
        do {
            _ = try await client.execute(Request(url: url, body: [1]))
            Issue.record("a closed port answered")
        } catch {
            #expect(error.kind == .connect)
        }
        await client.shutdown()
    }

    @Test func aClosedConnectionIsANetworkError() async throws {
        let server = try await TestHTTPServer.start { _ in .close }
        let client = Client()
        do {
            _ = try await client.execute(Request(url: server.url, body: [1]))
            Issue.record("an empty reply produced a response")
        } catch {
            #expect(error.kind == .network)
        }
        await client.shutdown()
        await server.stop()
    }

    @Test func theAddressPolicySeesTheAddressBeforeConnecting() async throws {
        let server = try await TestHTTPServer.start()
        let seen = Mutex<[SocketAddress]>([])
        let client = Client(configuration: .init(addressPolicy: { address in
            seen.withLock { $0.append(address) }
            return address.bytes != [127, 0, 0, 1]
        }))
        do {
            _ = try await client.execute(Request(url: server.url, body: [1]))
            Issue.record("a refused address was connected to")
        } catch {
            #expect(error.kind == .blocked)
            #expect(error.message.contains("127.0.0.1"))
        }
        #expect(seen.withLock { $0 }.contains { $0.bytes == [127, 0, 0, 1] && $0.port == server.port })
        #expect(server.requests.isEmpty)
        await client.shutdown()
        await server.stop()
    }

    @Test(arguments: ["ftp://127.0.0.1/", "file:///etc/passwd", "gopher://127.0.0.1/"])
    func onlyHTTPAndHTTPSAreSpoken(_ url: String) async throws {
        let client = Client()
        do {
            _ = try await client.execute(Request(url: url, body: [1]))
            Issue.record("\(url) was fetched")
        } catch {
            #expect(error.kind == .invalidRequest)
        }
        await client.shutdown()
    }

    @Test func headerInjectionIsRefused() async throws {
        let client = Client()
        do {
            _ = try await client.execute(Request(url: "http://127.0.0.1:1/", headers: [("X-A", "b\r\nX-Injected: 1")]))
            Issue.record("a header with CRLF was sent")
        } catch {
            #expect(error.kind == .invalidRequest)
        }
        await client.shutdown()
    }

    @Test func environmentProxiesAreIgnored() async throws {
        // A proxy variable pointing nowhere would break every request if libcurl honoured it.
        setenv("http_proxy", "http://127.0.0.1:1", 1)
        defer { unsetenv("http_proxy") }
        let server = try await TestHTTPServer.start()
        let client = Client()
        #expect(try await client.execute(Request(url: server.url, body: [1])).status == 200)
        await client.shutdown()
        await server.stop()
    }
}
