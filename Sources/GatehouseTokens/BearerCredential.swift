/// The credential an `Authorization` header presents (RFC 6750 §2.1).
public enum BearerCredential: Sendable, Equatable {
    /// No `Authorization` header, or another scheme: the request is anonymous as far as tokens go.
    case none
    case bearer(String)
    /// `Authorization: Bearer` without a usable token (empty, or with blanks inside).
    case malformed

    /// Parses `Authorization: Bearer <token68>`, scheme case-insensitive. On the UTF-8 bytes: this runs on every
    /// request, and Foundation's string helpers cost more than the token check itself.
    public static func parse(authorization value: String?) -> BearerCredential {
        guard var value else { return .none }
        return value.withUTF8 { bytes in
            let space = UInt8(ascii: " ")
            var start = 0
            while start < bytes.count, bytes[start] == space { start += 1 }
            guard bytes.count - start >= 6 else { return .none }
            for (offset, expected) in "bearer".utf8.enumerated() where bytes[start + offset] | 0x20 != expected { return .none }
            var tokenStart = start + 6
            guard tokenStart == bytes.count || bytes[tokenStart] == space else { return .none }  // "Bearerx"
            while tokenStart < bytes.count, bytes[tokenStart] == space { tokenStart += 1 }
            var tokenEnd = bytes.count
            while tokenEnd > tokenStart, bytes[tokenEnd - 1] == space { tokenEnd -= 1 }
            let token = UnsafeBufferPointer(rebasing: bytes[tokenStart..<tokenEnd])
            guard !token.isEmpty, !token.contains(space) else { return .malformed }
            return .bearer(String(decoding: token, as: UTF8.self))
        }
    }
}
