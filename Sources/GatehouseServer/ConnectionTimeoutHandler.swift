import NIOCore

/// Enforces the HTTP/1 connection deadlines below the HTTP codec, where it sees raw bytes:
/// - a request head must be complete within `headTimeout` of its first byte (slow-loris protection): 408 and close;
/// - a keep-alive connection idle between requests for `idleTimeout` is closed.
///
/// The request handler of the same channel reports progress by calling it directly (``requestHeadReceived()``,
/// ``responseCompleted()``, ``tunnelStarted()``): both live on the channel's event loop, and a user event would
/// travel through every handler in between, boxed, twice per request.
final class ConnectionTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        /// Between requests: waiting for the first byte of the next head.
        case idle
        /// Bytes of a head arrived; the head must complete in time.
        case readingHead
        /// A request is being served; its own timeouts apply.
        case busy
        case tunnel
    }

    private let headTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var state = State.idle
    private var timer: DeadlineTimer?
    private var context: ChannelHandlerContext?

    init(headTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.headTimeout = headTimeout
        self.idleTimeout = idleTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        // A fresh connection gets the head timeout straight away: opening a socket and sending nothing is slow-loris too.
        timer?.arm(in: headTimeout)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A strong capture: `handlerRemoved` cancels the timer, which lets it go (see DeadlineTimer).
        timer = DeadlineTimer(eventLoop: context.eventLoop) { [self] in expire() }
        if context.channel.isActive { timer?.arm(in: headTimeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .idle = state {
            state = .readingHead
            timer?.arm(in: headTimeout)
        }
        context.fireChannelRead(data)
    }

    /// A whole request head arrived: the request's own timeouts apply from now on.
    func requestHeadReceived() {
        state = .busy
        timer?.disarm()
    }

    /// The response is complete: the connection is idle until the next request's first byte.
    func responseCompleted() {
        state = .idle
        timer?.arm(in: idleTimeout)
    }

    /// The connection became a WebSocket tunnel, which has no HTTP deadlines.
    func tunnelStarted() {
        state = .tunnel
        timer?.disarm()
    }

    private func expire() {
        guard let context else { return }
        switch state {
        case .readingHead:
            // Below the HTTP encoder: write the answer as bytes.
            let body = #"{"type":"about:blank","title":"Request Timeout","status":408,"detail":"The request head was not received in time."}"#
            let response = "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)"
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: response))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .idle:
            context.close(promise: nil)
        case .busy, .tunnel:
            break
        }
    }
}
