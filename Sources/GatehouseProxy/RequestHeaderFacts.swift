import NIOHTTP1

/// What routing, policy and forwarding need to know about a request's headers, gathered in one pass over them
/// instead of one scan per question.
public struct RequestHeaderFacts: Sendable {
    /// How many `Host` headers there are; exactly one is valid.
    public private(set) var hostCount = 0
    /// The first `Host` value.
    public private(set) var host: String?
    /// How many `Authorization` headers there are; more than one is refused.
    public private(set) var authorizationCount = 0
    /// The first `Authorization` value.
    public private(set) var authorization: String?
    /// The first `Content-Length` value, as sent.
    private var contentLengthValue: String?
    /// How many `Content-Length` headers there are; more than one is ambiguous framing (§6.6).
    public private(set) var contentLengthCount = 0
    /// How many `Transfer-Encoding` headers there are; more than one is ambiguous framing (§6.6).
    public private(set) var transferEncodingCount = 0
    /// The first `Transfer-Encoding` value, as sent.
    public private(set) var transferEncoding: String?
    /// The first `Expect` value.
    public private(set) var expect: String?
    /// The first `X-Request-Id` value, as sent (not yet checked for sanity).
    public private(set) var requestID: String?
    /// The first `Upgrade` value.
    public private(set) var upgrade: String?
    /// Every `Connection` value: the headers they list are hop-by-hop too (RFC 9110 §7.6.1).
    public private(set) var connectionValues = ConnectionHeaderValues()
    /// Every `Cookie` value (HTTP/2 sends one per cookie).
    public private(set) var cookies: [String] = []
    /// The first `Origin` value.
    public private(set) var origin: String?
    /// The first `Referer` value.
    public private(set) var referer: String?
    /// The first `Accept` value; only read when a refusal might become a login redirect.
    private var accept: String?
    /// How many `traceparent` headers there are; only exactly one can be valid.
    public private(set) var traceparentCount = 0
    /// The first `traceparent` value, as sent (``TraceContext`` checks it).
    public private(set) var traceparent: String?

    public init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            switch KnownHeader(name: name) {
            case .host:
                hostCount += 1
                if host == nil { host = value }
            case .authorization:
                authorizationCount += 1
                if authorization == nil { authorization = value }
            case .contentLength:
                contentLengthCount += 1
                if contentLengthValue == nil { contentLengthValue = value }
            case .expect:
                if expect == nil { expect = value }
            case .xRequestID:
                if requestID == nil { requestID = value }
            case .upgrade:
                if upgrade == nil { upgrade = value }
            case .connection:
                connectionValues.append(value)
            case .cookie:
                cookies.append(value)
            case .origin:
                if origin == nil { origin = value }
            case .referer:
                if referer == nil { referer = value }
            case .accept:
                if accept == nil { accept = value }
            case .traceparent:
                traceparentCount += 1
                if traceparent == nil { traceparent = value }
            case .transferEncoding:
                transferEncodingCount += 1
                if transferEncoding == nil { transferEncoding = value }
            default:
                break
            }
        }
    }

    /// The declared body length; nil when absent or not a number.
    public var contentLength: Int? { contentLengthValue.flatMap(RequestFraming.parseLength) }

    /// The first `Content-Length` value as sent, for ``RequestFraming``.
    var contentLengthText: String? { contentLengthValue }

    /// Whether any `Transfer-Encoding` header is present.
    public var hasTransferEncoding: Bool { transferEncodingCount > 0 }

    /// Whether the request asks to switch protocols (`Upgrade` plus `Connection: upgrade`), as a WebSocket handshake does.
    public var requestsUpgrade: Bool {
        upgrade != nil && connectionValues.lists("upgrade")
    }

    /// Whether the request is a WebSocket handshake (RFC 6455 §4.1): `Upgrade: websocket` and `Connection: upgrade`.
    /// The only upgrade the gateway lets through (§6.7).
    public var requestsWebSocket: Bool {
        requestsUpgrade && (upgrade?.listsToken("websocket") ?? false)
    }

    /// Whether the client's HTTP/1 decoder may have stopped parsing after this request: it asked for any upgrade.
    /// Unless a tunnel starts, such a connection cannot carry another request and closes after the response.
    public var endsHTTPParsing: Bool {
        upgrade != nil || connectionValues.lists("upgrade")
    }

    /// Whether `Accept` names `text/html`: a browser navigating, not an API client. Parsed on demand, so requests
    /// that are let through never pay for it.
    public var acceptsHTML: Bool { accept?.listsMediaType("text/html") ?? false }

    /// Whether `Expect` is `100-continue`, the only expectation the gateway meets.
    public var expectsContinue: Bool { expect?.equalsIgnoringASCIICase("100-continue") ?? false }
}


extension String {
    /// Whether this `Accept` value lists `mediaType` (parameters such as `;q=0.9` ignored).
    func listsMediaType(_ mediaType: String) -> Bool {
        split(separator: ",").contains { element in
            var type = element.prefix { $0 != ";" }
            while type.first == " " || type.first == "\t" { type = type.dropFirst() }
            while type.last == " " || type.last == "\t" { type = type.dropLast() }
            return String(type).equalsIgnoringASCIICase(mediaType)
        }
    }
}
