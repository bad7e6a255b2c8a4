import GatehouseConfiguration
import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to upstreams, for one event loop.
///
/// A client connection only ever uses the pool of its own event loop, so a request is forwarded without
/// any thread hop and the pool needs no lock. Idle connections are bounded per upstream and evicted after
/// `idleTimeout`.
public final class UpstreamConnectionPool {
    public struct Configuration: Sendable {
        public var connectTimeout: TimeAmount
        public var idleTimeout: TimeAmount
        /// Idle connections kept per upstream on this event loop. Each request in flight holds one connection, so
        /// this is sized for HTTP/2 clients' concurrent streams (100 per connection): at 64, one request in four of
        /// `h2load -c16 -m16` opened a new TCP connection because the release before it had closed one.
        public var maxIdlePerUpstream: Int

        public init(connectTimeout: TimeAmount, idleTimeout: TimeAmount, maxIdlePerUpstream: Int = 512) {
            self.connectTimeout = connectTimeout
            self.idleTimeout = idleTimeout
            self.maxIdlePerUpstream = maxIdlePerUpstream
        }
    }

    /// A connection right away, or one being opened.
    public enum Lease {
        case ready(UpstreamConnection)
        case connecting(EventLoopFuture<UpstreamConnection>)
    }

    /// Opens a channel to `host`:`port` on the pool's loop and runs `initialize` on it (which adds the HTTP codec
    /// and the connection's handler) before it is used. The default connects a TCP socket; tests make channels of
    /// their own.
    public typealias Connector = (
        _ host: String, _ port: Int, _ eventLoop: EventLoop, _ initialize: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel>

    public let eventLoop: EventLoop
    private let configuration: Configuration
    private let connector: Connector
    /// Idle connections per upstream, most recently released last. A class, so a lease or a release looks the
    /// stack up and changes it in place: a dictionary `modify` access allocates its coroutine frame each time.
    private final class IdleStack {
        var connections: [UpstreamConnection] = []
    }

    private var idle: [UpstreamKey: IdleStack] = [:]
    private var isClosed = false
    /// One sweeper for the whole pool: a timer per released connection would cost a schedule and a cancel on
    /// every request.
    private var sweeper: Scheduled<Void>?

    public init(eventLoop: EventLoop, configuration: Configuration, connector: Connector? = nil) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.connector = connector ?? Self.tcpConnector(configuration)
    }

