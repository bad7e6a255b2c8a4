import Foundation

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

/// RFC 4648 base64, for encoded words and SMTP AUTH: Foundation's, under the one name the module uses.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}
