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

    /// Whether the header describes one hop only and is never forwarded.
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .transferEncoding, .upgrade, .proxyAuthenticate,
            .proxyAuthorization:
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
        case 6: candidate = first == UInt8(ascii: "c") ? .cookie : .expect
        case 7: candidate = first == UInt8(ascii: "t") ? .trailer : .upgrade
        case 9: candidate = first == UInt8(ascii: "f") ? .forwarded : .xRealIP
        case 10: candidate = first == UInt8(ascii: "c") ? .connection : .keepAlive
        case 12: candidate = .xRequestID
        case 13: candidate = .authorization
        case 14: candidate = .contentLength
        case 15: candidate = .xForwardedFor
        case 16: candidate = first == UInt8(ascii: "p") ? .proxyConnection : .xForwardedHost
        case 17: candidate = first == UInt8(ascii: "t") ? .transferEncoding : .xForwardedProto
        case 18: candidate = .proxyAuthenticate
        case 19: candidate = .proxyAuthorization
        default: candidate = nil
        }
        guard let candidate, name.equalsIgnoringASCIICase(candidate.rawValue) else { return nil }
        self = candidate
    }
}

/// Whether two byte sequences spell the same text ignoring ASCII case, without allocating. Header names and
/// `Connection` tokens are ASCII tokens, so Unicode case mapping is neither needed nor wanted.
@inlinable
func asciiCaseInsensitiveEquals<A: Collection, B: Collection>(_ first: A, _ second: B) -> Bool
where A.Element == UInt8, B.Element == UInt8 {
    guard first.count == second.count else { return false }
    for (one, other) in zip(first, second) where one != other {
        let foldedOne = one >= 0x41 && one <= 0x5A ? one | 0x20 : one
        let foldedOther = other >= 0x41 && other <= 0x5A ? other | 0x20 : other
        if foldedOne != foldedOther { return false }
    }
    return true
}

extension String {
    /// Whether this string equals `other` ignoring ASCII case, without allocating.
    @inlinable
    public func equalsIgnoringASCIICase(_ other: String) -> Bool {
        asciiCaseInsensitiveEquals(utf8, other.utf8)
    }

    /// Whether this string, taken as a comma-separated header value, lists `token`, ignoring ASCII case and the
    /// spaces around each element: `Connection: keep-alive, Upgrade` lists `upgrade`.
    @inlinable
    public func listsToken(_ token: String) -> Bool {
        let bytes = utf8
        var elementStart = bytes.startIndex
        while true {
            let elementEnd = bytes[elementStart...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
            if asciiCaseInsensitiveEquals(Self.trimmingBlanks(bytes[elementStart..<elementEnd]), token.utf8) { return true }
            guard elementEnd != bytes.endIndex else { break }
            elementStart = bytes.index(after: elementEnd)
        }
        return false
    }

    @usableFromInline
    static func trimmingBlanks(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes.removeFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
        return bytes
    }
}
