import NIOHTTP1

/// The request the upstream will see, decided in one place (§6.4, §6.6, §6.7, §6.9): method, the normalized path,
/// the gateway's own framing, `Host`, the forwarding and identity headers the gateway sets, and the client's
/// end-to-end headers minus hop-by-hop ones and minus every header the gateway owns.
///
/// The order of assembly is the safety property: the client's headers are filtered first, and the headers the
/// gateway sets (framing above all) are added after, so nothing the client sends, `Connection` included, can remove
/// or replace them.
public struct UpstreamRequestPlan: Sendable {
    public var method: HTTPMethod
    /// Path (after `strip_prefix`, with the upstream's base path) and the query as the client sent it.
    public var uri: String
    public var framing: RequestFraming
    /// Whether this is a WebSocket handshake the gateway lets through (§6.7); every other upgrade is removed.
    public var isWebSocketUpgrade: Bool
    /// `X-User-*` and `X-Identity-Assertion`, from the policy decision.
    public var identityHeaders: [(String, String)]

    public init(method: HTTPMethod, uri: String, framing: RequestFraming, isWebSocketUpgrade: Bool, identityHeaders: [(String, String)]) {
        self.method = method
        self.uri = uri
        self.framing = framing
        self.isWebSocketUpgrade = isWebSocketUpgrade
        self.identityHeaders = identityHeaders
    }

    /// The request head to send upstream.
    ///
    /// - Parameters:
    ///   - incoming: the client's headers.
    ///   - facts: `RequestHeaderFacts(incoming)`, which the caller already gathered.
    ///   - trace: the request's trace context, sent as `traceparent` (with the client's `tracestate` when it is the
    ///     client's own); nil sends none.
    public func makeHead(
        from incoming: HTTPHeaders, facts: RequestHeaderFacts, policy: ForwardingHeaders.RequestPolicy, connection: ClientConnectionInfo,
        requestID: String, trace: TraceContext? = nil
    ) -> HTTPRequestHead {
        let filtered = ForwardingHeaders.clientEndToEndHeaders(
            incoming, facts: facts, policy: policy, connection: connection, keepTraceState: trace?.isFromClient ?? false)
        var headers = filtered.fields
        // Everything below is the gateway's; the filter above dropped whatever the client sent under these names.
        // The names are literals, and the tenant's identity header names were checked when its file was read.
        if let host = facts.host { headers.append(("Host", host)) }
        headers.append(("X-Forwarded-For", filtered.forwardedFor.map { $0 + ", " + connection.peerAddress } ?? connection.peerAddress))
        headers.append(("X-Forwarded-Proto", filtered.forwardedProto ?? connection.scheme))
        if let forwardedHost = filtered.forwardedHost ?? facts.host { headers.append(("X-Forwarded-Host", forwardedHost)) }
        headers.append(("X-Request-Id", requestID))
        if let trace { headers.append(("traceparent", trace.traceparent)) }
        headers.append(contentsOf: identityHeaders)
        if isWebSocketUpgrade {
            headers.append(("Connection", "upgrade"))
            headers.append(("Upgrade", "websocket"))
        }
        switch framing {
        case .none:
            break
        case .contentLength(let length):
            headers.append(("Content-Length", String(length)))
        case .chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        }
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    /// The framing of an HTTP/2 request that came without `Content-Length` (the stream delimits its body), decided
    /// once its first part is known: no body when that part is the end, chunked otherwise. The framing header is
    /// added here, beside the others, so this file stays the only one that writes framing.
    public static func frameLate(_ head: inout HTTPRequestHead, firstPartIsEnd: Bool) -> RequestFraming {
        guard !firstPartIsEnd else { return .none }
        head.headers.add(name: "Transfer-Encoding", value: "chunked")
        return .chunked
    }
}
