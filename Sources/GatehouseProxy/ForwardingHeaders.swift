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
    /// RFC 9110 §7.6.1 connection-specific headers, plus the de-facto ones.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// The browser session cookie, never passed upstream.
    public static let sessionCookieName = "gatehouse_session"

    /// What to do with a request's headers on the way upstream.
    public struct RequestPolicy: Sendable {
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
    public static func upstreamRequestHeaders(
        from incoming: HTTPHeaders, policy: RequestPolicy, connection: ClientConnectionInfo, requestID: String, chunked: Bool
    ) -> HTTPHeaders {
        let connectionTokens = connectionHeaderTokens(incoming)
        var headers = HTTPHeaders()
        headers.reserveCapacity(incoming.count + 4)
        var forwardedFor: [String] = []
        var forwardedProto: String?
        var forwardedHost: String?
        var host: String?
        for (name, value) in incoming {
            let lower = asciiLowercased(name)
            if hopByHop.contains(lower) || connectionTokens.contains(lower) { continue }
            if policy.reservedHeaderNames.contains(lower) { continue }
            switch lower {
            case "host":
                if host == nil { host = value }
                continue
            case "x-forwarded-for":
                if connection.peerIsTrusted { forwardedFor.append(value) }
                continue
            case "x-forwarded-proto":
                if connection.peerIsTrusted { forwardedProto = value }
                continue
            case "x-forwarded-host":
                if connection.peerIsTrusted { forwardedHost = value }
                continue
            case "forwarded", "x-real-ip":
                if !connection.peerIsTrusted { continue }
            case "x-request-id", "expect":
                continue
            case "authorization":
                if !policy.forwardAuthorization { continue }
            case "cookie":
                if let kept = removingSessionCookie(value) { headers.add(name: name, value: kept) }
                continue
            default:
                break
            }
            headers.add(name: name, value: value)
        }
        if let host { headers.add(name: "Host", value: host) }
        forwardedFor.append(connection.peerAddress)
        headers.add(name: "X-Forwarded-For", value: forwardedFor.joined(separator: ", "))
        headers.add(name: "X-Forwarded-Proto", value: forwardedProto ?? connection.scheme)
        if let forwardedHost = forwardedHost ?? host { headers.add(name: "X-Forwarded-Host", value: forwardedHost) }
        headers.add(name: "X-Request-Id", value: requestID)
        if chunked { headers.add(name: "Transfer-Encoding", value: "chunked") }
        if policy.keepUpgrade, let upgrade = incoming.first(name: "upgrade") {
            headers.add(name: "Connection", value: "upgrade")
            headers.add(name: "Upgrade", value: upgrade)
        }
        return headers
    }

    /// Drops hop-by-hop headers from an upstream response and adds `X-Request-Id`.
    public static func clientResponseHeaders(from incoming: HTTPHeaders, requestID: String, keepUpgrade: Bool) -> HTTPHeaders {
        let connectionTokens = connectionHeaderTokens(incoming)
        var headers = HTTPHeaders()
        headers.reserveCapacity(incoming.count + 1)
        for (name, value) in incoming {
            let lower = asciiLowercased(name)
            if lower == "x-request-id" { continue }
            if hopByHop.contains(lower) || connectionTokens.contains(lower) {
                // A chunked upstream body is re-framed by the encoder on the client side; the rest is per hop.
                continue
            }
            headers.add(name: name, value: value)
        }
        if keepUpgrade, let upgrade = incoming.first(name: "upgrade") {
            headers.add(name: "Connection", value: "upgrade")
            headers.add(name: "Upgrade", value: upgrade)
        }
        headers.add(name: "X-Request-Id", value: requestID)
        return headers
    }

    /// Lower-cased header names listed in `Connection` (RFC 9110 §7.6.1), which are hop-by-hop too.
    static func connectionHeaderTokens(_ headers: HTTPHeaders) -> Set<String> {
        var tokens: Set<String> = []
        for value in headers[canonicalForm: "connection"] {
            let token = asciiLowercased(String(value))
            if !token.isEmpty { tokens.insert(token) }
        }
        return tokens
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

/// Request ids for one connection: a random 64-bit prefix drawn once, then a counter, so ids stay unique
/// and unguessable across connections without a system call per request.
public struct RequestIDGenerator {
    private let prefix: String
    private var counter: UInt64

    public init() {
        var generator = SystemRandomNumberGenerator()
        self.init(generator.next(), generator.next())
    }

    init(_ prefix: UInt64, _ start: UInt64) {
        self.prefix = Self.hex(prefix)
        self.counter = start
    }

    /// 32 hex digits.
    public mutating func next() -> String {
        counter &+= 1
        return prefix + Self.hex(counter)
    }

    private static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            let digits: StaticString = "0123456789abcdef"
            for index in 0..<16 {
                let nibble = Int((value >> UInt64(60 - index * 4)) & 0xF)
                buffer[index] = digits.withUTF8Buffer { $0[nibble] }
            }
            return 16
        }
    }
}

/// ASCII-only lower-casing: header names are tokens, so Unicode case mapping is neither needed nor wanted.
@inline(__always)
public func asciiLowercased(_ text: String) -> String {
    var needsChange = false
    for byte in text.utf8 where byte >= 0x41 && byte <= 0x5A {
        needsChange = true
        break
    }
    guard needsChange else { return text }
    let count = text.utf8.count
    return String(unsafeUninitializedCapacity: count) { buffer in
        var index = 0
        for byte in text.utf8 {
            buffer[index] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            index += 1
        }
        return count
    }
}
