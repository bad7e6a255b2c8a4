import NIOCore
import NIOHTTP1

/// The request encoder of an upstream connection, where the stock `HTTPRequestEncoder` would be: it turns request
/// parts into bytes with ``UpstreamRequestSerializer`` and holds them until the flush, so a request's head, its small
/// body parts and its end leave as one buffer (one `write`, not a `writev` of a buffer per part).
///
/// It stays a handler, in front of the response decoder, because that decoder learns from the request heads that
/// pass it which responses have no body (those to `HEAD`).
final class UpstreamRequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = ByteBuffer

    /// A body part at least this big is written as it is rather than copied into the pending bytes.
    static let uncopiedBodyPart = 16 * 1024

    private var serializer = UpstreamRequestSerializer()
    /// The bytes written since the last flush.
    private var pending: ByteBuffer?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        var buffer = pending ?? context.channel.allocator.buffer(capacity: 512)
        if case .body(.byteBuffer(let bytes)) = part, bytes.readableBytes >= Self.uncopiedBodyPart {
            if serializer.appendChunkPrefix(count: bytes.readableBytes, to: &buffer) {
                context.write(wrapOutboundOut(buffer), promise: nil)
                context.write(wrapOutboundOut(bytes), promise: nil)
                buffer = context.channel.allocator.buffer(capacity: 2)
                serializer.appendChunkSuffix(to: &buffer)
            }
        } else {
            serializer.append(part, to: &buffer)
        }
        if let promise {
            // Someone waits for this part: it goes now, in order after what was pending.
            context.write(wrapOutboundOut(buffer), promise: promise)
            pending = nil
        } else {
            pending = buffer
        }
    }

    func flush(context: ChannelHandlerContext) {
        writePending(context: context)
        context.flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Removed for a tunnel: what the request wrote is the upstream's, before any tunnelled byte.
        writePending(context: context)
    }

    private func writePending(context: ChannelHandlerContext) {
        if let pending, pending.readableBytes > 0 {
            context.write(wrapOutboundOut(pending), promise: nil)
        }
        pending = nil
    }
}
