import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on 127.0.0.1 that forwards both ways but holds back the server's close:
/// when the server ends a connection, the client learns it only when it writes again
/// (then its side is closed). It opens the window in which a client has read a server's
/// last message and not yet its close, which on loopback lasts microseconds.
public final class HeldCloseProxy: Sendable {
    public let port: Int
    private let channel: any Channel
    private let closes: Closes

    /// Connections the server has closed so far.
    public var serverCloses: Int { closes.count.load(ordering: .acquiring) }

    public static func start(toHost host: String, port upstreamPort: Int) async throws -> HeldCloseProxy {
        let closes = Closes()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { client in
                // The client's bytes are read only once this future completes.
                ClientBootstrap(group: client.eventLoop).connect(host: host, port: upstreamPort).flatMapThrowing { server in
                    let clientSide = ClientSide(server: server)
                    try server.pipeline.syncOperations.addHandler(ServerSide(client: client, clientSide: clientSide, closes: closes))
                    try client.pipeline.syncOperations.addHandler(clientSide)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return HeldCloseProxy(port: channel.localAddress!.port!, channel: channel, closes: closes)
    }

    private init(port: Int, channel: any Channel, closes: Closes) {
        self.port = port
        self.channel = channel
        self.closes = closes
    }

    public func close() async {
        try? await channel.close()
    }
}

private final class Closes: Sendable {
    let count = Atomic(0)
}

/// The client's side: forwards to the server until the server has gone, then closes.
/// Both channels share one event loop, which alone touches `serverGone`.
private final class ClientSide: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let server: any Channel
    var serverGone = false

    init(server: any Channel) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if serverGone {
            context.close(promise: nil)
            return
        }
        server.writeAndFlush(unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.close(promise: nil)
    }
}

/// The server's side: forwards to the client; the server's close is noted, not passed on.
private final class ServerSide: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let client: any Channel
    let clientSide: ClientSide
    let closes: Closes

    init(client: any Channel, clientSide: ClientSide, closes: Closes) {
        self.client = client
        self.clientSide = clientSide
        self.closes = closes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        client.writeAndFlush(unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientSide.serverGone = true
        closes.count.add(1, ordering: .releasing)
    }
}
