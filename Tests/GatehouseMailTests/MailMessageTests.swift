import Foundation
import GatehouseTestSupport
import Testing

@testable import GatehouseMail

@Suite struct MailMessageTests {
    static let from = try! MailAddress.parse("Acme Accounts <no-reply@acme.test>")

    /// Python's `email` package reads the message back: an independent parser of RFC 5322, MIME, quoted-printable
    /// and RFC 2047.
    static func parsedByPython(_ message: [UInt8]) throws -> [String: String] {
        let script = """
            import email, email.policy, json, sys
            message = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
            parts = {part.get_content_type(): part.get_content() for part in message.iter_parts()}
            print(json.dumps({"from": str(message["From"]), "to": str(message["To"]), "subject": str(message["Subject"]),
                "date": str(message["Date"]), "id": str(message["Message-ID"]), "type": message.get_content_type(),
                "text": parts.get("text/plain", ""), "html": parts.get("text/html", ""), "defects": str(len(message.defects))}))
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-mail-\(UUID().uuidString).eml")
        try Data(message).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try run("/bin/sh", ["-c", "/usr/bin/python3 -c '\(script.replacingOccurrences(of: "'", with: "'\\''"))' < '\(file.path)'"])
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: String] else {
            throw SMTPTestServer.Failure(description: "python could not parse the message: \(result.error)")
        }
        return object
    }

    @Test func aMessageIsMultipartAlternativeWithEveryHeaderAndPythonReadsItBack() throws {
        let text = "Your code:\n\n12345678\n\nhttp://acme.test/auth/password/reset?token=" + String(repeating: "x", count: 90) + "\n= and . and trailing  \n.a dot line\nnaïve café ✓"
        let html = "<p style=\"color:#0b5fff\">Réinitialiser — ✓</p>\n" + String(repeating: "<b>long</b>", count: 20)
        let message = MailMessage(
            from: Self.from, to: try MailAddress("ann@acme.test", displayName: "Änn Müller"), subject: "Réinitialisez votre mot de passe — Acme ✓",
            text: text, html: html, date: Date(timeIntervalSince1970: 1_796_083_200))
        let rendered = message.rendered()
        let wire = String(decoding: rendered, as: UTF8.self)
        #expect(wire.split(separator: "\r\n", omittingEmptySubsequences: false).allSatisfy { $0.utf8.count <= 78 }, "every line within 78 characters")
        #expect(!wire.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "CRLF only")
        #expect(wire.utf8.allSatisfy { $0 < 0x80 }, "7-bit on the wire")
        #expect(wire.contains("Date: Tue, 01 Dec 2026 00:00:00 +0000\r\n"))
        let parsed = try Self.parsedByPython(rendered)
        #expect(parsed["defects"] == "0")
        #expect(parsed["type"] == "multipart/alternative")
        #expect(parsed["subject"] == "Réinitialisez votre mot de passe — Acme ✓")
        #expect(parsed["from"] == "Acme Accounts <no-reply@acme.test>")
        #expect(parsed["to"] == "Änn Müller <ann@acme.test>")
        #expect(parsed["id"] == "<\(message.messageID)>")
        #expect(parsed["text"]?.replacingOccurrences(of: "\r\n", with: "\n") == text, "\(parsed["text"]!.debugDescription)")
        #expect(parsed["html"]?.hasPrefix("<p style=\"color:#0b5fff\">Réinitialiser — ✓</p>") == true)
    }

    @Test(arguments: [
        "ann@acme.test\r\nBcc: eve@evil.test", "ann@acme.test\nBcc: eve@evil.test", "<ann@acme.test>", "ann@acme.test>\r\nRCPT TO:<eve@evil.test",
        "ann acme@acme.test", "no-at-sign", "@acme.test", "ann@", "a@b@c", "ann@acme.test,eve@evil.test", "änn@acme.test", "",
    ])
    func anAddressThatCouldInjectAnythingIsRefused(_ address: String) {
        #expect(throws: MailAddress.Invalid.self) { try MailAddress(address) }
    }

    @Test func aNameOrSubjectThatCouldInjectAHeaderNeverReachesTheWire() throws {
        #expect(throws: MailAddress.Invalid.self) { try MailAddress("ann@acme.test", displayName: "Ann\r\nBcc: eve@evil.test") }
        #expect(throws: MailAddress.Invalid.self) { try MailAddress.parse("Ann\r\nBcc: eve@evil.test <ann@acme.test>") }
        let message = MailMessage(
            from: Self.from, to: try MailAddress("ann@acme.test", displayName: "Ann \"The\" Admin"), subject: "Hello\r\nBcc: eve@evil.test", text: "x",
            html: "y")
        let wire = String(decoding: message.rendered(), as: UTF8.self)
        #expect(!wire.contains("\r\nBcc:"))
        #expect(wire.contains("To: \"Ann \\\"The\\\" Admin\" <ann@acme.test>\r\n"))
        let parsed = try Self.parsedByPython(message.rendered())
        #expect(parsed["subject"] == "Hello  Bcc: eve@evil.test")
    }

    @Test func quotedPrintableAndBase64FollowTheirRules() {
        #expect(QuotedPrintable.encode("a=b") == "a=3Db")
        #expect(QuotedPrintable.encode("trailing \nx") == "trailing=20\r\nx")
        #expect(QuotedPrintable.encode("é") == "=C3=A9")
        let long = QuotedPrintable.encode(String(repeating: "a", count: 200))
        #expect(long.split(separator: "\r\n").allSatisfy { $0.count <= 76 })
        #expect(long.replacingOccurrences(of: "=\r\n", with: "") == String(repeating: "a", count: 200))
        #expect(Base64.encode(Array("Man".utf8)) == "TWFu")
        #expect(Base64.encode(Array("Ma".utf8)) == "TWE=")
        #expect(Base64.encode(Array("M".utf8)) == "TQ==")
        #expect(Base64.encode([]) == "")
    }
}
