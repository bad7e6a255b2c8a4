import GatehouseHTTP
import GatehouseIdentity
import GatehouseMetrics
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: `/healthz` (the process is up), `/readyz` (configured and not draining; the store's state
/// in the body, since proxying goes on while it is down, §9) and `/metrics`. Never served on the public listener.
struct AdminListener {
    let group: EventLoopGroup
    let address: (host: String, port: Int)
    let health: StoreHealth
    let metrics: GatewayMetrics
    let readiness: @Sendable () -> (ready: Bool, detail: String)

    func bind() async throws -> Channel {
        let readiness = self.readiness
        let health = self.health
        let metrics = self.metrics
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                metrics.adminConnections.increment()
                channel.closeFuture.whenComplete { _ in metrics.adminConnections.decrement() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(health: health, registry: metrics.registry, readiness: readiness))
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
    /// nil when metrics are off (`GATEHOUSE_METRICS=off`).
    private let registry: MetricsRegistry?
    private var head: HTTPRequestHead?

    init(health: StoreHealth, registry: MetricsRegistry?, readiness: @escaping @Sendable () -> (ready: Bool, detail: String)) {
        self.health = health
        self.registry = registry
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
            guard let registry else {
                status = .notFound
                body = ProblemResponse(.notFound, "Metrics are off in this process (GATEHOUSE_METRICS=off).").body
                contentType = "application/problem+json"
                break
            }
            // Rendering reads /proc: off the event loop.
            let loop = context.eventLoop
            let answer = NIOThreadPool.singleton.runIfActive(eventLoop: loop) { registry.render() }
            answer.assumeIsolated().whenComplete { result in
                switch result {
                case .success(let bytes):
                    self.write(head: head, status: .ok, contentType: MetricsRegistry.contentType, body: context.channel.allocator.buffer(bytes: bytes), context: context)
                case .failure(let error):
                    let problem = ProblemResponse(.serviceUnavailable, "The metrics could not be rendered: \(error).")
                    self.write(
                        head: head, status: .serviceUnavailable, contentType: "application/problem+json",
                        body: context.channel.allocator.buffer(string: problem.body), context: context)
                }
            }
            return
        default:
            status = .notFound
            body = ProblemResponse(.notFound, "The admin listener serves /healthz, /readyz and /metrics.").body
            contentType = "application/problem+json"
        }
        write(head: head, status: status, contentType: contentType, body: context.channel.allocator.buffer(string: body), context: context)
    }

    private func write(head: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: ByteBuffer, context: ChannelHandlerContext) {
        let response = CompleteResponse(status: status, headers: ["Content-Type": contentType, "Cache-Control": "no-store"], body: body)
        ResponseWriter.write(response, answering: head, context: context)
    }
}
