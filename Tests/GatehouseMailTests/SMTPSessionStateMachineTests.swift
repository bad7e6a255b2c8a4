import Testing

@testable import GatehouseMail

/// The SMTP session without a socket: scripted replies in, the machine's actions out.
@Suite struct SMTPSessionStateMachineTests {
    static func machine(
        _ security: SMTPSecurity = .startTLSWhenOffered, credentials: (String, String)? = nil, loopback: Bool = false,
        message: String = "Subject: x\r\n\r\nbody\r\n"
    ) -> SMTPSessionStateMachine {
        SMTPSessionStateMachine(
            .init(
                security: security, credentials: credentials.map { (user: $0.0, password: $0.1) }, allowsPlaintextCredentials: loopback,
                clientName: "gatehouse.test", sender: "no-reply@acme.test", recipient: "ann@acme.test", message: Array(message.utf8)))
    }

    static func reply(_ code: Int, _ lines: String...) -> SMTPReply { SMTPReply(code: code, lines: lines.isEmpty ? ["ok"] : lines) }
    static func send(_ text: String) -> SMTPSessionStateMachine.Action { .send(Array(text.utf8)) }

    @Test func aPlainSubmissionGoesGreetingToQuit() {
        var machine = Self.machine()
        #expect(machine.received(Self.reply(220, "mx ESMTP")) == Self.send("EHLO gatehouse.test\r\n"))
        #expect(machine.received(Self.reply(250, "mx", "PIPELINING", "8BITMIME")) == Self.send("MAIL FROM:<no-reply@acme.test>\r\n"))
        #expect(machine.received(Self.reply(250)) == Self.send("RCPT TO:<ann@acme.test>\r\n"))
        #expect(machine.received(Self.reply(250)) == Self.send("DATA\r\n"))
        #expect(machine.received(Self.reply(354)) == Self.send("Subject: x\r\n\r\nbody\r\n.\r\n"))
        #expect(machine.received(Self.reply(250, "queued")) == .accepted(Self.reply(250, "queued"), quit: Array("QUIT\r\n".utf8)))
        #expect(machine.received(Self.reply(221)) == .close)
    }

    @Test func startTLSIsUsedWhenOfferedAndTheSessionGreetsAgainThenAuthenticates() {
        var machine = Self.machine(credentials: ("user", "pass"))
        _ = machine.received(Self.reply(220))
        #expect(machine.received(Self.reply(250, "mx", "STARTTLS", "AUTH LOGIN")) == Self.send("STARTTLS\r\n"))
        #expect(machine.received(Self.reply(220, "go ahead")) == .startTLS)
        #expect(machine.tlsEstablished() == Self.send("EHLO gatehouse.test\r\n"))
        // After TLS: PLAIN preferred; `\0user\0pass` in base64.
        #expect(machine.received(Self.reply(250, "mx", "AUTH=LOGIN PLAIN")) == Self.send("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"))
        #expect(machine.received(Self.reply(235)) == Self.send("MAIL FROM:<no-reply@acme.test>\r\n"))
    }

    @Test func authLoginSendsTheNameThenThePassword() {
        var machine = Self.machine(.implicitTLS, credentials: ("user", "pass"))
        _ = machine.received(Self.reply(220))
        #expect(machine.received(Self.reply(250, "mx", "AUTH LOGIN")) == Self.send("AUTH LOGIN\r\n"))
        #expect(machine.received(Self.reply(334, "VXNlcm5hbWU6")) == Self.send("dXNlcg==\r\n"))
        #expect(machine.received(Self.reply(334, "UGFzc3dvcmQ6")) == Self.send("cGFzcw==\r\n"))
        #expect(machine.received(Self.reply(235)) == Self.send("MAIL FROM:<no-reply@acme.test>\r\n"))
    }

