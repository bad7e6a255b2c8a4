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
        let count = name.utf8.count
        guard count < Self.candidatesByLength.count else { return nil }
        for candidate in Self.candidatesByLength[count] where name.equalsIgnoringASCIICase(candidate.rawValue) {
            self = candidate
            return
        }
        return nil
    }

    /// The cases grouped by the length of their name, so a lookup compares against one or two candidates.
    @usableFromInline
    static let candidatesByLength: [[KnownHeader]] = {
        let longest = allCases.map(\.rawValue.utf8.count).max() ?? 0
        var table = [[KnownHeader]](repeating: [], count: longest + 1)
        for header in allCases { table[header.rawValue.utf8.count].append(header) }
        return table
    }()
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
