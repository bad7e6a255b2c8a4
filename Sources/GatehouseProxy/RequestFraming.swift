import NIOHTTP1

/// How a request's body is delimited: the one decision about framing (§6.6), made from what the client's decoder
/// was told, and the only source of the framing headers the upstream request gets.
///
/// The client's own `Content-Length` and `Transfer-Encoding` headers are never forwarded: the upstream request is
/// framed from this value, so no other header (a `Connection` listing `Content-Length`, say) can change how the
/// upstream splits the byte stream into requests.
public enum RequestFraming: Sendable, Equatable {
    /// No body: neither `Content-Length` nor `Transfer-Encoding`.
    case none
    /// Exactly this many body bytes.
    case contentLength(Int)
    /// A chunked body (`Transfer-Encoding: chunked`, exactly).
    case chunked

    /// Why a request's framing is refused; each is 400 with `Connection: close`, before anything goes upstream.
    public enum Rejection: Error, Sendable, Equatable, CustomStringConvertible {
        case unsupportedTransferEncoding
        case severalTransferEncodings
        case transferEncodingWithContentLength
        case severalContentLengths
        case invalidContentLength
        case transferEncodingInHTTP10

        public var description: String {
            switch self {
            case .unsupportedTransferEncoding:
                return "The only Transfer-Encoding the gateway accepts is exactly 'chunked'."
            case .severalTransferEncodings:
                return "The request has more than one Transfer-Encoding header."
            case .transferEncodingWithContentLength:
                return "The request has both Transfer-Encoding and Content-Length; its length is ambiguous."
            case .severalContentLengths:
                return "The request has more than one Content-Length header."
            case .invalidContentLength:
                return "The request's Content-Length is not a decimal number of bytes."
            case .transferEncodingInHTTP10:
                return "Transfer-Encoding is not defined for HTTP/1.0 requests."
            }
        }
    }

    /// Decides the framing of a request from its header pass, strictly: anything two parsers could read two ways is
    /// refused rather than interpreted.
    public static func decide(_ facts: RequestHeaderFacts, version: HTTPVersion) -> Result<RequestFraming, Rejection> {
        if facts.transferEncodingCount > 0 {
            guard facts.transferEncodingCount == 1 else { return .failure(.severalTransferEncodings) }
            guard facts.contentLengthCount == 0 else { return .failure(.transferEncodingWithContentLength) }
            guard version != .http1_0 else { return .failure(.transferEncodingInHTTP10) }
            guard let value = facts.transferEncoding, isExactlyChunked(value) else { return .failure(.unsupportedTransferEncoding) }
            return .success(.chunked)
        }
        guard facts.contentLengthCount > 0 else { return .success(.none) }
        guard facts.contentLengthCount == 1 else { return .failure(.severalContentLengths) }
        guard let text = facts.contentLengthText, let length = parseLength(text) else { return .failure(.invalidContentLength) }
        return .success(.contentLength(length))
    }

    /// Whether the body streams in parts whose total is not known ahead.
    public var hasBody: Bool {
        switch self {
        case .none, .contentLength(0): return false
        case .contentLength, .chunked: return true
        }
    }

    /// A `Content-Length` value: 1 to 18 ASCII digits, nothing else (no sign, no blanks, no list).
    static func parseLength(_ text: String) -> Int? {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// `chunked`, in any ASCII case, with optional blanks around it; not a list, not `xchunked`, not `chunked;x`.
    static func isExactlyChunked(_ value: String) -> Bool {
        var bytes = Substring(value).utf8[...]
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        return String(Substring(bytes)).equalsIgnoringASCIICase("chunked")
    }
}
