import GatehouseProxy
import NIOCore
import NIOHTTP1

/// One proxied request as a value: what goes upstream and when, what the client is told, whether the upstream
/// connection goes back to the pool, and when the exchange is retried or fails. `GatewayRequestHandler` feeds it
/// the events of both connections and carries out the action each method returns; the machine does no I/O.
///
/// The request side buffers until a connection is attached, then streams, then has ended. The response side awaits
/// the head, streams, then has ended (or the gateway answered with a problem, or the exchange became a tunnel).
/// An event a state cannot take returns an explicit action (`abort`), never nothing.
struct ProxyExchangeStateMachine {
    enum RequestState {
        /// No connection to write on yet: the parts wait, in order (`.end` among them once the client sent it).
        case buffering([HTTPClientRequestPart])
        /// HTTP/2 without `Content-Length`, connected: the head waits for the first part, which decides the framing.
        case awaitingFirstPart
        /// The head went upstream; body parts follow as they arrive.
        case streaming
        /// The request's end went upstream.
        case ended
    }

    enum ResponseState: Equatable {
        case awaitingHead
        case streaming(status: UInt, upstreamKeepAlive: Bool)
        case ended(status: UInt)
        /// The gateway answered the client itself (502, 504, 408, 413); nothing more of the upstream's is sent on.
        case answeredByGateway(status: UInt)
        /// 101: the connections are becoming a byte tunnel; the decoder has yet to end the 101 message.
        case switchingProtocols
        /// The 101 message ended: the connections are a byte tunnel.
        case tunnel
    }

    enum ConnectionState: Equatable {
        case connecting
        case attached(isReused: Bool)
        /// Released to the pool or closed: this exchange has no upstream connection any more.
        case detached
    }

    private(set) var request: RequestState = .buffering([])
    private(set) var response: ResponseState = .awaitingHead
    private(set) var connection: ConnectionState = .connecting
    /// The client sent the request's end (whether or not it went upstream yet).
    private(set) var requestComplete = false
    /// A part of the body went upstream: from then on, a failure cannot be retried.
    private(set) var sentBody = false
    private(set) var retried = false
    private(set) var requestBodyBytes = 0

    private var upstreamHead: HTTPRequestHead
    private(set) var framing: RequestFraming
    private var awaitsFraming: Bool
    private let isIdempotent: Bool
    private let isUpgrade: Bool
    /// The client asked for an upgrade: the upstream connection is not reused after a non-101 answer.
    private let endsParsing: Bool
    private let maxBodyBytes: Int

