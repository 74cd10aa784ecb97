import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A request as the test server received it.
public struct ReceivedRequest: Sendable {
    public let method: String
    public let uri: String
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]
    /// Which TCP connection carried it, counted from 1.
    public let connection: Int
    public let receivedAt: ContinuousClock.Instant

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// How the test server answers one request.
public indirect enum Reply: Sendable {
    case status(Int, headers: [(String, String)] = [], body: [UInt8] = [])
    /// Reads the request and never answers.
    case hang
    /// Answers `status` with a body of `bytes` bytes, sent in 64 KiB chunks.
    case largeBody(status: Int, bytes: Int)
    /// Closes the connection without answering.
    case close
    /// Answers after `delay`.
    case delayed(Duration, Reply)
    /// Sends the head (announcing `bytes`), then one byte every `interval`.
    case trickle(status: Int, bytes: Int, interval: Duration)
    /// Sends the head and part of the body, then closes the connection.
    case resetMidBody(status: Int)
}

/// A real HTTP/1.1 server on 127.0.0.1 (SwiftNIO) that records every request and
/// answers as the test says, so HTTP tests run against sockets, not mocks.
public final class TestHTTPServer: Sendable {
    public let port: Int
    private let channel: any Channel
    private let ledger: Ledger

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Listens on `port` (0: any free port; a given one lets a test restart its receiver).
    public static func start(port: Int = 0, _ reply: @escaping @Sendable (ReceivedRequest) -> Reply = { _ in .status(200) }) async throws
        -> TestHTTPServer
    {
        let ledger = Ledger()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = ledger.accepted(channel)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        RequestHandler(connection: connection, ledger: ledger, reply: reply))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return TestHTTPServer(port: channel.localAddress?.port ?? 0, channel: channel, ledger: ledger)
    }

    private init(port: Int, channel: any Channel, ledger: Ledger) {
        self.port = port
        self.channel = channel
        self.ledger = ledger
    }

    /// Every request received so far, in arrival order.
    public var requests: [ReceivedRequest] { ledger.requests }

    /// TCP connections accepted so far.
    public var connectionCount: Int { ledger.connectionCount }

    /// Waits until at least `count` requests arrived (or `timeout` passed) and returns them.
    @discardableResult
    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [ReceivedRequest] {
        try await ledger.wait(for: count, timeout: timeout)
    }

    /// Stops listening and closes every open connection.
    public func stop() async {
        try? await channel.close()
        await ledger.closeAll()
    }
}

public struct WaitTimedOut: Error, CustomStringConvertible {
    public let expected: Int
    public let received: Int

    public init(expected: Int, received: Int) {
        self.expected = expected
        self.received = received
    }

    public var description: String { "expected \(expected) requests, received \(received)" }
}

private final class Ledger: Sendable {
    private struct State {
        var requests: [ReceivedRequest] = []
        var channels: [any Channel] = []
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    var requests: [ReceivedRequest] { state.withLock { $0.requests } }
    var connectionCount: Int { state.withLock { $0.channels.count } }

    func accepted(_ channel: any Channel) -> Int {
        state.withLock { state in
            state.channels.append(channel)
            return state.channels.count
        }
    }

    func record(_ request: ReceivedRequest) {
        let ready = state.withLock { state in
            state.requests.append(request)
            let count = state.requests.count
            let ready = state.waiters.filter { $0.count <= count }
            state.waiters.removeAll { $0.count <= count }
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    func wait(for count: Int, timeout: Duration) async throws -> [ReceivedRequest] {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { state in
                        if state.requests.count >= count { return true }
                        state.waiters.append((count, continuation))
                        return false
                    }
                    if now { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let arrived = try await group.next() ?? false
            group.cancelAll()
            guard arrived else {
                // Release the waiter so the group can finish.
                let waiters = state.withLock { state in
                    defer { state.waiters.removeAll { $0.count == count } }
                    return state.waiters.filter { $0.count == count }
                }
                for waiter in waiters { waiter.continuation.resume() }
                throw WaitTimedOut(expected: count, received: requests.count)
            }
            return requests
        }
    }

    func closeAll() async {
        let channels = state.withLock { $0.channels }
        for channel in channels { try? await channel.close() }
    }
}

private final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let connection: Int
    private let ledger: Ledger
    private let reply: @Sendable (ReceivedRequest) -> Reply
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(connection: Int, ledger: Ledger, reply: @escaping @Sendable (ReceivedRequest) -> Reply) {
        self.connection = connection
        self.ledger = ledger
        self.reply = reply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.removeAll(keepingCapacity: true)
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let head else { return }
            let request = ReceivedRequest(
                method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                body: body, connection: connection, receivedAt: .now)
            ledger.record(request)
            respond(context: context, with: reply(request), keepAlive: head.isKeepAlive)
        }
    }

    private func respond(context: ChannelHandlerContext, with reply: Reply, keepAlive: Bool) {
        switch reply {
        case .hang:
            return
        case .close:
            context.close(promise: nil)
        case .delayed(let delay, let next):
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
            context.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                let (handler, context) = bound.value
                handler.respond(context: context, with: next, keepAlive: keepAlive)
            }
        case .status(let code, let headers, let body):
            var fields = HTTPHeaders(headers)
            fields.replaceOrAdd(name: "content-length", value: String(body.count))
            writeHead(context, code: code, headers: fields)
            if !body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .trickle(let code, let bytes, let interval):
            writeHead(context, code: code, headers: ["content-length": String(bytes)])
            context.flush()
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let nanoseconds = interval.components.seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000
            context.eventLoop.scheduleRepeatedTask(initialDelay: .nanoseconds(nanoseconds), delay: .nanoseconds(nanoseconds)) { task in
                let (handler, context) = bound.value
                guard context.channel.isActive else {
                    task.cancel()
                    return
                }
                context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "x")))), promise: nil)
            }
        case .resetMidBody(let code):
            writeHead(context, code: code, headers: ["content-length": "100000"])
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: String(repeating: "x", count: 100))))), promise: nil)
            context.close(promise: nil)
        case .largeBody(let code, let bytes):
            writeHead(context, code: code, headers: ["content-length": String(bytes)])
            let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
            var left = bytes
            while left > 0 {
                let size = min(left, chunk.readableBytes)
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk.getSlice(at: 0, length: size)!))), promise: nil)
                left -= size
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    private func writeHead(_ context: ChannelHandlerContext, code: Int, headers: HTTPHeaders) {
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: code), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }
}
