/// Header names the gateway treats specially, recognised from the name's bytes without allocating: this runs for
/// every header of every request and response, so it must not lower-case into a new string or hash one.
public enum KnownHeader: String, CaseIterable, Sendable {
    // Hop-by-hop (RFC 9110 §7.6.1, plus the de-facto ones).
    case connection
    case keepAlive = "keep-alive"
    case proxyConnection = "proxy-connection"
    case te
    case trailer
    case transferEncoding = "transfer-encoding"
    case upgrade
    case proxyAuthenticate = "proxy-authenticate"
    case proxyAuthorization = "proxy-authorization"
    /// Only meaningful with `Upgrade: h2c`, which the gateway never passes on (§6.7).
    case http2Settings = "http2-settings"
    // End-to-end headers the gateway reads or rewrites.
    case host
    case authorization
    case cookie
    case contentLength = "content-length"
    case expect
    case forwarded
    case xForwardedFor = "x-forwarded-for"
    case xForwardedHost = "x-forwarded-host"
    case xForwardedProto = "x-forwarded-proto"
    case xRealIP = "x-real-ip"
    case xRequestID = "x-request-id"
    // Headers some upstreams believe about the client or the original URL (§6.9): from anyone but a trusted proxy
    // they are dropped.
    case xOriginalURL = "x-original-url"
    case xRewriteURL = "x-rewrite-url"
    case xForwardedPrefix = "x-forwarded-prefix"
    case xForwardedPort = "x-forwarded-port"
    case trueClientIP = "true-client-ip"
    case xClientIP = "x-client-ip"
    /// On responses: a cookie the upstream sets (§6.5 drops the gateway's own).
    case setCookie = "set-cookie"
    // Read for browser sessions (§7): which site sent an unsafe request, and whether a browser wants a page.
    case origin
    case referer
    case accept
    // W3C Trace Context: the gateway decides what goes upstream (``TraceContext``).
    case traceparent
    case tracestate

    /// Whether the header describes one hop only and is never forwarded.
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .transferEncoding, .upgrade, .proxyAuthenticate,
            .proxyAuthorization, .http2Settings:
            return true
        default:
            return false
        }
    }

    /// Whether the header says who the client is or what it asked for, believed only from a trusted proxy (§6.9).
    public var isTrustedProxyOnly: Bool {
        switch self {
        case .forwarded, .xRealIP, .xOriginalURL, .xRewriteURL, .xForwardedPrefix, .xForwardedPort, .trueClientIP, .xClientIP:
            return true
        default:
            return false
        }
    }

    /// The known header a name denotes, compared ASCII case-insensitively; nil for any other name.
    @inlinable
    public init?(name: String) {
        // The length (and for a few lengths the first letter) leaves one candidate; one comparison settles it.
        let first = (name.utf8.first ?? 0) | 0x20
        let candidate: KnownHeader?
        switch name.utf8.count {
        case 2: candidate = .te
        case 4: candidate = .host
        case 6:
            switch first {
            case UInt8(ascii: "c"): candidate = .cookie
            case UInt8(ascii: "o"): candidate = .origin
            case UInt8(ascii: "a"): candidate = .accept
            default: candidate = .expect
            }
        case 7:
            switch first {
            case UInt8(ascii: "t"): candidate = .trailer
            case UInt8(ascii: "r"): candidate = .referer
            default: candidate = .upgrade
            }
        case 9: candidate = first == UInt8(ascii: "f") ? .forwarded : .xRealIP
        case 10:
            switch first {
            case UInt8(ascii: "c"): candidate = .connection
            case UInt8(ascii: "s"): candidate = .setCookie
            case UInt8(ascii: "t"): candidate = .tracestate
            default: candidate = .keepAlive
            }
        case 11: candidate = first == UInt8(ascii: "t") ? .traceparent : .xClientIP
        case 12: candidate = .xRequestID
        case 13: candidate = first == UInt8(ascii: "x") ? .xRewriteURL : .authorization
        case 14:
            switch first {
            case UInt8(ascii: "x"): candidate = .xOriginalURL
            case UInt8(ascii: "t"): candidate = .trueClientIP
            case UInt8(ascii: "h"): candidate = .http2Settings
            default: candidate = .contentLength
            }
        case 15: candidate = .xForwardedFor
        case 16:
            if first == UInt8(ascii: "p") {
                candidate = .proxyConnection
            } else {
                // x-forwarded-host and x-forwarded-port differ from their 13th byte on.
                let thirteenth = name.utf8[name.utf8.index(name.utf8.startIndex, offsetBy: 12)] | 0x20
                candidate = thirteenth == UInt8(ascii: "h") ? .xForwardedHost : .xForwardedPort
            }
        case 17: candidate = first == UInt8(ascii: "t") ? .transferEncoding : .xForwardedProto
        case 18: candidate = first == UInt8(ascii: "x") ? .xForwardedPrefix : .proxyAuthenticate
        case 19: candidate = .proxyAuthorization
        default: candidate = nil
        }
        guard let candidate, name.equalsIgnoringASCIICase(candidate.rawValue) else { return nil }
        self = candidate
    }
}

/// Whether two byte buffers spell the same text ignoring ASCII case. Header names and `Connection` tokens are
/// ASCII tokens, so Unicode case mapping is neither needed nor wanted.
@inlinable
func asciiCaseInsensitiveEquals(_ first: UnsafeBufferPointer<UInt8>, _ second: UnsafeBufferPointer<UInt8>) -> Bool {
    guard first.count == second.count else { return false }
    for index in 0..<first.count {
        let one = first[index]
        let other = second[index]
        if one == other { continue }
        let foldedOne = one >= 0x41 && one <= 0x5A ? one | 0x20 : one
        let foldedOther = other >= 0x41 && other <= 0x5A ? other | 0x20 : other
        if foldedOne != foldedOther { return false }
    }
    return true
}

extension String {
    /// Whether this string equals `other` ignoring ASCII case, without allocating (and without copying either
    /// string, except a bridged one).
    @inlinable
    public func equalsIgnoringASCIICase(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return withUTF8Buffer { mine in other.withUTF8Buffer { asciiCaseInsensitiveEquals(mine, $0) } }
    }

    /// Whether this string, taken as a comma-separated header value, lists `token`, ignoring ASCII case and the
    /// blanks around each element: `Connection: keep-alive, Upgrade` lists `upgrade`.
    @inlinable
    public func listsToken(_ token: String) -> Bool {
        withUTF8Buffer { value in
            token.withUTF8Buffer { token in
                var start = 0
                while start <= value.count {
                    var end = start
                    while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
                    var first = start
                    var last = end
                    while first < last, value[first] == UInt8(ascii: " ") || value[first] == UInt8(ascii: "\t") { first += 1 }
                    while last > first, value[last - 1] == UInt8(ascii: " ") || value[last - 1] == UInt8(ascii: "\t") { last -= 1 }
                    if asciiCaseInsensitiveEquals(UnsafeBufferPointer(rebasing: value[first..<last]), token) { return true }
                    start = end + 1
                }
                return false
            }
        }
    }

    /// Runs `body` on the string's UTF-8 bytes: in place for a native string, from a copy otherwise.
    @inlinable
    func withUTF8Buffer<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(utf8).withUnsafeBufferPointer(body)
    }
}