    init(upstreamHead: HTTPRequestHead, framing: RequestFraming, awaitsFraming: Bool, method: HTTPMethod, isUpgrade: Bool, endsParsing: Bool, maxBodyBytes: Int) {
        self.upstreamHead = upstreamHead
        self.framing = framing
        self.awaitsFraming = awaitsFraming
        self.isUpgrade = isUpgrade
        self.endsParsing = endsParsing
        self.maxBodyBytes = maxBodyBytes
        switch method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: isIdempotent = true
        default: isIdempotent = false
        }
    }

    /// The status the client got or is getting; nil while the upstream's head is awaited.
    var responseStatus: UInt? {
        switch response {
        case .awaitingHead: return nil
        case .streaming(let status, _), .ended(let status), .answeredByGateway(let status): return status
        case .switchingProtocols, .tunnel: return 101
        }
    }

    var responseEnded: Bool {
        switch response {
        case .ended, .answeredByGateway, .switchingProtocols, .tunnel: return true
        case .awaitingHead, .streaming: return false
        }
    }

    // MARK: Upstream connection

    enum ConnectedAction: Equatable {
        /// Write these parts (the head first) and flush; arm the response deadline when `armResponseTimer`.
        case write([HTTPClientRequestPart], armResponseTimer: Bool)
        /// Nothing to write yet (HTTP/2: the head waits for the first part).
        case wait
        /// The exchange ended while the connection was being made: give it back to the pool.
        case release
    }

    mutating func connected(isReused: Bool) -> ConnectedAction {
        guard case .connecting = connection, case .awaitingHead = response, case .buffering(let parts) = request else {
            // The client went away or the gateway answered meanwhile; the fresh connection is still good for others.
            return .release
        }
        connection = .attached(isReused: isReused)
        if awaitsFraming {
            guard let first = parts.first else {
                request = .awaitingFirstPart
                return .wait
            }
            frameLate(firstPartIsEnd: first.isEnd)
        }
        var writes = [HTTPClientRequestPart]()
        writes.reserveCapacity(parts.count + 1)
        writes.append(.head(upstreamHead))
        writes.append(contentsOf: parts)
        if parts.contains(where: \.isBody) { sentBody = true }
        request = requestComplete ? .ended : .streaming
        return .write(writes, armResponseTimer: requestComplete)
    }

    private mutating func frameLate(firstPartIsEnd: Bool) {
        framing = UpstreamRequestPlan.frameLate(&upstreamHead, firstPartIsEnd: firstPartIsEnd)
        awaitsFraming = false
    }

    // MARK: Request from the client

    enum RequestPartAction: Equatable {
        case write(HTTPClientRequestPart)
        /// Write the head (framed now) and this first part.
        case writeHeadAnd(HTTPClientRequestPart)
        case buffered
        /// The upstream is gone or the response is out: the part has nowhere to go.
        case drop
        /// The body passed `limits.max_body_bytes`: 413 if the response has not started, else close both sides.
        case bodyTooLarge(limit: Int)
        /// Something that must not happen did (more bytes than `Content-Length`, a part after the end): close the
        /// upstream and the client connection, so no byte of it can reach the upstream as part of another request.
        case abort
    }

    mutating func requestBody(_ buffer: ByteBuffer) -> RequestPartAction {
        guard !requestComplete else { return .abort }
        requestBodyBytes += buffer.readableBytes
        if case .contentLength(let declared) = framing, requestBodyBytes > declared {
            // The decoder never delivers more than Content-Length; if it ever did, the excess must not reach the
            // upstream as the start of another request.
            return .abort
        }
        if requestBodyBytes > maxBodyBytes {
            // A chunked body is counted as it streams: stopped as soon as it passes the limit.
            return .bodyTooLarge(limit: maxBodyBytes)
        }
        return route(.body(.byteBuffer(buffer)))
    }

    enum RequestEndAction: Equatable {
        /// Write the end; arm the response deadline when `armResponseTimer`.
        case write(HTTPClientRequestPart, armResponseTimer: Bool)
        case writeHeadAnd(HTTPClientRequestPart, armResponseTimer: Bool)
        case buffered
        /// The response is out already (the upstream answered early); the end has nowhere to go.
        case drop
        case abort
    }

    /// The client's end of the request. Request trailers are dropped (§6.6): they could carry identity headers past
    /// the filter.
    mutating func requestEnd() -> RequestEndAction {
        guard !requestComplete else { return .abort }
        requestComplete = true
        let armResponseTimer = response == .awaitingHead
        switch route(.end(nil)) {
        case .write(let part): return .write(part, armResponseTimer: armResponseTimer)
        case .writeHeadAnd(let part): return .writeHeadAnd(part, armResponseTimer: armResponseTimer)
        case .buffered: return .buffered
        case .drop: return .drop
        case .abort, .bodyTooLarge: return .abort
        }
    }

    private mutating func route(_ part: HTTPClientRequestPart) -> RequestPartAction {
        switch response {
        case .awaitingHead, .streaming: break
        case .ended, .answeredByGateway, .switchingProtocols, .tunnel: return .drop
        }
        switch request {
        case .buffering(var parts):
            request = .streaming  // not observable: replaced below; avoids a copy of the array
            parts.append(part)
            request = .buffering(parts)
            return .buffered
        case .awaitingFirstPart:
            frameLate(firstPartIsEnd: part.isEnd)
            if part.isBody { sentBody = true }
            request = part.isEnd ? .ended : .streaming
            return .writeHeadAnd(part)
        case .streaming:
            if part.isBody { sentBody = true }
            if part.isEnd { request = .ended }
            return .write(part)
        case .ended:
            return .abort
        }
    }

    /// The upstream head for the first part when the framing waited for it; the handler writes it before the part.
    var headToWrite: HTTPRequestHead { upstreamHead }

    // MARK: Response from the upstream

    enum ResponseHeadAction: Equatable {
        /// An interim 1xx: the gateway answered `Expect: 100-continue` itself, so it is not passed on.
        case ignore
        case forward(HTTPResponseHead)
        /// A 101 answering the WebSocket upgrade: hand both connections to a tunnel.
        case startTunnel(HTTPResponseHead)
        /// A 101 nobody asked for, or one that does not answer the upgrade: 502, and the upstream is closed.
        case badGateway(detail: String)
        case abort
    }

    mutating func responseHead(_ head: HTTPResponseHead) -> ResponseHeadAction {
        guard case .awaitingHead = response, case .attached = connection else { return .abort }
        if head.status.code >= 100 && head.status.code < 200 && head.status != .switchingProtocols { return .ignore }
        guard head.status == .switchingProtocols else {
            response = .streaming(status: head.status.code, upstreamKeepAlive: head.isKeepAlive)
            return .forward(head)
        }
        guard isUpgrade, ForwardingHeaders.answersWebSocketUpgrade(head.headers) else {
            let detail =
                isUpgrade
                ? "The upstream's 101 does not answer the WebSocket upgrade the client asked for."
                : "The upstream switched protocols without being asked to."
            response = .answeredByGateway(status: 502)
            connection = .detached
            return .badGateway(detail: detail)
        }
        response = .switchingProtocols
        connection = .detached
        return .startTunnel(head)
    }

    enum ResponseBodyAction: Equatable {
        case forward
        case abort
    }

    mutating func responseBody() -> ResponseBodyAction {
        guard case .streaming = response else { return .abort }
        return .forward
    }

    enum ResponseEndAction: Equatable {
        /// The exchange is complete: write the response's end. The upstream connection goes back to the pool when
        /// `releaseUpstream`, else it is closed.
        case complete(releaseUpstream: Bool)
        /// The upstream answered before the request's body was complete: the rest of the body has nowhere to go,
        /// so the upstream connection is closed and so is the client's, once the end is written.
        case completeEarly
        /// The end of the 101 message, which the decoder sends before it stops: the tunnel takes over from here.
        case switchedProtocols
        case abort
    }

    mutating func responseEnd() -> ResponseEndAction {
        if case .switchingProtocols = response {
            response = .tunnel
            return .switchedProtocols
        }
        guard case .streaming(let status, let upstreamKeepAlive) = response, case .attached = connection else { return .abort }
        response = .ended(status: status)
        connection = .detached
        guard requestComplete else { return .completeEarly }
        return .complete(releaseUpstream: upstreamKeepAlive && !endsParsing)
    }

    // MARK: Failures

    enum ConnectionLostAction: Equatable {
        /// A reused keep-alive connection died before any response byte, for an idempotent request none of whose body
        /// has left: safe to send once more on a fresh connection.
        case retryOnFreshConnection
        /// 502 to the client; `closeClient` when the request was not read to its end.
        case badGateway(closeClient: Bool)
        /// Mid-response: the client must see its connection end, not a truncated body presented as complete.
        case closeClient
        /// The exchange no longer depends on this connection.
        case none
    }

    mutating func connectionLost() -> ConnectionLostAction {
        guard case .attached(let isReused) = connection else { return .none }
        connection = .detached
        switch response {
        case .awaitingHead:
            if isReused, !retried, isIdempotent, !sentBody {
                retried = true
                connection = .connecting
                request = .buffering(requestComplete ? [.end(nil)] : [])
                return .retryOnFreshConnection
            }
            response = .answeredByGateway(status: 502)
            return .badGateway(closeClient: !requestComplete)
        case .streaming(let status, _):
            response = .ended(status: status)
            return .closeClient
        case .ended, .answeredByGateway, .switchingProtocols, .tunnel:
            return .none
        }
    }

    /// Connecting failed (refused, timed out, no route).
    mutating func connectFailed() -> ConnectionLostAction {
        guard case .connecting = connection, case .awaitingHead = response else { return .none }
        connection = .detached
        response = .answeredByGateway(status: 502)
        return .badGateway(closeClient: !requestComplete)
    }

    enum TimeoutAction: Equatable {
        /// Close the upstream connection and answer the client with this status, closing it when `closeClient`.
        case answer(status: UInt, closeClient: Bool)
        /// The response has started: close both connections.
        case closeClient
        case none
    }

    /// The upstream sent no head within `limits.upstream_timeout`.
    mutating func responseTimedOut() -> TimeoutAction {
        guard case .awaitingHead = response else { return .none }
        connection = .detached
        response = .answeredByGateway(status: 504)
        return .answer(status: 504, closeClient: !requestComplete)
    }

    /// The client's body sent nothing for `limits.body_timeout`.
    mutating func bodyTimedOut() -> TimeoutAction {
        guard !requestComplete else { return .none }
        return answerByGateway(status: 408)
    }

    /// The body passed the limit, or the client's input broke: the gateway answers (when it still can) with `status`.
    mutating func answerByGateway(status: UInt) -> TimeoutAction {
        connection = .detached
        switch response {
        case .awaitingHead:
            response = .answeredByGateway(status: status)
            return .answer(status: status, closeClient: true)
        case .streaming(let current, _):
            response = .ended(status: current)
            return .closeClient
        case .ended, .answeredByGateway, .switchingProtocols, .tunnel:
            return .none
        }
    }

    /// The client connection went away: whatever is attached is closed.
    mutating func clientClosed() -> Bool {
        let hadConnection = connection != .detached
        connection = .detached
        if case .awaitingHead = response { response = .answeredByGateway(status: 499) }
        if case .streaming(let status, _) = response { response = .ended(status: status) }
        return hadConnection
    }
}

extension HTTPClientRequestPart {
    var isEnd: Bool {
        if case .end = self { return true }
        return false
    }

    var isBody: Bool {
        if case .body = self { return true }
        return false
    }
}