    private static func tcpConnector(_ configuration: Configuration) -> Connector {
        { host, port, eventLoop, initialize in
            ClientBootstrap(group: eventLoop)
                .connectTimeout(configuration.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try initialize(channel) }
                }
                .connect(host: host, port: port)
        }
    }

    /// The handlers of an upstream channel: the request encoder, the response decoder and the connection's handler.
    static func initialize(_ channel: Channel) throws {
        let sync = channel.pipeline.syncOperations
        // The gateway frames upstream requests itself (see ``RequestFraming``): the encoder adds no framing header.
        try sync.addHandler(UpstreamRequestEncoder(), name: UpstreamConnectionHandler.encoderName)
        try sync.addHandler(
            ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)), name: UpstreamConnectionHandler.decoderName)
        try sync.addHandler(UpstreamConnectionHandler())
    }

    /// A connection to `upstream`: the most recently used idle one, else a new one.
    public func lease(_ upstream: UpstreamURL, forceNew: Bool = false) -> Lease {
        eventLoop.preconditionInEventLoop()
        let key = UpstreamKey(host: upstream.host, port: upstream.port)
        if !forceNew {
            while let connection = idle[key]?.connections.popLast() {
                connection.idleSince = nil
                if connection.isActive {
                    connection.isReused = true
                    return .ready(connection)
                }
            }
        }
        return .connecting(connect(key))
    }

    /// Returns a connection whose exchange completed cleanly (both messages fully transferred).
    public func release(_ connection: UpstreamConnection) {
        eventLoop.preconditionInEventLoop()
        connection.receiver = nil
        connection.resumeReading()
        let stack: IdleStack
        if let existing = idle[connection.key] {
            stack = existing
        } else {
            stack = IdleStack()
            idle[connection.key] = stack
        }
        guard !isClosed, connection.isActive, stack.connections.count < configuration.maxIdlePerUpstream else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        stack.connections.append(connection)
        startSweeperIfNeeded()
    }

    /// Closes connections idle for longer than `idleTimeout`, checking a few times per timeout period while any
    /// connection is idle.
    private func startSweeperIfNeeded() {
        guard sweeper == nil, !isClosed else { return }
        let period = TimeAmount.nanoseconds(max(configuration.idleTimeout.nanoseconds / 4, TimeAmount.milliseconds(10).nanoseconds))
        // Strong captures of the pool and its connections throughout: a weak reference gives an object a side table,
        // and every retain and release of it takes the runtime's slow path. The cycles end when the task runs, when
        // the pool closes, or when the connection closes (``UpstreamConnectionHandler/onClose``).
        sweeper = eventLoop.assumeIsolated().scheduleTask(in: period) { [self] in
            self.sweeper = nil
            self.evictExpired(now: .now())
            if !self.idle.isEmpty { self.startSweeperIfNeeded() }
        }
    }

    private func evictExpired(now: NIODeadline) {
        var expired: [UpstreamConnection] = []
        for (key, stack) in idle {
            stack.connections.removeAll { connection in
                guard let since = connection.idleSince, now - since >= configuration.idleTimeout else { return false }
                expired.append(connection)
                return true
            }
            // Empty stacks go too (leases leave them), so the sweeper stops when nothing is idle.
            if stack.connections.isEmpty { idle[key] = nil }
        }
        for connection in expired {
            connection.idleSince = nil
            connection.close()
        }
    }

    /// Closes every idle connection; later releases close instead of pooling.
    public func closeAll() {
        eventLoop.preconditionInEventLoop()
        isClosed = true
        sweeper?.cancel()
        sweeper = nil
        let connections = idle.values.flatMap(\.connections)
        idle.removeAll()
        for connection in connections {
            connection.close()
        }
    }

    private func remove(_ connection: UpstreamConnection) {
        guard let stack = idle[connection.key], let index = stack.connections.firstIndex(where: { $0 === connection }) else { return }
        stack.connections.remove(at: index)
        if stack.connections.isEmpty { idle[connection.key] = nil }
    }

    private func connect(_ key: UpstreamKey) -> EventLoopFuture<UpstreamConnection> {
        // The connection is made on this pool's loop, so the callback may touch the pool directly.
        return connector(key.host, key.port, eventLoop, Self.initialize).assumeIsolated().flatMapThrowing { channel in
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
            let connection = UpstreamConnection(channel: channel, handler: handler, key: key)
            handler.onClose = { [self] in
                guard connection.idleSince != nil else { return }
                self.remove(connection)
            }
            return connection
        }.nonisolated()
    }
}

/// One pool per event loop of a group, found by the loop a channel runs on.
public struct UpstreamPools: Sendable {
    private let boxes: [ObjectIdentifier: NIOLoopBoundBox<UpstreamConnectionPool?>]
    private let configuration: UpstreamConnectionPool.Configuration

    public init(group: EventLoopGroup, configuration: UpstreamConnectionPool.Configuration) {
        var boxes: [ObjectIdentifier: NIOLoopBoundBox<UpstreamConnectionPool?>] = [:]
        for loop in group.makeIterator() {
            // Each pool is created on first use, on its own loop.
            boxes[ObjectIdentifier(loop)] = .makeEmptyBox(valueType: UpstreamConnectionPool.self, eventLoop: loop)
        }
        self.boxes = boxes
        self.configuration = configuration
    }

    /// The pool of `eventLoop`; call on that loop.
    public func pool(for eventLoop: EventLoop) -> UpstreamConnectionPool {
        let box = boxes[ObjectIdentifier(eventLoop)]!
        if let pool = box.value { return pool }
        let pool = UpstreamConnectionPool(eventLoop: eventLoop, configuration: configuration)
        box.value = pool
        return pool
    }

    /// Closes every pool's idle connections.
    public func closeAll() -> [EventLoopFuture<Void>] {
        boxes.values.map { box in
            box.eventLoop.submit { box.value?.closeAll() }
        }
    }
}
