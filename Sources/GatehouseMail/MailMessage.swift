import Foundation

/// One account e-mail (§11): `multipart/alternative` with a text and an HTML part, and the headers the contract
/// names (`From`, `To`, `Subject`, `Date`, `Message-ID`). Rendering is separate from sending: ``rendered()`` gives
/// the RFC 5322 bytes (CRLF lines, quoted-printable bodies, encoded words), which an SMTP session dot-stuffs and a
/// test can parse.
public struct MailMessage: Sendable, Equatable {
    public var from: MailAddress
    public var to: MailAddress
    public var subject: String
    public var text: String
    public var html: String
    public var date: Date
    /// Without the angle brackets.
    public var messageID: String

    public init(from: MailAddress, to: MailAddress, subject: String, text: String, html: String, date: Date = Date(), messageID: String? = nil) {
        self.from = from
        self.to = to
        // A subject is one line: a line break in a template's value must not start a header.
        self.subject = String(subject.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) })
        self.text = text
        self.html = html
        self.date = date
        let domain = from.address.split(separator: "@").last.map(String.init) ?? "gatehouse.invalid"
        self.messageID = messageID ?? "\(UUID().uuidString.lowercased())@\(domain)"
    }

    /// The message as it goes on the wire, before dot-stuffing: every line ends with CRLF.
    public func rendered(boundary: String? = nil) -> [UInt8] {
        let boundary = boundary ?? "gatehouse-" + UUID().uuidString.lowercased()
        var lines = [
            "From: " + from.headerValue,
            "To: " + to.headerValue,
            "Subject: " + HeaderEncoding.unstructured(subject),
            "Date: " + Self.rfc5322Date(date),
            "Message-ID: <" + messageID + ">",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative;\r\n boundary=\"" + boundary + "\"",
            "",
        ]
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            lines += [
                "--" + boundary,
                "Content-Type: " + type + "; charset=utf-8",
                "Content-Transfer-Encoding: quoted-printable",
                "",
                QuotedPrintable.encode(body),
            ]
        }
        lines.append("--" + boundary + "--")
        return Array((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }

    /// `Tue, 01 Dec 2026 13:00:00 +0000`, in English whatever the locale.
    static func rfc5322Date(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return String(
            format: "%@, %02d %@ %04d %02d:%02d:%02d +0000", days[Int(parts.tm_wday)], parts.tm_mday, months[Int(parts.tm_mon)],
            parts.tm_year + 1900, parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}

/// Quoted-printable (RFC 2045 §6.7) for UTF-8 text: lines of at most 76 characters with soft breaks, `=`, controls
/// and every byte beyond ASCII encoded, trailing blanks encoded, line breaks made CRLF.
enum QuotedPrintable {
    static func encode(_ text: String) -> String {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        return normalized.split(separator: "\n", omittingEmptySubsequences: false).map { encodeLine(Array($0.utf8)) }.joined(separator: "\r\n")
    }

    private static func encodeLine(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        var lineLength = 0
        for (index, byte) in bytes.enumerated() {
            let isLast = index == bytes.count - 1
            var piece: [UInt8]
            let printable = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=")) || ((byte == 0x20 || byte == 0x09) && !isLast)
            // A leading dot is left to the SMTP session's dot-stuffing; "From " at a line start is harmless in MIME.
            piece = printable ? [byte] : [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            // Soft break before the piece would pass 75 characters (the 76th is the `=`).
            if lineLength + piece.count > 75 {
                output += [UInt8(ascii: "="), 13, 10]
                lineLength = 0
            }
            output += piece
            lineLength += piece.count
        }
        return String(decoding: output, as: UTF8.self)
    }
}
