import Foundation

/// A message as an SMTP sink (or a webhook) received it, read the way a mail client would, independently of the
/// gateway's own builder: headers unfolded, the `multipart/alternative` parts split at their boundary and their
/// quoted-printable bodies decoded. Finds the code (the line of exactly 8 digits) and the link of §11.
public struct ReceivedMail: Sendable {
    public var headers: [(name: String, value: String)]
    public var text: String
    public var html: String

    public init(raw: String) {
        let normalized = raw.replacingOccurrences(of: "\r\n", with: "\n")
        let (head, body) = Self.split(normalized)
        headers = Self.headers(head)
        text = ""
        html = ""
        let contentType = header("Content-Type") ?? ""
        guard let range = contentType.range(of: "boundary=\"") else {
            text = body
            return
        }
        let boundary = String(contentType[range.upperBound...].prefix { $0 != "\"" })
        for part in body.components(separatedBy: "--" + boundary).dropFirst() where !part.hasPrefix("--") {
            let (partHead, partBody) = Self.split(String(part.drop { $0 == "\n" }))
            let partHeaders = Self.headers(partHead)
            let type = partHeaders.first { $0.name.lowercased() == "content-type" }?.value.lowercased() ?? ""
            let encoding = partHeaders.first { $0.name.lowercased() == "content-transfer-encoding" }?.value.lowercased() ?? ""
            let decoded = encoding == "quoted-printable" ? Self.decodeQuotedPrintable(partBody) : partBody
            if type.hasPrefix("text/plain") { text = decoded } else if type.hasPrefix("text/html") { html = decoded }
        }
    }

    /// Also for webhook bodies, which carry the parts as JSON fields.
    public init(text: String, html: String, headers: [(name: String, value: String)] = []) {
        self.text = text
        self.html = html
        self.headers = headers
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The 8-digit code, on a line of its own in the text part.
    public var code: String? {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.count == 8 && $0.allSatisfy(\.isASCIIDigitCharacter) }
    }

    /// The link in the text part.
    public var link: String? {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("http://") || $0.hasPrefix("https://") }
    }

    /// The `token` parameter of the link.
    public var token: String? {
        link.flatMap { URLComponents(string: $0)?.queryItems?.first { $0.name == "token" }?.value }
    }

    private static func split(_ text: String) -> (String, String) {
        guard let range = text.range(of: "\n\n") else { return (text, "") }
        return (String(text[..<range.lowerBound]), String(text[range.upperBound...]))
    }

    private static func headers(_ head: String) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        for line in head.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.first == " " || line.first == "\t", !result.isEmpty {
                result[result.count - 1].value += " " + line.trimmingCharacters(in: .whitespaces)
            } else if let colon = line.firstIndex(of: ":") {
                result.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
        }
        return result
    }

    /// RFC 2045 §6.7: `=XX` is a byte, `=` at the end of a line joins it to the next.
    static func decodeQuotedPrintable(_ text: String) -> String {
        var bytes: [UInt8] = []
        let input = Array(text.utf8)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "="), index + 1 < input.count, input[index + 1] == UInt8(ascii: "\n") {
                index += 2
            } else if byte == UInt8(ascii: "="), index + 2 < input.count,
                let value = UInt8(String(decoding: input[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                index += 3
            } else {
                bytes.append(byte)
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}
