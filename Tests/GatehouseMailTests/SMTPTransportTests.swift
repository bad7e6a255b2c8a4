import Foundation
import GatehouseTestSupport
import NIOCore
import NIOPosix
import Testing

@testable import GatehouseMail

/// The SMTP client against a real server (aiosmtpd): plain, STARTTLS with AUTH and a private CA, implicit TLS, a
/// refused recipient, a server that is down and one that never answers.
@Suite struct SMTPTransportTests {
    static func mail(to: String = "ann@acme.test") throws -> OutgoingMail {
        OutgoingMail(
            tenant: "acme", kind: .reset,
            message: MailMessage(
                from: try MailAddress.parse("Acme <no-reply@acme.test>"), to: try MailAddress(to, displayName: "Ann"), subject: "Reset your password",
                text: "Your code:\n12345678\n.\n..dots stay", html: "<p>12345678</p>"))
    }

    static func transport(_ server: SMTPTransport.Server, replyTimeout: TimeAmount = .seconds(10)) throws -> SMTPTransport {
        try SMTPTransport(server: server, group: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(2), replyTimeout: replyTimeout)
    }

    @Test func aMessageArrivesIntactOverAPlainConnection() async throws {
        let server = try await SMTPTestServer.start()
        defer { server.stop() }
        try await Self.transport(.init(host: "127.0.0.1", port: server.port, security: .startTLSWhenOffered)).send(try Self.mail())
        let received = try await server.waitForMessages(1)
        try #require(received.count == 1)
        #expect(received[0].from == "no-reply@acme.test")
        #expect(received[0].to == ["ann@acme.test"])
        #expect(received[0].message.contains("Subject: Reset your password"))
        #expect(received[0].message.contains("\n.\r\n..dots stay") || received[0].message.contains("\n.\n..dots stay"), "dot-stuffing undone by the server")
    }

    @Test func startTLSWithAuthAgainstAPrivateCA() async throws {
        let authority = try await offThread { try TestCertificateAuthority() }
        defer { authority.remove() }
        var options = SMTPTestServer.Options()
        options.tls = (authority.serverCertificate, authority.serverKey)
        options.requireTLS = true
        options.credentials = ("mailer", "s3cret-smtp")
        let server = try await SMTPTestServer.start(options)
        defer { server.stop() }
        let trusted = SMTPTransport.Server(
            host: "localhost", port: server.port, security: .startTLSRequired, user: "mailer", password: "s3cret-smtp",
            certificateAuthorities: authority.caCertificate)
        try await Self.transport(trusted).send(try Self.mail())
        #expect(try await server.waitForMessages(1).count == 1)

        // Without the CA, the certificate is not trusted: a final error, and the credentials never sent.
        let untrusted = SMTPTransport.Server(host: "localhost", port: server.port, security: .startTLSRequired, user: "mailer", password: "s3cret-smtp")
        await #expect(throws: MailDeliveryError.self) { try await Self.transport(untrusted).send(try Self.mail()) }
        // A wrong password: 535, final.
        var wrong = trusted
        wrong.password = "wrong"
        do {
            try await Self.transport(wrong).send(try Self.mail())
            Issue.record("sent with a wrong password")
        } catch let error as MailDeliveryError {
            #expect(!error.isTransient)
            #expect(error.reason.contains("authentication") && error.reason.contains("535"), "\(error.reason)")
            #expect(!error.reason.contains("wrong") && !error.reason.contains("s3cret"))
        }
        #expect(server.messages().count == 1)
    }

    @Test func implicitTLS() async throws {
        let authority = try await offThread { try TestCertificateAuthority() }
        defer { authority.remove() }
        var options = SMTPTestServer.Options()
        options.tls = (authority.serverCertificate, authority.serverKey)
        options.implicitTLS = true
        let server = try await SMTPTestServer.start(options)
        defer { server.stop() }
        try await Self.transport(.init(host: "127.0.0.1", port: server.port, security: .implicitTLS, certificateAuthorities: authority.caCertificate))
            .send(try Self.mail())
        #expect(try await server.waitForMessages(1).count == 1)
    }

    @Test func aRefusedRecipientIsAFinalErrorWithTheServersReply() async throws {
        var options = SMTPTestServer.Options()
        options.refuseRecipients = true
        let server = try await SMTPTestServer.start(options)
        defer { server.stop() }
        do {
            try await Self.transport(.init(host: "127.0.0.1", port: server.port, security: .startTLSWhenOffered)).send(try Self.mail())
            Issue.record("no error")
        } catch let error as MailDeliveryError {
            #expect(!error.isTransient)
            #expect(error.reason == "SMTP rcpt to: the server answered 550 5.1.1 No such user here")
        }
    }

    @Test func aServerThatIsDownOrNeverAnswersIsATransientError() async throws {
        let closed = try freeLoopbackPort()
        do {
            try await Self.transport(.init(host: "127.0.0.1", port: closed, security: .startTLSWhenOffered)).send(try Self.mail())
            Issue.record("no error")
        } catch let error as MailDeliveryError {
            #expect(error.isTransient)
            #expect(error.reason.hasPrefix("SMTP connect: cannot connect to 127.0.0.1:\(closed)"), "\(error.reason)")
        }
        // A listener that accepts and says nothing.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let started = ContinuousClock.now
        do {
            try await Self.transport(.init(host: "127.0.0.1", port: silent.localAddress!.port!, security: .startTLSWhenOffered), replyTimeout: .seconds(1))
                .send(try Self.mail())
            Issue.record("no error")
        } catch let error as MailDeliveryError {
            #expect(error.isTransient)
            #expect(error.reason == "SMTP greeting: no answer within 1 s")
        }
        // The reply timeout ended it, not the connection's (a loaded machine may take a few seconds more).
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func aServerThatComesUpLaterGetsTheMessageOnTheNextTry() async throws {
        let port = try freeLoopbackPort()
        let transport = try Self.transport(.init(host: "127.0.0.1", port: port, security: .startTLSWhenOffered))
        await #expect(throws: MailDeliveryError.self) { try await transport.send(try Self.mail()) }
        var options = SMTPTestServer.Options()
        options.port = port
        let server = try await SMTPTestServer.start(options)
        defer { server.stop() }
        try await transport.send(try Self.mail())
        #expect(try await server.waitForMessages(1).count == 1)
    }
}
