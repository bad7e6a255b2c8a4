import NIOHTTP1

/// Who is on the other end of the client connection, worked out once per connection.
public struct ClientConnectionInfo: Sendable {
    /// The peer's IP address as text (`127.0.0.1`, `::1`).
    public var peerAddress: String
    /// Whether the peer is in `trusted_proxies`, so its `X-Forwarded-*` headers are believed.
    public var peerIsTrusted: Bool
    /// `http` or `https`: how the client reached the gateway.
    public var scheme: String

    public init(peerAddress: String, peerIsTrusted: Bool, scheme: String) {
        self.peerAddress = peerAddress
        self.peerIsTrusted = peerIsTrusted
        self.scheme = scheme
    }
}

/// Header rewriting between client and upstream (§6.2, §6.4).
public enum ForwardingHeaders {
    /// The browser session cookie, never passed upstream.
    public static let sessionCookieName = "gatehouse_session"

    /// What to do with a request's headers on the way upstream.
    public struct RequestPolicy: Sendable {
        /// Names (any case) of headers only the gateway may set; whatever the client sent under them is dropped.
        public var reservedHeaderNames: [String]
        public var forwardAuthorization: Bool
        /// Keep `Connection: upgrade` and `Upgrade` for a WebSocket handshake.
        public var keepUpgrade: Bool

        public init(reservedHeaderNames: [String], forwardAuthorization: Bool, keepUpgrade: Bool) {
            self.reservedHeaderNames = reservedHeaderNames
            self.forwardAuthorization = forwardAuthorization
            self.keepUpgrade = keepUpgrade
        }
    }

    /// Builds the upstream request's headers from the client's. Identity headers are injected by the caller
    /// afterwards, so whatever the client sent under those names never survives.
    ///
    /// - Parameter facts: `RequestHeaderFacts(incoming)`, which the caller has already gathered.
    public static func upstreamRequestHeaders(
        from incoming: HTTPHeaders, facts: RequestHeaderFacts, policy: RequestPolicy, connection: ClientConnectionInfo,
        requestID: String
    ) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(incoming.count + 4)
        var forwardedFor: String?
        var forwardedProto: String?
        var forwardedHost: String?
        for (name, value) in incoming {
            let known = KnownHeader(name: name)
            if known?.isHopByHop == true { continue }
            if known != .host, facts.connectionValues.lists(name) { continue }
            if policy.reservedHeaderNames.contains(where: { name.equalsIgnoringASCIICase($0) }) { continue }
            switch known {
            case .host, .xRequestID, .expect:
                // Host is added once below; the other two are the gateway's to set.
                continue
            case .xForwardedFor:
                if connection.peerIsTrusted { forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value }
                continue
            case .xForwardedProto:
                if connection.peerIsTrusted { forwardedProto = value }
                continue
            case .xForwardedHost:
                if connection.peerIsTrusted { forwardedHost = value }
                continue
            case .forwarded, .xRealIP:
                if !connection.peerIsTrusted { continue }
            case .authorization:
                if !policy.forwardAuthorization { continue }
            case .cookie:
                if let kept = removingSessionCookie(value) { headers.add(name: name, value: kept) }
                continue
            default:
                break
            }
            headers.add(name: name, value: value)
        }
        if let host = facts.host { headers.add(name: "Host", value: host) }
        headers.add(name: "X-Forwarded-For", value: forwardedFor.map { $0 + ", " + connection.peerAddress } ?? connection.peerAddress)
        headers.add(name: "X-Forwarded-Proto", value: forwardedProto ?? connection.scheme)
        if let forwardedHost = forwardedHost ?? facts.host { headers.add(name: "X-Forwarded-Host", value: forwardedHost) }
        headers.add(name: "X-Request-Id", value: requestID)
        if facts.isChunked { headers.add(name: "Transfer-Encoding", value: "chunked") }
        if policy.keepUpgrade, let upgrade = facts.upgrade {
            headers.add(name: "Connection", value: "upgrade")
            headers.add(name: "Upgrade", value: upgrade)
        }
        return headers
    }

    /// Drops hop-by-hop headers from an upstream response and adds `X-Request-Id`.
    public static func clientResponseHeaders(from incoming: HTTPHeaders, requestID: String, keepUpgrade: Bool) -> HTTPHeaders {
        let connectionValues = connectionValues(incoming)
        var headers = HTTPHeaders()
        headers.reserveCapacity(incoming.count + 1)
        var upgrade: String?
        for (name, value) in incoming {
            let known = KnownHeader(name: name)
            if known == .upgrade, upgrade == nil { upgrade = value }
            // A chunked upstream body is re-framed by the encoder on the client side; the rest is per hop.
            if known?.isHopByHop == true || known == .xRequestID { continue }
            if connectionValues.lists(name) { continue }
            headers.add(name: name, value: value)
        }
        if keepUpgrade, let upgrade {
            headers.add(name: "Connection", value: "upgrade")
            headers.add(name: "Upgrade", value: upgrade)
        }
        headers.add(name: "X-Request-Id", value: requestID)
        return headers
    }

    /// The values of a message's `Connection` headers; the headers they name are hop-by-hop too (RFC 9110 §7.6.1).
    static func connectionValues(_ headers: HTTPHeaders) -> ConnectionHeaderValues {
        var values = ConnectionHeaderValues()
        for (name, value) in headers where KnownHeader(name: name) == .connection { values.append(value) }
        return values
    }

    /// `a=1; gatehouse_session=x; b=2` becomes `a=1; b=2`; nil when nothing is left.
    static func removingSessionCookie(_ value: String) -> String? {
        guard value.contains(sessionCookieName) else { return value }
        let kept = value.split(separator: ";").map { $0.drop(while: { $0 == " " }) }.filter { pair in
            let name = pair.prefix(while: { $0 != "=" })
            return name != sessionCookieName
        }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// Whether a client-sent `X-Request-Id` is sane enough to pass on and log: 1 to 128 characters from a
    /// conservative set, so it can never carry a header injection or a log-line forgery.
    public static func isSaneRequestID(_ value: String) -> Bool {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= 128 else { return false }
        return utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
                || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "@")
        }
    }

}

