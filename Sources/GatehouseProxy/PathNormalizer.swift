/// Normalizes a request path once, so that the same path is used for matching and for forwarding (§6.1).
///
/// Unreserved characters are percent-decoded, other escapes are kept with upper-case hex, `.` and `..`
/// segments are resolved and repeated slashes merged. Anything that could make the gateway and the upstream
/// disagree about which resource is meant is refused rather than guessed.
public enum PathNormalizer {
    public enum Rejection: Error, Sendable, Equatable, CustomStringConvertible {
        case notAbsolute
        case encodedSeparator
        case nulByte
        case invalidPercentEncoding
        case invalidCharacter
        case climbsAboveRoot
        /// A `;` (matrix parameters, `..;`): Tomcat and Spring drop what follows it in a segment.
        case semicolon
        /// A segment ending in `.`, a space or a tab (other than `.` and `..`): IIS and Windows trim them.
        case ambiguousSegmentEnd

        public var description: String {
            switch self {
            case .notAbsolute: return "The request path must start with '/'."
            case .encodedSeparator: return "The request path contains an encoded '/' or '\\' (%2F, %5C) or a backslash."
            case .nulByte: return "The request path contains a NUL byte."
            case .invalidPercentEncoding: return "The request path contains a '%' that is not followed by two hex digits."
            case .invalidCharacter: return "The request path contains a control or non-ASCII character."
            case .climbsAboveRoot: return "The request path uses '..' to climb above the root."
            case .semicolon:
                return "The request path contains ';' (or %3B): path parameters are read differently by upstream servers."
            case .ambiguousSegmentEnd:
                return "A segment of the request path ends in '.', a space or a tab (or %2E, %20, %09), which upstream servers read differently."
            }
        }
    }

    /// Normalizes `path` (without the query string).
    ///
    /// Segments that upstream servers read differently from the gateway are refused, not repaired (§6.8): a `;`
    /// anywhere, and a segment whose decoded form ends in `.`, a space or a tab, except `.` and `..` themselves.
    public static func normalize(_ path: Substring) -> Result<String, Rejection> {
        // The fast path: its equivalence with the full pass is checked on generated paths by the tests.
        if isPlain(path) { return .success(String(path)) }
        return normalizeFully(path)
    }

