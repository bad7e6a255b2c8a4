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
    private var timer: Scheduled<Void>?
    private var deadline: NIODeadline?

    init(headTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.headTimeout = headTimeout
        self.idleTimeout = idleTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        // A fresh connection gets the head timeout straight away: opening a socket and sending nothing is slow-loris too.
        arm(headTimeout, context: context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(headTimeout, context: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        deadline = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .idle = state {
            state = .readingHead
            arm(headTimeout, context: context)
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
            disarm()
        case .responseCompleted:
            state = .idle
            arm(idleTimeout, context: context)
        case .tunnelStarted:
            state = .tunnel
            disarm()
        }
        promise?.succeed()
    }

    /// Sets the deadline for the current state. A timer is only scheduled when none is pending: the pending one
    /// re-arms itself for a later deadline when it fires, so a busy keep-alive connection costs no timer per request.
    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        deadline = .now() + timeout
        if timer == nil { schedule(at: deadline!, context: context) }
    }

    private func disarm() {
        deadline = nil
    }

    private func schedule(at when: NIODeadline, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.fire(context: loopBound.value)
        }
    }

    private func fire(context: ChannelHandlerContext) {
        guard let deadline else { return }
        guard NIODeadline.now() >= deadline else {
            schedule(at: deadline, context: context)
            return
        }
        self.deadline = nil
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