/// The values of a message's `Connection` headers, without an array for the usual one value (or none).
public struct ConnectionHeaderValues: Sendable {
    private var first: String?
    private var more: [String] = []

    public init() {}

    public mutating func append(_ value: String) {
        if first == nil { first = value } else { more.append(value) }
    }

    /// Whether any of the values lists `token` (ASCII case-insensitively): `Connection: keep-alive, Upgrade`
    /// lists `upgrade`.
    public func lists(_ token: String) -> Bool {
        guard let first else { return false }
        return first.listsToken(token) || more.contains { $0.listsToken(token) }
    }
}

/// Request ids for one connection: a random 64-bit prefix drawn once, then a counter, so ids stay unique
/// and unguessable across connections without a system call per request.
public struct RequestIDGenerator {
    private let prefix: UInt64
    private var counter: UInt64

    public init() {
        var generator = SystemRandomNumberGenerator()
        self.init(generator.next(), generator.next())
    }

    init(_ prefix: UInt64, _ start: UInt64) {
        self.prefix = prefix
        self.counter = start
    }

    /// 32 hex digits, written in one go: the prefix's 16, then the counter's.
    public mutating func next() -> String {
        counter &+= 1
        let (prefix, counter) = (self.prefix, self.counter)
        return String(unsafeUninitializedCapacity: 32) { buffer in
            let digits: StaticString = "0123456789abcdef"
            digits.withUTF8Buffer { digits in
                for index in 0..<16 {
                    let shift = UInt64(60 - index * 4)
                    buffer[index] = digits[Int((prefix >> shift) & 0xF)]
                    buffer[16 + index] = digits[Int((counter >> shift) & 0xF)]
                }
            }
            return 32
        }
    }
}
