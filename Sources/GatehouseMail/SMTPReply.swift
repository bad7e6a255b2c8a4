/// One SMTP reply (RFC 5321 §4.2): a three-digit code and its text lines (several for a multi-line reply).
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    public var isPositive: Bool { (200..<400).contains(code) }
    /// 4xx: try again later.
    public var isTransient: Bool { (400..<500).contains(code) }

    /// The text, joined, with controls removed: safe for an error message or a log line.
    public var text: String {
        lines.joined(separator: " ").unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(String.init).joined()
    }
}

/// Assembles replies from lines: `250-first`, `250-second`, `250 last`. A line that is not a reply, or a
/// continuation with another code, is a protocol error; so is a reply over 100 lines or a line over 4,096 bytes
/// (a server that sends that is not one to keep reading from).
struct SMTPReplyParser {
    struct ProtocolError: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    static let maximumLineBytes = 4096
    static let maximumLines = 100
    private var pending: (code: Int, lines: [String])?

    /// Feeds one line (without its CRLF); returns a reply when the line ends one.
    mutating func consume(_ line: [UInt8]) throws -> SMTPReply? {
        guard line.count >= 3, line.count <= Self.maximumLineBytes,
            line[0...2].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            line.count == 3 || line[3] == UInt8(ascii: " ") || line[3] == UInt8(ascii: "-")
        else { throw ProtocolError(description: "the server sent a line that is not an SMTP reply") }
        let code = Int(line[0] - 48) * 100 + Int(line[1] - 48) * 10 + Int(line[2] - 48)
        let text = line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : ""
        var reply = pending ?? (code, [])
        guard reply.code == code else { throw ProtocolError(description: "a multi-line reply changed its code from \(reply.code) to \(code)") }
        reply.lines.append(text)
        guard reply.lines.count <= Self.maximumLines else { throw ProtocolError(description: "a reply longer than \(Self.maximumLines) lines") }
        if line.count > 3 && line[3] == UInt8(ascii: "-") {
            pending = reply
            return nil
        }
        pending = nil
        return SMTPReply(code: reply.code, lines: reply.lines)
    }
}
