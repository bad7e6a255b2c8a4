import NIOCore

/// Turns the flushes of one turn of the event loop into one, for an HTTP/2 connection under TLS.
///
/// Each stream's response ends when its upstream connection is read, an event of that connection, not of the
/// client's: NIOHTTP2 then flushes the client connection at once, for every stream, and each flush is a TLS record
/// and a `write` system call of its own (strace: one per request). Here a flush is passed on at the end of the
/// current turn instead, after every stream that finished in it has written, so they leave in one record and one
/// `write`. Writes pass straight through (the TLS handler holds them until the flush). Nothing is held past the
/// turn, and a close flushes first, so a GOAWAY written just before it still goes out.
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    /// Whether a flush was asked for and is waiting for the end of the turn.
    private var flushPending = false

    func flush(context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        context.eventLoop.assumeIsolated().execute { [self] in
            guard flushPending else { return }
            flushPending = false
            context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        flushNow(context: context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        flushNow(context: context)
    }

    /// Passes a waiting flush on now.
    private func flushNow(context: ChannelHandlerContext) {
        guard flushPending else { return }
        flushPending = false
        context.flush()
    }
}
