import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix

/// An upstream that keeps every byte the gateway sent it, per connection, and answers each request its own HTTP/1
/// decoder reads with `200 ok` (or, when asked, a `101` to every request). Tests judge the upstream's view of the traffic by parsing
/// the recorded bytes again with a decoder of their own (``UpstreamView``), independently of the gateway's parser.
public final class RecordingUpstream: Sendable {
    public let channel: Channel
    private let recorded: NIOLockedValueBox<[Int: [UInt8]]>
    private let counter: NIOLockedValueBox<Int>
    private let open: NIOLockedValueBox<Set<Int>>
    public var port: Int { channel.localAddress!.port! }

    /// - Parameter upgradeAlways: answer every request with a `101` naming this protocol, then fall silent.
    public static func start(answerEveryRequestWith101 upgradeAlways: String? = nil) async throws
        -> RecordingUpstream
    {
        let recorded = NIOLockedValueBox<[Int: [UInt8]]>([:])
        let counter = NIOLockedValueBox(0)
        let open = NIOLockedValueBox<Set<Int>>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = counter.withLockedValue { value in
                    value += 1
                    return value
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ByteRecorder(id: id, recorded: recorded, open: open))
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try sync.addHandler(HTTPResponseEncoder())
                    try sync.addHandler(RecordingResponder(upgradeAlways: upgradeAlways))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RecordingUpstream(channel: channel, recorded: recorded, counter: counter, open: open)
    }

    private init(channel: Channel, recorded: NIOLockedValueBox<[Int: [UInt8]]>, counter: NIOLockedValueBox<Int>, open: NIOLockedValueBox<Set<Int>>) {
        self.channel = channel
        self.recorded = recorded
        self.counter = counter
        self.open = open
    }

    /// How many connections still open carried `marker` somewhere in their bytes.
    public func openConnections(carrying marker: String) -> Int {
        let open = self.open.withLockedValue { $0 }
        return recorded.withLockedValue { recorded in
            recorded.filter { open.contains($0.key) && String(decoding: $0.value, as: UTF8.self).contains(marker) }.count
        }
    }

    /// How many connections from the gateway are open now.
    public var openConnections: Int { open.withLockedValue { $0.count } }

    /// How many connections the gateway has opened so far.
    public var acceptedConnections: Int { counter.withLockedValue { $0 } }

    /// The bytes of every connection so far, in the order the connections were accepted.
    public func connections() -> [[UInt8]] {
        recorded.withLockedValue { recorded in recorded.keys.sorted().map { recorded[$0]! } }
    }

    /// Every request the upstream's bytes hold, parsed again from scratch.
    public func view() -> UpstreamView { UpstreamView(connections: connections()) }

    /// Forgets what was recorded.
    public func reset() { recorded.withLockedValue { $0.removeAll() } }

    public func stop() async { try? await channel.close() }
}

private final class ByteRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let id: Int
    let recorded: NIOLockedValueBox<[Int: [UInt8]]>
    let open: NIOLockedValueBox<Set<Int>>

    init(id: Int, recorded: NIOLockedValueBox<[Int: [UInt8]]>, open: NIOLockedValueBox<Set<Int>>) {
        self.id = id
        self.recorded = recorded
        self.open = open
    }

    func channelActive(context: ChannelHandlerContext) {
        open.withLockedValue { _ = $0.insert(id) }
        recorded.withLockedValue { $0[id, default: []] += [] }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        open.withLockedValue { _ = $0.remove(id) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        recorded.withLockedValue { $0[id, default: []] += buffer.readableBytesView }
        context.fireChannelRead(data)
    }
}

private final class RecordingResponder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let upgradeAlways: String?
    private var head: HTTPRequestHead?

    init(upgradeAlways: String?) {
        self.upgradeAlways = upgradeAlways
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            if let upgradeAlways {
                switchProtocols(to: upgradeAlways, context: context)
                return
            }
            var headers = HTTPHeaders([("Content-Length", "2")])
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: "ok")))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    private func switchProtocols(to value: String, context: ChannelHandlerContext) {
        let headers = HTTPHeaders([("Upgrade", value), ("Connection", "Upgrade")])
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Requests as an upstream's HTTP/1 parser reads them from the bytes the gateway sent: a fresh `HTTPRequestDecoder`
/// per connection, fed everything that connection carried, then its end.
public struct UpstreamView: Sendable {
    public struct Request: Sendable {
        public var head: HTTPRequestHead
        public var body: [UInt8]
        /// Whether the request ended (a complete message); a request cut off by a closed connection did not.
        public var isComplete: Bool
        public var trailers: HTTPHeaders?
        /// Which recorded connection carried it.
        public var connection: Int
    }

    public var requests: [Request] = []
    /// Per connection that the decoder refused, or that ended inside a message (bytes left over that are not a
    /// whole request): the connection's index and the error.
    public var parseErrors: [(connection: Int, error: String)] = []

    public init(connections: [[UInt8]]) {
        for (index, bytes) in connections.enumerated() {
            let channel = EmbeddedChannel()
            let collector = PartCollector(connection: index)
            var errors: [String] = []
            do {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                try channel.pipeline.syncOperations.addHandler(collector)
                try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
            } catch {
                errors.append(String(describing: error))
            }
            do {
                _ = try channel.finish()
            } catch {
                errors.append(String(describing: error))
            }
            requests += collector.requests
            errors += collector.errors
            if let error = errors.first { parseErrors.append((index, error)) }
        }
    }

    /// The requests whose `X-Request-Id` is `id`.
    public func requests(withID id: String) -> [Request] {
        requests.filter { $0.head.headers["x-request-id"] == [id] }
    }
}

private final class PartCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    let connection: Int
    var requests: [UpstreamView.Request] = []
    var errors: [String] = []

    init(connection: Int) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): requests.append(.init(head: head, body: [], isComplete: false, connection: connection))
        case .body(let buffer): requests[requests.count - 1].body += buffer.readableBytesView
        case .end(let trailers):
            requests[requests.count - 1].isComplete = true
            requests[requests.count - 1].trailers = trailers
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errors.append(String(describing: error))
    }
}
