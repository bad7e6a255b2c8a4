import NIOCore
import NIOHTTP2

/// Sits between an HTTP/2 stream and its HTTP/1 codec and lets the end of a response ride on its last `DATA` frame.
///
/// The codec turns a response's end into an empty `DATA` frame with `END_STREAM`, so a small response is three
/// frames (`HEADERS`, `DATA`, empty `DATA`), each through the stream channel, the connection's state machine, its flow
/// control and the frame encoder. This holds a `DATA` frame back until the next write or flush: an empty end that
/// follows is folded into it, and the response is two frames, as nginx sends it. Nothing waits past a flush, and every
/// other frame goes out as it came, in order; what an HTTP/2 client reads (headers, body bytes, the end, trailers) is
/// unchanged (`HTTP2ResponseFrameWriterTests` compares it with the codec's own frames on generated responses).
final class HTTP2ResponseFrameWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// A `DATA` frame without `END_STREAM`, not yet written, and its promise.
    private var heldData: (payload: HTTP2Frame.FramePayload.Data, promise: EventLoopPromise<Void>?)?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        switch payload {
        case .data(let frame) where frame.endStream && frame.data.readableBytes == 0 && frame.paddingBytes == nil:
            if var held = heldData {
                // The end rides on the body's last frame.
                heldData = nil
                held.payload.endStream = true
                context.write(wrapOutboundOut(.data(held.payload)), promise: Self.combine(held.promise, promise, on: context))
            } else {
                context.write(data, promise: promise)
            }
        case .data(let frame) where !frame.endStream:
            writeHeld(context: context)
            heldData = (frame, promise)
        default:
            writeHeld(context: context)
            context.write(data, promise: promise)
        }
    }

    func flush(context: ChannelHandlerContext) {
        writeHeld(context: context)
        context.flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        writeHeld(context: context)
    }

    private func writeHeld(context: ChannelHandlerContext) {
        guard let held = heldData else { return }
        heldData = nil
        context.write(wrapOutboundOut(.data(held.payload)), promise: held.promise)
    }

    /// One promise for a write that does the work of two.
    private static func combine(
        _ first: EventLoopPromise<Void>?, _ second: EventLoopPromise<Void>?, on context: ChannelHandlerContext
    ) -> EventLoopPromise<Void>? {
        switch (first, second) {
        case (nil, let only), (let only, nil): return only
        case (let first?, let second?):
            second.futureResult.cascade(to: first)
            return second
        }
    }
}
