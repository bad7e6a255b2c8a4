import NIOCore
import NIOHTTP1

/// Receives the upstream's response for the request that currently holds the connection.
///
/// Every call arrives on the connection's event loop, which is also the client connection's, so the
/// receiver (the client-side handler) needs no locking and no thread hop.
public protocol UpstreamResponseReceiver: AnyObject {
    func upstreamReceived(head: HTTPResponseHead)
    func upstreamReceived(body: ByteBuffer)
    func upstreamReceivedEnd(trailers: HTTPHeaders?)
    /// The reads of one socket wake-up are done: the moment to flush the client side.
    func upstreamReadComplete()
    /// The connection closed or failed before the response ended.
    func upstreamConnectionLost(error: Error?)
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// One HTTP/1.1 connection to an upstream, leased to one request at a time.
public final class UpstreamConnection {
    public let channel: Channel
    let handler: UpstreamConnectionHandler
    let key: UpstreamKey
    /// Whether this connection already served a request: only then may a failure before any response
    /// byte be a stale keep-alive connection worth one retry.
    public internal(set) var isReused = false
    /// When the connection went back to the pool; nil while leased.
    var idleSince: NIODeadline?

    init(channel: Channel, handler: UpstreamConnectionHandler, key: UpstreamKey) {
        self.channel = channel
        self.handler = handler
        self.key = key
    }

    /// Who gets the response events; nil while the connection sits idle in the pool.
    public var receiver: UpstreamResponseReceiver? {
        get { handler.receiver }
        set { handler.receiver = newValue }
    }

    public var isWritable: Bool { channel.isWritable }
    public var isActive: Bool { channel.isActive }

    public func write(_ part: HTTPClientRequestPart, promise: EventLoopPromise<Void>? = nil) {
        handler.write(part, promise: promise)
    }

    public func flush() { handler.flush() }

    /// Stops reading the upstream socket (the client cannot take more yet).
    public func pauseReading() { handler.readsPaused = true }

    public func resumeReading() { handler.resumeReading() }

    /// Closes without returning to the pool.
    public func close() {
        handler.receiver = nil
        channel.close(promise: nil)
    }

    /// The raw channel handlers to remove when switching to a byte tunnel (WebSocket), in order.
    public func removeHTTPHandlers() -> EventLoopFuture<Void> {
        handler.receiver = nil
        let sync = channel.pipeline.syncOperations
        let removals = [
            sync.removeHandler(name: UpstreamConnectionHandler.encoderName),
            sync.removeHandler(name: UpstreamConnectionHandler.decoderName),
            sync.removeHandler(handler),
        ]
        return EventLoopFuture.andAllSucceed(removals, on: channel.eventLoop)
    }
}

/// Identifies an upstream origin, the unit of pooling.
struct UpstreamKey: Hashable {
    var host: String
    var port: Int
}

/// Sits at the end of an upstream channel: forwards response parts to the receiver and holds reads
/// while the client is not writable, so a fast upstream cannot fill the gateway's memory.
final class UpstreamConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    static let encoderName = "gatehouse.upstream.encoder"
    static let decoderName = "gatehouse.upstream.decoder"

    var receiver: UpstreamResponseReceiver?
    var readsPaused = false
    private var readPending = false
    private var context: ChannelHandlerContext?
    /// Called once when the channel goes away, so the pool forgets it. It holds the pool and the connection strongly;
    /// it is let go once called, or when the handler leaves the pipeline (a tunnel).
    var onClose: (() -> Void)?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        onClose = nil
    }

    func write(_ part: HTTPClientRequestPart, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(part), promise: promise)
    }

    func flush() { context?.flush() }

    func resumeReading() {
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let receiver else {
            // Bytes from an idle connection: the upstream is confused; never reuse it.
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head): receiver.upstreamReceived(head: head)
        case .body(let buffer): receiver.upstreamReceived(body: buffer)
        case .end(let trailers): receiver.upstreamReceivedEnd(trailers: trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        receiver?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let receiver = self.receiver
        self.receiver = nil
        onClose?()
        onClose = nil
        receiver?.upstreamConnectionLost(error: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let receiver = self.receiver
        self.receiver = nil
        receiver?.upstreamConnectionLost(error: error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        receiver?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }
}
