import GatehouseConfiguration
import GatehouseProxy
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// The public listener: HTTP/1.1, or with `tls` HTTPS offering HTTP/2 and HTTP/1.1 by ALPN.
struct PublicListener {
    let state: GatewayState
    let pools: UpstreamPools
    let group: EventLoopGroup
    let quiescing: ServerQuiescingHelper

    func bind() async throws -> Channel {
        let configuration = state.configuration
        let sslContext = try configuration.tls.map(Self.makeSSLContext)
        let state = self.state
        let pools = self.pools
        let trusted = configuration.trustedProxies
        let scheme = configuration.publicScheme
        let limits = configuration.limits
        let quiescing = self.quiescing

        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                let connections = state.metrics.publicConnections
                connections.increment()
                channel.closeFuture.whenComplete { _ in connections.decrement() }
                let info = Self.connectionInfo(channel, trusted: trusted, scheme: scheme)
                guard let sslContext else {
                    return channel.eventLoop.makeCompletedFuture {
                        try Self.configureHTTP1(
                            channel, state: state, pool: pools.pool(for: channel.eventLoop), info: info, limits: limits, overTLS: false)
                    }
                }
                do {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
                return channel.configureHTTP2SecureUpgrade(
                    h2ChannelConfigurator: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try Self.configureHTTP2(channel, state: state, pools: pools, info: info, limits: limits)
                        }
                    },
                    http1ChannelConfigurator: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try Self.configureHTTP1(
                                channel, state: state, pool: pools.pool(for: channel.eventLoop), info: info, limits: limits,
                                overTLS: true)
                        }
                    })
            }
            .bind(host: configuration.listen.host, port: configuration.listen.port)
            .get()
    }

    private static func configureHTTP1(
        _ channel: Channel, state: GatewayState, pool: UpstreamConnectionPool, info: ClientConnectionInfo,
        limits: GatewayConfiguration.Limits, overTLS: Bool
    ) throws {
        let sync = channel.pipeline.syncOperations
        let timeouts = ConnectionTimeoutHandler(headTimeout: limits.requestHeadTimeout.timeAmount, idleTimeout: limits.idleTimeout.timeAmount)
        try sync.addHandler(timeouts)
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderListSize = limits.maxHeaderBytes
        decoderLimits.maxHeaderFieldSize = limits.maxHeaderBytes
        // No `HTTPServerPipelineHandler`: the request handler orders pipelined requests itself. The stock handler
        // stops reading while each response is in flight, which costs two `epoll_ctl` calls on every request;
        // ours holds reads back only when a pipelined request actually arrives.
        try sync.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
        if !overTLS {
            // A client that shuts down its sending side after the request still gets the response (over TLS a
            // bare end of stream is an unclean shutdown and closes the connection).
            try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
        }
        try sync.addHandler(GatewayRequestHandler(state: state, pool: pool, connection: info, isHTTP2: false, timeouts: timeouts))
    }

    private static func configureHTTP2(
        _ channel: Channel, state: GatewayState, pools: UpstreamPools, info: ClientConnectionInfo,
        limits: GatewayConfiguration.Limits
    ) throws {
        let sync = channel.pipeline.syncOperations
        // Between TLS and HTTP/2: the streams that finish in one turn of the loop leave in one TLS record.
        try sync.addHandler(FlushCoalescingHandler())
        try sync.addHandler(IdleStateHandler(allTimeout: limits.idleTimeout.timeAmount))
        try sync.addHandler(IdleConnectionCloser())
        let timerGroup = NIOLoopBound(DeadlineTimerGroup(eventLoop: channel.eventLoop), eventLoop: channel.eventLoop)
        // Once per connection, its pending timer goes with it (the streams only disarm theirs).
        channel.closeFuture.assumeIsolated().whenComplete { _ in timerGroup.value.close() }
        let drainer = NIOLoopBound(HTTP2ConnectionDrainer(logger: state.logger), eventLoop: channel.eventLoop)
        _ = try sync.configureHTTP2Pipeline(mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()) { stream in
            stream.eventLoop.makeCompletedFuture {
                drainer.value.streamOpened(stream)
                try stream.pipeline.syncOperations.addHandlers([
                    HTTP2ResponseFrameWriter(),
                    HTTP2FramePayloadToHTTP1ServerCodec(),
                    GatewayRequestHandler(
                        state: state, pool: pools.pool(for: stream.eventLoop), connection: info, isHTTP2: true, timeouts: nil,
                        timerGroup: timerGroup.value),
                ])
            }
        }
        // After the HTTP/2 handler, where the server's quiesce arrives: the GOAWAY and the close of a drain.
        try sync.addHandler(drainer.value)
    }

    static func makeSSLContext(_ tls: GatewayConfiguration.TLS) throws -> NIOSSLContext {
        let certificates = try NIOSSLCertificate.fromPEMFile(tls.certificatePath)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificates.map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.privateKeyPath, format: .pem)))
        configuration.applicationProtocols = ["h2", "http/1.1"]
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }

    static func connectionInfo(_ channel: Channel, trusted: [IPAddressRange], scheme: String) -> ClientConnectionInfo {
        let address = channel.remoteAddress
        let text = address?.ipAddress ?? "unknown"
        let bytes = address.flatMap(Self.addressBytes)
        let isTrusted = bytes.map { bytes in trusted.contains { $0.contains(bytes) } } ?? false
        return ClientConnectionInfo(peerAddress: text, peerIsTrusted: isTrusted, scheme: scheme)
    }

    private static func addressBytes(_ address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket:
            return nil
        }
    }
}

/// Closes an HTTP/2 connection that carried nothing for the idle timeout.
final class IdleConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
