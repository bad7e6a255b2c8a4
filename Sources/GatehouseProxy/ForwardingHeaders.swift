import Foundation
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

extension ClientConnectionInfo {
    /// The client's address as the audit trail records it (§10): the peer's, or, from a trusted proxy, the last
    /// `X-Forwarded-For` entry it appended (the address it saw), when that parses as an IP address.
    public func clientAddress(_ headers: HTTPHeaders) -> String {
        guard peerIsTrusted else { return peerAddress }
        var last: Substring?
        for (name, value) in headers where KnownHeader(name: name) == .xForwardedFor {
            if let entry = value.split(separator: ",").last { last = entry }
        }
        guard let entry = last?.trimmingCharacters(in: .whitespaces), Self.isIPAddress(entry) else { return peerAddress }
        return entry
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

/// Header rewriting between client and upstream (§6.2, §6.4).
public enum ForwardingHeaders {
    /// The browser session cookie, never passed upstream.
    public static let sessionCookieName = "gatehouse_session"

    /// What to do with a request's headers on the way upstream.
    public struct RequestPolicy: Sendable {
        /// Lower-case names of headers only the gateway may set (the tenant's identity headers and
        /// `X-Identity-Assertion`); whatever the client sent under them, or under a look-alike, is dropped.
        public var reservedHeaderNames: [String]
        public var forwardAuthorization: Bool

        public init(reservedHeaderNames: [String], forwardAuthorization: Bool) {
            self.reservedHeaderNames = reservedHeaderNames
            self.forwardAuthorization = forwardAuthorization
        }
    }

    /// The client's headers that may reach the upstream: the header filter of §6.2, §6.4 and §6.9, and the only one.
    ///
    /// Dropped: hop-by-hop headers and those `Connection` names; framing (`Content-Length`, `Transfer-Encoding`),
    /// `Host`, `Expect`, `X-Request-Id` and the `X-Forwarded-*` trio, which ``UpstreamRequestPlan`` sets itself; the
    /// reserved names and any look-alike of a gateway-set name (`X_User_Id`: CGI, WSGI and Rack read `_` as `-`);
    /// headers about the client or the original URL unless the peer is a trusted proxy; `Authorization` unless the
    /// route forwards it; the session cookie.
    ///
    /// From a trusted proxy, the `X-Forwarded-For/-Proto/-Host` values it sent are collected in the same pass, for
    /// the plan to extend.
    ///
    /// `traceparent` is always dropped (the plan sets the request's ``TraceContext``), and `tracestate` unless
    /// `keepTraceState`: it belongs to the client's trace and goes only where that trace goes.
    public static func clientEndToEndHeaders(
        _ incoming: HTTPHeaders, facts: RequestHeaderFacts, policy: RequestPolicy, connection: ClientConnectionInfo, keepTraceState: Bool = false
    ) -> FilteredRequestHeaders {
        var result = FilteredRequestHeaders()
        var fields: [(String, String)] = []
        fields.reserveCapacity(incoming.count + 8 + policy.reservedHeaderNames.count)
        for (name, value) in incoming {
            let known = KnownHeader(name: name)
            if let known {
                if known.isHopByHop { continue }
                if known.isTrustedProxyOnly && !connection.peerIsTrusted { continue }
                switch known {
                case .xForwardedFor:
                    if connection.peerIsTrusted { result.forwardedFor = result.forwardedFor.map { $0 + ", " + value } ?? value }
                    continue
                case .xForwardedProto:
                    if connection.peerIsTrusted, result.forwardedProto == nil { result.forwardedProto = value }
                    continue
                case .xForwardedHost:
                    if connection.peerIsTrusted, result.forwardedHost == nil { result.forwardedHost = value }
                    continue
                case .host, .contentLength, .expect, .xRequestID, .traceparent:
                    // The gateway's to set (UpstreamRequestPlan), whatever `Connection` says.
                    continue
                case .tracestate:
                    if !keepTraceState { continue }
                case .authorization:
                    if !policy.forwardAuthorization { continue }
                case .cookie:
                    if facts.connectionValues.lists(name) { continue }
                    if let kept = removingSessionCookie(value) { fields.append((name, kept)) }
                    continue
                default:
                    break
                }
            } else if isLookAlike(name, policy: policy) {
                continue
            }
            // Checked last, for the headers that would otherwise pass (tenant files cannot reserve Host, Cookie or the
            // framing headers, which are dropped or rewritten above anyway).
            if policy.reservedHeaderNames.contains(where: { name.equalsIgnoringASCIICase($0) }) { continue }
            if facts.connectionValues.lists(name) { continue }
            fields.append((name, value))
        }
        result.fields = fields
        return result
    }

    /// Names the gateway sets on upstream requests, as `_`-spellings would be read by CGI-style servers.
    static let gatewaySetNames = [
        "host", "content-length", "transfer-encoding", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        "x-request-id", "x-real-ip", "x-forwarded-prefix", "x-forwarded-port", "x-original-url", "x-rewrite-url",
        "true-client-ip", "x-client-ip", "traceparent", "tracestate",
    ]

    /// Whether `name` has a `_` and equals a reserved or gateway-set name once `_` is read as `-` (§6.9).
    static func isLookAlike(_ name: String, policy: RequestPolicy) -> Bool {
        name.withUTF8Buffer { bytes in
            guard bytes.contains(UInt8(ascii: "_")) else { return false }
            func matches(_ candidate: String) -> Bool {
                candidate.withUTF8Buffer { candidate in
                    guard candidate.count == bytes.count else { return false }
                    for index in 0..<bytes.count {
                        var byte = bytes[index]
                        if byte == UInt8(ascii: "_") { byte = UInt8(ascii: "-") }
                        if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
                        var other = candidate[index]
                        if other >= 0x41 && other <= 0x5A { other |= 0x20 }
                        if byte != other { return false }
                    }
                    return true
                }
            }
            return policy.reservedHeaderNames.contains(where: matches) || gatewaySetNames.contains(where: matches)
        }
    }

    /// The first value of a `known` header.
    static func first(_ headers: HTTPHeaders, _ known: KnownHeader) -> String? {
        for (name, value) in headers where KnownHeader(name: name) == known { return value }
        return nil
    }

    /// Drops hop-by-hop headers from an upstream response and adds `X-Request-Id`.
    ///
    /// The kept fields are gathered in an array and become `HTTPHeaders` once: `HTTPHeaders.add` checks every name
    /// for ASCII and for `Connection`, and these names came from the upstream's decoder, which took only token
    /// characters. `ForwardingHeadersEquivalenceTests` checks the result against adding them one by one.
    public static func clientResponseHeaders(from incoming: HTTPHeaders, requestID: String, keepUpgrade: Bool) -> HTTPHeaders {
        let connectionValues = connectionValues(incoming)
        var headers: [(String, String)] = []
        headers.reserveCapacity(incoming.count + 3)
        var upgrade: String?
        for (name, value) in incoming {
            let known = KnownHeader(name: name)
            if known == .upgrade, upgrade == nil { upgrade = value }
            // A chunked upstream body is re-framed by the encoder on the client side; the rest is per hop.
            if known?.isHopByHop == true || known == .xRequestID { continue }
            if connectionValues.lists(name) { continue }
            if known == .setCookie, setsGatewayCookie(value) { continue }
            headers.append((name, value))
        }
        if keepUpgrade, let upgrade {
            headers.append(("Connection", "upgrade"))
            headers.append(("Upgrade", upgrade))
        }
        headers.append(("X-Request-Id", requestID))
        return HTTPHeaders(headers)
    }

    /// Whether an upstream's 101 answers the WebSocket handshake the gateway forwarded (§6.7): `Upgrade: websocket`
    /// and `Connection: upgrade`. Any other switch is refused with 502, never tunnelled.
    public static func answersWebSocketUpgrade(_ headers: HTTPHeaders) -> Bool {
        guard let upgrade = first(headers, .upgrade), upgrade.listsToken("websocket") else { return false }
        return connectionValues(headers).lists("upgrade")
    }

    /// The values of a message's `Connection` headers; the headers they name are hop-by-hop too (RFC 9110 §7.6.1).
    static func connectionValues(_ headers: HTTPHeaders) -> ConnectionHeaderValues {
        var values = ConnectionHeaderValues()
        for (name, value) in headers where KnownHeader(name: name) == .connection { values.append(value) }
        return values
    }

    /// The cookies only the gateway sets (§6.5): an upstream's `Set-Cookie` for them never reaches the client, so a
    /// backend cannot plant or toss a session (`Domain=` on a parent domain included).
    public static let gatewayCookieNames = [sessionCookieName, "gatehouse_csrf"]

    /// Whether a `Set-Cookie` value sets one of ``gatewayCookieNames`` (compared ignoring ASCII case and blanks, as
    /// lenient cookie jars do).
    static func setsGatewayCookie(_ value: String) -> Bool {
        var name = Substring(value).prefix { $0 != "=" && $0 != ";" }
        while name.first == " " || name.first == "\t" { name = name.dropFirst() }
        while name.last == " " || name.last == "\t" { name = name.dropLast() }
        let text = String(name)
        return gatewayCookieNames.contains { text.equalsIgnoringASCIICase($0) }
    }

    /// `a=1; gatehouse_session=x; b=2` becomes `a=1; b=2`; nil when nothing is left.
    static func removingSessionCookie(_ value: String) -> String? {
        // Every session-cookie request passes here: bytes, unless the header is not plain ASCII.
        asciiRemovingSessionCookie(value) ?? characterRemovingSessionCookie(value)
    }

    /// ``removingSessionCookie(_:)`` by `Character`: the reference, and the path for a value that is not plain ASCII.
    static func characterRemovingSessionCookie(_ value: String) -> String? {
        guard value.contains(sessionCookieName) else { return value }
        let kept = value.split(separator: ";").map { $0.drop(while: { $0 == " " || $0 == "\t" }) }.filter { pair in
            var name = pair.prefix(while: { $0 != "=" })
            while name.last == " " || name.last == "\t" { name = name.dropLast() }
            return name != sessionCookieName
        }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// ``characterRemovingSessionCookie(_:)`` on the UTF-8 bytes, for a value of printable ASCII and tabs (where
    /// each byte is a `Character`, so the two agree: `ForwardingHeadersEquivalenceTests` checks them on generated
    /// values). `.some(nil)` when nothing is left; nil when the value is not plain ASCII.
    static func asciiRemovingSessionCookie(_ original: String) -> String?? {
        var value = original
        return value.withUTF8 { bytes -> String?? in
            guard bytes.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 < 0x7F) }) else { return nil }
            let name = Array(sessionCookieName.utf8)
            func nameAt(_ index: Int) -> Bool {
                index + name.count <= bytes.count && (0..<name.count).allSatisfy { bytes[index + $0] == name[$0] }
            }
            // As the reference: a value that does not mention the cookie at all goes on exactly as it came.
            guard (0..<bytes.count).contains(where: nameAt) else { return .some(original) }
            var kept: [UInt8] = []
            kept.reserveCapacity(bytes.count)
            var keptPairs = 0
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: ";") { end += 1 }
                defer { start = end + 1 }
                // `split` drops empty pieces, not blank ones: a blank piece stays (as an empty pair) in the reference.
                guard start < end else { continue }
                var first = start
                while first < end, bytes[first] == UInt8(ascii: " ") || bytes[first] == UInt8(ascii: "\t") { first += 1 }
                var nameEnd = first
                while nameEnd < end, bytes[nameEnd] != UInt8(ascii: "=") { nameEnd += 1 }
                while nameEnd > first, bytes[nameEnd - 1] == UInt8(ascii: " ") || bytes[nameEnd - 1] == UInt8(ascii: "\t") { nameEnd -= 1 }
                if nameEnd - first == name.count, nameAt(first) { continue }
                if keptPairs > 0 { kept.append(contentsOf: [UInt8(ascii: ";"), UInt8(ascii: " ")]) }
                kept.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[first..<end]))
                keptPairs += 1
            }
            return .some(keptPairs == 0 ? nil : String(decoding: kept, as: UTF8.self))
        }
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

/// What the header filter lets through, and what a trusted proxy said about the client (nil from anyone else).
public struct FilteredRequestHeaders: Sendable {
    /// The client's fields that pass, in order; ``UpstreamRequestPlan`` adds the gateway's and makes `HTTPHeaders`
    /// of them once (the names came from the client's decoder, which took only token characters).
    public var fields: [(String, String)] = []
    /// Every `X-Forwarded-For` value, joined with `, `.
    public var forwardedFor: String?
    public var forwardedProto: String?
    public var forwardedHost: String?
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
