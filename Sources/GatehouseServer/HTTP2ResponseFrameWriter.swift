import NIOCore
import NIOHPACK
import NIOHTTP2

/// Sits between an HTTP/2 stream and its HTTP/1 codec and lets the end of a response ride on its last `DATA` frame.
///
/// The codec turns a response's end into an empty `DATA` frame with `END_STREAM`, so a small response is three
/// frames (`HEADERS`, `DATA`, empty `DATA`), each through the stream channel, the connection's state machine, its flow
/// control and the frame encoder. This holds a `DATA` frame back until the next write or flush: an empty end that
/// follows is folded into it, and the response is two frames, as nginx sends it. Nothing waits past a flush, and every
/// other frame goes out as it came, in order; what an HTTP/2 client reads (headers, body bytes, the end, trailers) is
/// unchanged (`HTTP2ResponseFrameWriterTests` compares it with the codec's own frames on generated responses).
///
/// It also chooses how header fields enter the connection's HPACK table (RFC 7541 §7.1.3). `X-Request-Id` is new on
/// every response: indexed, each one would push a useful entry out of the table and lengthen the encoder's linear
/// search of it for every field of every response after. `Set-Cookie` carries session secrets: never indexed, so
/// no later response's compression depends on it.
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
        case .headers(var frame):
            writeHeld(context: context)
            Self.chooseIndexing(&frame.headers)
            context.write(wrapOutboundOut(.headers(frame)), promise: promise)
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

    /// Marks the fields whose values must not enter the HPACK table; the names are lower case (the codec made them so).
    static func chooseIndexing(_ headers: inout HPACKHeaders) {
        guard headers.contains(where: { $0.name == "x-request-id" || $0.name == "set-cookie" }) else { return }
        var chosen = HPACKHeaders()
        chosen.reserveCapacity(headers.count)
        for field in headers {
            switch field.name {
            case "x-request-id": chosen.add(name: field.name, value: field.value, indexing: .nonIndexable)
            case "set-cookie": chosen.add(name: field.name, value: field.value, indexing: .neverIndexed)
            default: chosen.add(name: field.name, value: field.value, indexing: field.indexable)
            }
        }
        headers = chosen
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