    /// The full pass: decoding, checks and segment resolution, byte by byte.
    static func normalizeFully(_ path: Substring) -> Result<String, Rejection> {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(path.utf8.count)
        let bytes = Array(path.utf8)
        guard bytes.first == UInt8(ascii: "/") else { return .failure(.notAbsolute) }
        var index = 0
        var needsResolution = false
        // The decoded segment so far: its length, how many of its bytes are dots, and its last byte.
        var segmentLength = 0
        var segmentDots = 0
        var segmentLast: UInt8 = 0
        func segmentIsAmbiguous() -> Bool {
            guard segmentLength > 0 else { return false }
            switch segmentLast {
            case UInt8(ascii: "."): return !(segmentDots == segmentLength && segmentLength <= 2)
            case UInt8(ascii: " "), UInt8(ascii: "\t"): return true
            default: return false
            }
        }
        func noteSegmentByte(_ value: UInt8) {
            segmentLength += 1
            if value == UInt8(ascii: ".") { segmentDots += 1 }
            segmentLast = value
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    return .failure(.invalidPercentEncoding)
                }
                let value = high << 4 | low
                switch value {
                case UInt8(ascii: "/"), UInt8(ascii: "\\"): return .failure(.encodedSeparator)
                case 0: return .failure(.nulByte)
                case UInt8(ascii: ";"): return .failure(.semicolon)
                default:
                    noteSegmentByte(value)
                    if isUnreserved(value) {
                        decoded.append(value)
                        if value == UInt8(ascii: ".") { needsResolution = true }
                    } else {
                        decoded.append(UInt8(ascii: "%"))
                        decoded.append(upperHex(high))
                        decoded.append(upperHex(low))
                    }
                }
                index += 3
                continue
            case 0: return .failure(.nulByte)
            case UInt8(ascii: "\\"): return .failure(.encodedSeparator)
            case UInt8(ascii: ";"): return .failure(.semicolon)
            case UInt8(ascii: "."):
                needsResolution = true
                noteSegmentByte(byte)
            case UInt8(ascii: "/"):
                if segmentIsAmbiguous() { return .failure(.ambiguousSegmentEnd) }
                segmentLength = 0
                segmentDots = 0
                if decoded.last == UInt8(ascii: "/") { needsResolution = true }
            default:
                if byte < 0x21 || byte >= 0x7F { return .failure(.invalidCharacter) }
                noteSegmentByte(byte)
            }
            decoded.append(byte)
            index += 1
        }
        if segmentIsAmbiguous() { return .failure(.ambiguousSegmentEnd) }
        guard needsResolution else { return .success(String(decoding: decoded, as: UTF8.self)) }
        return resolveSegments(decoded)
    }

    /// Whether `path` is normal as it stands, as most are: absolute, printable ASCII, no escapes, no dots, no
    /// backslash, no empty segment. Such a path is used without copying it byte by byte.
    private static func isPlain(_ path: Substring) -> Bool {
        var previous: UInt8 = 0
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "%"), UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: ";"): return false
            case UInt8(ascii: "/") where previous == UInt8(ascii: "/"): return false
            case 0x21..<0x7F: break
            default: return false
            }
            previous = byte
        }
        return path.utf8.first == UInt8(ascii: "/")
    }

    /// Resolves `.` and `..` and merges empty segments; a trailing slash (or trailing dot segment) is kept.
    private static func resolveSegments(_ path: [UInt8]) -> Result<String, Rejection> {
        var segments: [ArraySlice<UInt8>] = []
        var trailingSlash = false
        for segment in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst() {
            trailingSlash = false
            if segment.isEmpty {
                trailingSlash = true
            } else if segment.elementsEqual([UInt8(ascii: ".")]) {
                trailingSlash = true
            } else if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                guard !segments.isEmpty else { return .failure(.climbsAboveRoot) }
                segments.removeLast()
                trailingSlash = true
            } else {
                segments.append(segment)
            }
        }
        var result: [UInt8] = []
        result.reserveCapacity(path.count)
        for segment in segments {
            result.append(UInt8(ascii: "/"))
            result.append(contentsOf: segment)
        }
        if trailingSlash || result.isEmpty { result.append(UInt8(ascii: "/")) }
        return .success(String(decoding: result, as: UTF8.self))
    }

    @inline(__always)
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    @inline(__always)
    private static func upperHex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10
    }
}

/// A request target split into its normalized path and its raw query.
public struct RequestTarget: Sendable, Equatable {
    public var path: String
    /// The query without `?`, exactly as the client sent it; nil when there was no `?`.
    public var query: Substring?

    /// Parses an origin-form (`/a?b`) or absolute-form (`http://host/a?b`) target.
    public static func parse(_ uri: String) -> Result<RequestTarget, PathNormalizer.Rejection> {
        // Byte searches on the UTF-8 view: `Character` searches would run grapheme breaking on every request.
        var target = Substring(uri)
        if let fragment = target.utf8.firstIndex(of: UInt8(ascii: "#")) { target = target[..<fragment] }
        if target.utf8.first != UInt8(ascii: "/") {
            // Absolute form, as sent to proxies: drop scheme and authority, keep path and query.
            guard let schemeEnd = target.range(of: "://") else { return .failure(.notAbsolute) }
            let afterAuthority = target[schemeEnd.upperBound...]
            target = afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" }).map { afterAuthority[$0...] } ?? "/"
            if target.hasPrefix("?") { target = "/" + target }
        }
        let path: Substring
        var query: Substring?
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        } else {
            path = target
        }
        return PathNormalizer.normalize(path).map { RequestTarget(path: $0, query: query) }
    }
}