    @Test func refusalsArePermanentOn5xxAndTransientOn4xx() {
        var refused = Self.machine()
        _ = refused.received(Self.reply(220))
        _ = refused.received(Self.reply(250))
        _ = refused.received(Self.reply(250))
        guard case .fail(let permanent) = refused.received(Self.reply(550, "5.1.1 No such user")) else { Issue.record("no failure"); return }
        #expect(permanent.stage == .recipient && !permanent.isTransient)
        #expect(permanent.description == "SMTP rcpt to: the server answered 550 5.1.1 No such user")
        var busy = Self.machine()
        guard case .fail(let transient) = busy.received(Self.reply(421, "busy")) else { Issue.record("no failure"); return }
        #expect(transient.stage == .greeting && transient.isTransient)
        var wrongPassword = Self.machine(.implicitTLS, credentials: ("user", "wrong"))
        _ = wrongPassword.received(Self.reply(220))
        _ = wrongPassword.received(Self.reply(250, "mx", "AUTH PLAIN"))
        guard case .fail(let authentication) = wrongPassword.received(Self.reply(535, "5.7.8 bad credentials")) else { Issue.record("no failure"); return }
        #expect(authentication.stage == .authentication && !authentication.isTransient)
        #expect(!authentication.description.contains("wrong"), "never the password")
    }

    @Test func policyRefusalsNeverSendCredentialsInTheClear() {
        var required = Self.machine(.startTLSRequired)
        _ = required.received(Self.reply(220))
        guard case .fail(let noTLS) = required.received(Self.reply(250, "mx", "AUTH PLAIN")) else { Issue.record("sent without TLS"); return }
        #expect(noTLS.stage == .startTLS && !noTLS.isTransient)
        var remote = Self.machine(credentials: ("user", "pass"))
        _ = remote.received(Self.reply(220))
        guard case .fail(let clear) = remote.received(Self.reply(250, "mx", "AUTH PLAIN")) else { Issue.record("credentials in the clear"); return }
        #expect(clear.stage == .authentication)
        var loopback = Self.machine(credentials: ("user", "pass"), loopback: true)
        _ = loopback.received(Self.reply(220))
        #expect(loopback.received(Self.reply(250, "mx", "AUTH PLAIN")) == Self.send("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"), "a loopback server may have them")
        var noMechanism = Self.machine(.implicitTLS, credentials: ("user", "pass"))
        _ = noMechanism.received(Self.reply(220))
        guard case .fail = noMechanism.received(Self.reply(250, "mx", "AUTH CRAM-MD5")) else { Issue.record("no failure"); return }
    }

    @Test func dotStuffingDoublesLeadingDotsAndEndsTheData() {
        #expect(SMTPSessionStateMachine.dotStuffed(Array(".a\r\nb\r\n..c\r\n.\r\n".utf8)) == Array("..a\r\nb\r\n...c\r\n..\r\n.\r\n".utf8))
        #expect(SMTPSessionStateMachine.dotStuffed(Array("no final break".utf8)) == Array("no final break\r\n.\r\n".utf8))
    }

    @Test func repliesAreAssembledFromTheirLinesAndJunkIsAProtocolError() throws {
        var parser = SMTPReplyParser()
        #expect(try parser.consume(Array("250-mx.example".utf8)) == nil)
        #expect(try parser.consume(Array("250-STARTTLS".utf8)) == nil)
        #expect(try parser.consume(Array("250 AUTH PLAIN LOGIN".utf8)) == SMTPReply(code: 250, lines: ["mx.example", "STARTTLS", "AUTH PLAIN LOGIN"]))
        #expect(try parser.consume(Array("220".utf8)) == SMTPReply(code: 220, lines: [""]))
        for junk in ["HTTP/1.1 200 OK", "25", "2500 x", "abc def"] {
            var fresh = SMTPReplyParser()
            #expect(throws: SMTPReplyParser.ProtocolError.self) { try fresh.consume(Array(junk.utf8)) }
        }
        var changing = SMTPReplyParser()
        _ = try changing.consume(Array("250-a".utf8))
        #expect(throws: SMTPReplyParser.ProtocolError.self) { try changing.consume(Array("251 b".utf8)) }
        #expect(SMTPSessionStateMachine.capabilities(SMTPReply(code: 250, lines: ["mx", "starttls", "AUTH=PLAIN", "AUTH LOGIN XOAUTH2"])) == [
            "STARTTLS", "AUTH PLAIN", "AUTH LOGIN", "AUTH XOAUTH2",
        ])
    }
}
