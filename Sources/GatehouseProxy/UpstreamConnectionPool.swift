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
        /// Idle connections kept per upstream on this event loop.
        public var maxIdlePerUpstream: Int

        public init(connectTimeout: TimeAmount, idleTimeout: TimeAmount, maxIdlePerUpstream: Int = 64) {
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

    public let eventLoop: EventLoop
    private let configuration: Configuration
    private var idle: [UpstreamKey: [UpstreamConnection]] = [:]
    private var isClosed = false
    /// One sweeper for the whole pool: a timer per released connection would cost a schedule and a cancel on
    /// every request.
    private var sweeper: Scheduled<Void>?

    public init(eventLoop: EventLoop, configuration: Configuration) {
        self.eventLoop = eventLoop
        self.configuration = configuration
    }

    /// A connection to `upstream`: the most recently used idle one, else a new one.
    public func lease(_ upstream: UpstreamURL, forceNew: Bool = false) -> Lease {
        eventLoop.preconditionInEventLoop()
        let key = UpstreamKey(host: upstream.host, port: upstream.port)
        if !forceNew {
            // Popped in place: copying the stack out of the dictionary would copy its storage on every request.
            while let connection = idle[key]?.popLast() {
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
        guard !isClosed, connection.isActive, idle[connection.key, default: []].count < configuration.maxIdlePerUpstream else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        idle[connection.key, default: []].append(connection)
        startSweeperIfNeeded()
    }

    /// Closes connections idle for longer than `idleTimeout`, checking a few times per timeout period while any
    /// connection is idle.
    private func startSweeperIfNeeded() {
        guard sweeper == nil, !isClosed else { return }
        let period = TimeAmount.nanoseconds(max(configuration.idleTimeout.nanoseconds / 4, TimeAmount.milliseconds(10).nanoseconds))
        sweeper = eventLoop.assumeIsolated().scheduleTask(in: period) { [weak self] in
            guard let self else { return }
            self.sweeper = nil
            self.evictExpired(now: .now())
            if !self.idle.isEmpty { self.startSweeperIfNeeded() }
        }
    }

    private func evictExpired(now: NIODeadline) {
        var expired: [UpstreamConnection] = []
        for (key, stack) in idle {
            // The stack is ordered by release time, so the oldest connections are at the bottom.
            let keep = stack.filter { connection in
                guard let since = connection.idleSince, now - since >= configuration.idleTimeout else { return true }
                expired.append(connection)
                return false
            }
            // Empty stacks go too (leases pop in place and leave them), so the sweeper stops when nothing is idle.
            if keep.isEmpty { idle[key] = nil } else if keep.count != stack.count { idle[key] = keep }
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
        let connections = idle.values.flatMap { $0 }
        idle.removeAll()
        for connection in connections {
            connection.close()
        }
    }

    private func remove(_ connection: UpstreamConnection) {
        guard let index = idle[connection.key]?.firstIndex(where: { $0 === connection }) else { return }
        idle[connection.key]?.remove(at: index)
        if idle[connection.key]?.isEmpty == true { idle[connection.key] = nil }
    }

    private func connect(_ key: UpstreamKey) -> EventLoopFuture<UpstreamConnection> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTPRequestEncoder(), name: UpstreamConnectionHandler.encoderName)
                    try sync.addHandler(
                        ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)),
                        name: UpstreamConnectionHandler.decoderName)
                    try sync.addHandler(UpstreamConnectionHandler())
                }
            }
        // The bootstrap runs on this pool's loop, so the callback may touch the pool directly.
        return bootstrap.connect(host: key.host, port: key.port).assumeIsolated().flatMapThrowing { channel in
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
            let connection = UpstreamConnection(channel: channel, handler: handler, key: key)
            handler.onClose = { [weak self, weak connection] in
                guard let self, let connection, connection.idleSince != nil else { return }
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
