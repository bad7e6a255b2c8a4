import GatehouseIdentity
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: `/healthz` (the process is up), `/readyz` (configured and not draining; the store's state
/// in the body, since proxying goes on while it is down, §9) and `/metrics`. Never served on the public listener.
struct AdminListener {
    let group: EventLoopGroup
    let address: (host: String, port: Int)
    let health: StoreHealth
    let readiness: @Sendable () -> (ready: Bool, detail: String)

    func bind() async throws -> Channel {
        let readiness = self.readiness
        let health = self.health
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(health: health, readiness: readiness))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }
}

final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let readiness: @Sendable () -> (ready: Bool, detail: String)
    private let health: StoreHealth
    private var head: HTTPRequestHead?

    init(health: StoreHealth, readiness: @escaping @Sendable () -> (ready: Bool, detail: String)) {
        self.health = health
        self.readiness = readiness
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        let body: String
        let contentType: String
        switch (head.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            status = .ok
            body = #"{"status":"ok"}"#
            contentType = "application/json"
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            let (ready, detail) = readiness()
            status = ready ? .ok : .serviceUnavailable
            body = "{\"status\":\(JSON.quote(ready ? "ready" : "not ready")),\"detail\":\(JSON.quote(detail)),\"store\":\(JSON.quote(health.detail))}"
            contentType = "application/json"
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            status = .ok
            body = """
                # HELP gatehouse_store_up Whether this replica reaches its identity store (1) or serves from memory (0).
                # TYPE gatehouse_store_up gauge
                gatehouse_store_up \(health.isUp ? 1 : 0)

                """
            contentType = "text/plain; version=0.0.4; charset=utf-8"
        default:
            status = .notFound
            body = ProblemResponse(.notFound, "The admin listener serves /healthz, /readyz and /metrics.").body
            contentType = "application/problem+json"
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Cache-Control", value: "no-store")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let keepAlive = head.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
