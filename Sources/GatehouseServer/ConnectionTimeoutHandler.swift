import NIOCore

/// Enforces the HTTP/1 connection deadlines below the HTTP codec, where it sees raw bytes:
/// - a request head must be complete within `headTimeout` of its first byte (slow-loris protection): 408 and close;
/// - a keep-alive connection idle between requests for `idleTimeout` is closed.
///
/// The request handler reports progress with outbound user events (``Event``).
final class ConnectionTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    enum Event {
        case requestHeadReceived
        case responseCompleted
        case tunnelStarted
    }

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
        timer = DeadlineTimer(eventLoop: context.eventLoop) { [weak self] in self?.expire() }
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

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? Event else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch event {
        case .requestHeadReceived:
            state = .busy
            timer?.disarm()
        case .responseCompleted:
            state = .idle
            timer?.arm(in: idleTimeout)
        case .tunnelStarted:
            state = .tunnel
            timer?.disarm()
        }
        promise?.succeed()
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
