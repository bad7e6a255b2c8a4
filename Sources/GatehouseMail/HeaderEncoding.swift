/// Header values that are always safe to write: RFC 2047 encoded words for anything beyond printable ASCII, quoted
/// strings for names with specials, lines folded under 78 characters.
enum HeaderEncoding {
    /// An unstructured value (`Subject`): as is when it is short printable ASCII, otherwise `=?UTF-8?B?...?=` words
    /// of at most 75 characters each, separated by folding white space.
    static func unstructured(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) && text.utf8.count <= 70 && !text.contains("=?") { return text }
        return encodedWords(text)
    }

    /// A display name: a quoted string when it is printable ASCII, encoded words otherwise.
    static func phrase(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) && !text.contains("=?") {
            var quoted = "\""
            for character in text {
                if character == "\"" || character == "\\" { quoted.append("\\") }
                quoted.append(character)
            }
            return quoted + "\""
        }
        return encodedWords(text)
    }

    /// Base64 encoded words, split on character boundaries so that no word cuts a UTF-8 sequence.
    private static func encodedWords(_ text: String) -> String {
        // At most 36 bytes of text per word: 48 characters of base64, 60 with "=?UTF-8?B?" and "?=", so that even
        // the first word, after "Subject: ", stays within 78 characters (RFC 5322 §2.1.1).
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 36 {
                words.append("=?UTF-8?B?" + Base64.encode(chunk) + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?" + Base64.encode(chunk) + "?=") }
        return words.joined(separator: "\r\n ")
    }
}

/// RFC 4648 base64, with lines of 76 characters for bodies (RFC 2045 §6.8).
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { output.append(alphabet[Int(value >> UInt32(shift) & 0x3F)]) }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            let value = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            output.append(alphabet[Int(value >> 18 & 0x3F)])
            output.append(alphabet[Int(value >> 12 & 0x3F)])
            output.append(rest == 2 ? alphabet[Int(value >> 6 & 0x3F)] : UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Base64 in lines of 76 characters joined by CRLF, for a body part.
    static func encodeLines(_ bytes: [UInt8]) -> String {
        let text = Array(encode(bytes).utf8)
        var lines: [String] = []
        var start = 0
        while start < text.count {
            let end = min(start + 76, text.count)
            lines.append(String(decoding: text[start..<end], as: UTF8.self))
            start = end
        }
        return lines.joined(separator: "\r\n")
    }
}
