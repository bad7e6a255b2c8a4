/// An address of a message: `addr-spec` with an optional display name (RFC 5322 §3.4).
///
/// Built only from values that cannot smuggle anything into a message or an SMTP session: the address is ASCII
/// `local@domain` without blanks, controls, `<`, `>`, `,`, `;`, quotes or backslashes, and the name has no control
/// character (a `\r\nBcc:` in a user's name is refused here, long before a session could see it).
public struct MailAddress: Sendable, Equatable, CustomStringConvertible {
    public let address: String
    public let displayName: String?

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(_ address: String, displayName: String? = nil) throws {
        guard Self.isValidAddress(address) else { throw Invalid(description: "'\(Self.visible(address))' is not an e-mail address") }
        if let displayName, displayName.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw Invalid(description: "a display name must not contain control characters")
        }
        self.address = address
        self.displayName = displayName?.isEmpty == true ? nil : displayName
    }

    /// `Name <addr@host>` or `addr@host`, as written in configuration (`email.from`).
    public static func parse(_ text: String) throws -> MailAddress {
        let trimmed = text.trimmingBlanks
        guard let open = trimmed.lastIndex(of: "<") else { return try MailAddress(trimmed) }
        guard trimmed.hasSuffix(">") else { throw Invalid(description: "'\(visible(text))' is not `Name <address>`") }
        let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
        var name = String(trimmed[..<open]).trimmingBlanks
        if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
        return try MailAddress(address, displayName: name)
    }

    static func isValidAddress(_ address: String) -> Bool {
        let bytes = Array(address.utf8)
        guard bytes.count <= 254, let at = bytes.lastIndex(of: UInt8(ascii: "@")), at > 0, at < bytes.count - 1, at <= 64 else { return false }
        let forbidden: Set<UInt8> = Set("<>()[],;:\\\"".utf8)
        for (index, byte) in bytes.enumerated() {
            guard byte > 0x20, byte < 0x7F, !forbidden.contains(byte) else { return false }
            if byte == UInt8(ascii: "@") && index != at { return false }
        }
        let domain = bytes[(at + 1)...]
        return !domain.contains(UInt8(ascii: "@")) && domain.first != UInt8(ascii: ".") && domain.last != UInt8(ascii: ".")
    }

    /// The header form: the name as a quoted string, or RFC 2047 encoded when it is not plain ASCII.
    public var headerValue: String {
        guard let displayName else { return address }
        return HeaderEncoding.phrase(displayName) + " <" + address + ">"
    }

    public var description: String { headerValue }

    /// A value for an error message: controls shown escaped, never written raw into a log line.
    static func visible(_ text: String) -> String {
        String(text.unicodeScalars.prefix(80).map { $0.properties.generalCategory == .control ? "?" : Character($0) })
    }
}

extension String {
    var trimmingBlanks: String {
        var scalars = Substring(self)
        while scalars.first == " " || scalars.first == "\t" { scalars = scalars.dropFirst() }
        while scalars.last == " " || scalars.last == "\t" { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
