import NIOCore
import NIOHTTP1

/// Joins two channels into a byte tunnel once a WebSocket upgrade is accepted: whatever one side reads the
/// other writes, and a side stops reading while its partner cannot write.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: TunnelHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    private init() {}

    /// Two handlers that know each other; add one to each channel.
    static func matchedPair() -> (TunnelHandler, TunnelHandler) {
        let first = TunnelHandler()
        let second = TunnelHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    /// Removes the HTTP/1 codec from a client channel, leaving `handler` for the caller.
    static func removeHTTPHandlers(from channel: Channel, keeping handler: ChannelHandler) -> EventLoopFuture<Void> {
        let sync = channel.pipeline.syncOperations
        var removals: [EventLoopFuture<Void>] = []
        if let decoder = try? sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) { removals.append(sync.removeHandler(decoder)) }
        if let encoder = try? sync.handler(type: HTTPResponseEncoder.self) { removals.append(sync.removeHandler(encoder)) }
        return EventLoopFuture.andAllSucceed(removals, on: channel.eventLoop)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { context.read() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerBecameWritable() {
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }
}
