import GatehouseProxy
import NIOCore
import NIOHTTP1

/// One request on its way through the gateway.
final class ProxyExchange {
    let clientHead: HTTPRequestHead
    /// The head ``UpstreamRequestPlan`` built; over HTTP/2 without a length, its framing header is added once known.
    private(set) var upstreamHead: HTTPRequestHead
    /// How the body the upstream receives is delimited (§6.6).
    private(set) var framing: RequestFraming
    /// HTTP/2 without `Content-Length`: the head waits for the first part, which tells whether there is a body.
    private var awaitsFraming: Bool
    /// The client asked for an upgrade (WebSocket or not): neither connection is reused after a non-101 answer.
    let endsParsing: Bool
    let tenant: Tenant
    let route: Route
    let path: String
    let requestID: String
    /// Forwarded upstream as `traceparent`; its trace id is in the access-log line.
    let trace: TraceContext
    let start: NIODeadline
    let isUpgrade: Bool
    var connection: UpstreamConnection?
    /// Parts received before the upstream connection was ready.
    private var buffered: [HTTPClientRequestPart] = []
    private var headSent = false
    var requestBodyBytes = 0
    var sentBody = false
    var requestComplete = false
    var responseStatus: UInt?
    var responseComplete = false
    var upstreamKeepAlive = true
    var retried = false
    var logged = false
    var upstreamStart: NIODeadline?
    var upstreamEnd: NIODeadline?
    var bytesSent = 0

    init(
        clientHead: HTTPRequestHead, upstreamHead: HTTPRequestHead, framing: RequestFraming, awaitsFraming: Bool, tenant: Tenant, route: Route,
        path: String, requestID: String, trace: TraceContext, start: NIODeadline, isUpgrade: Bool, endsParsing: Bool
    ) {
        self.clientHead = clientHead
        self.upstreamHead = upstreamHead
        self.framing = framing
        self.awaitsFraming = awaitsFraming
        self.endsParsing = endsParsing
        self.tenant = tenant
        self.route = route
        self.path = path
        self.requestID = requestID
        self.trace = trace
        self.start = start
        self.isUpgrade = isUpgrade
    }

    var isIdempotent: Bool {
        switch clientHead.method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: return true
        default: return false
        }
    }

    /// Writes a request part upstream, or keeps it until the connection is ready.
    func forward(_ part: HTTPClientRequestPart) {
        guard let connection, headSent else {
            buffered.append(part)
            if awaitsFraming, connection != nil { sendBuffered() }
            return
        }
        if case .body = part { sentBody = true }
        connection.write(part)
    }

    /// Sends the head and everything buffered to a freshly attached connection.
    func sendBuffered() {
        guard let connection else { return }
        if awaitsFraming {
            guard let first = buffered.first else { return }
            let firstPartIsEnd = if case .end = first { true } else { false }
            framing = UpstreamRequestPlan.frameLate(&upstreamHead, firstPartIsEnd: firstPartIsEnd)
            awaitsFraming = false
        }
        connection.write(.head(upstreamHead))
        headSent = true
        for part in buffered {
            if case .body = part { sentBody = true }
            connection.write(part)
        }
        buffered.removeAll()
    }

    /// Prepares to send the request again on another connection (only when none of its body has left).
    func resetForRetry() {
        headSent = false
        if requestComplete { buffered = [.end(nil)] }
    }
}
