import Foundation
import GatehouseIdentity
import GatehouseTestSupport
import GatehouseTokens
import Testing

@testable import GatehouseServer

/// §11 through real sockets: the gateway on loopback, Debian's aiosmtpd as the mail server (or a webhook receiver),
/// every message read back the way a mail client reads it.
@Suite struct AccountEmailEndToEndTests {
    static let tenants: [String: String] = [
        "acme": """
            hosts: [acme.test]
            signup: {enabled: true}
            branding: {display_name: Acme Corp, accent_color: "#aa3300"}
            email: {from: "Acme Corp <accounts@acme.test>"}
            routes:
              - {path: /private, upstream: "{{ECHO}}"}
            """,
        "strict": """
            hosts: [strict.test]
            signup: {enabled: true}
            email: {verification: required}
            routes:
              - {path: /, upstream: "{{ECHO}}", require: public}
            """,
        "globex": """
            hosts: [globex.test]
            signup: {enabled: true}
            routes:
              - {path: /, upstream: "{{ECHO}}", require: public}
            """,
        "noreset": """
            hosts: [noreset.test]
            signup: {enabled: true}
            password_reset: {enabled: false}
            routes:
              - {path: /, upstream: "{{ECHO}}", require: public}
            """,
    ]

    static func gatewayExtra(smtp: String) -> String {
        authGatewayExtra + "email:\n  smtp: \"\(smtp)\"\n  from: \"Gatehouse <no-reply@gatehouse.test>\"\n"
    }

    static func withMailGateway(smtp: String, _ body: (TestGateway) async throws -> Void) async throws {
        try await TestGateway.with(gatewayExtra: gatewayExtra(smtp: smtp), tenants: tenants, scripted: [:], body)
    }

    /// The messages to one address, read back.
    static func mails(_ server: SMTPTestServer, to address: String, count: Int, timeout: Duration = .seconds(15)) async throws -> [ReceivedMail] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let matching = server.messages().filter { $0.to.contains(address) }.map { ReceivedMail(raw: $0.message) }
            if matching.count >= count || ContinuousClock.now > deadline { return matching }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    @Test func forgotAnswersAlikeForEveryAddressAndItsLinkResetsThePassword() async throws {
        let smtp = try await SMTPTestServer.start()
        defer { smtp.stop() }
        try await Self.withMailGateway(smtp: "smtp://127.0.0.1:\(smtp.port)") { gateway in
            let (_, oldRefresh) = try await gateway.signUpAndLogIn("ann@acme.test")
            _ = try await gateway.post("/auth/signup", #"{"email":"dis@acme.test","password":"a long password"}"#)
            try await gateway.server.state.identity.setDisabled(tenant: gateway.server.state.tenants.resolve(host: "acme.test")!.configuration, email: "dis@acme.test", disabled: true)
            // The same answer for an account, nobody, and a disabled account.
            var bodies: Set<String> = []
            for email in ["ann@acme.test", "nobody@acme.test", "dis@acme.test"] {
                let response = try await gateway.post("/auth/password/forgot", #"{"email":"\#(email)"}"#)
                #expect(response.status == 202)
                #expect(response.header("Cache-Control") == "no-store")
                bodies.insert(response.text)
            }
            #expect(bodies.count == 1)
            // Malformed requests are told so.
            #expect(try await gateway.post("/auth/password/forgot", #"{"email":"not an address"}"#).status == 400)
            #expect(try await gateway.post("/auth/password/forgot", #"{"mail":"ann@acme.test"}"#).status == 400)
            #expect(try await gateway.post("/auth/password/forgot", contentType: "text/plain", "ann@acme.test").status == 415)

            // Ann's reset; nothing for the others.
            let mails = try await Self.mails(smtp, to: "ann@acme.test", count: 1)
            try #require(mails.count == 1)
            let reset = try #require(mails.first { $0.header("Subject") == "Reset your Acme Corp password" })
            #expect(reset.header("From") == "\"Acme Corp\" <accounts@acme.test>")
            // Not verified yet: the address alone, and no name in the greeting.
            #expect(reset.header("To") == "ann@acme.test" && reset.text.hasPrefix("Hello,"))
            #expect(reset.header("Date") != nil && reset.header("Message-ID")?.hasPrefix("<") == true)
            #expect(reset.header("Content-Type")?.hasPrefix("multipart/alternative") == true)
            #expect(reset.html.contains("#aa3300") && reset.html.contains("Acme Corp"))
            let token = try #require(reset.token)
            #expect(reset.link == "http://acme.test:0/auth/password/reset?token=" + token)
            // Their requests were worked on (the refusals are on the trail) before saying nothing went to them.
            let deadline = ContinuousClock.now + .seconds(10)
            var refusals: [String] = []
            while refusals.count < 2, ContinuousClock.now < deadline {
                refusals = gateway.auditLines().filter { $0["event"] as? String == "password_reset_request" }.compactMap { $0["error"] as? String }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(Set(refusals) == ["unknown_address", "disabled"])
            #expect(smtp.messages().allSatisfy { !$0.to.contains("nobody@acme.test") && !$0.to.contains("dis@acme.test") })

            // Too short: 422, and the link still works.
            let weak = try await gateway.post("/auth/password/reset", #"{"token":"\#(token)","new_password":"short"}"#)
            #expect(weak.status == 422)
            #expect(try await gateway.post("/auth/password/reset", #"{"token":"\#(token)","new_password":"a new long password"}"#).status == 204)
            #expect(try await gateway.post("/auth/password/reset", #"{"token":"\#(token)","new_password":"a third long password"}"#).status == 401)
            #expect(try await gateway.post("/auth/login", #"{"email":"ann@acme.test","password":"a long password"}"#).status == 401)
            #expect(try await gateway.post("/auth/login", #"{"email":"ann@acme.test","password":"a new long password"}"#).status == 200)
            #expect(try await gateway.post("/auth/refresh", #"{"refresh_token":"\#(oldRefresh)"}"#).status == 401)
            // The notice, and the trail: no secret in any log line.
            let all = try await Self.mails(smtp, to: "ann@acme.test", count: 2)
            let notice = try #require(all.first { $0.header("Subject") == "Your Acme Corp password was changed" })
            // The reset proved the address: from now on the messages greet her by name.
            #expect(notice.header("To") == "\"Test User\" <ann@acme.test>" && notice.text.hasPrefix("Hello Test User,"))
            let events = gateway.auditLines().compactMap { $0["event"] as? String }
            #expect(events.contains("password_reset_request") && events.contains("password_reset"))
            let logs = String(decoding: (try? Data(contentsOf: gateway.root.appendingPathComponent("audit.log"))) ?? Data(), as: UTF8.self)
                + gateway.accessLogLines().joined()
            #expect(!logs.contains(token) && !logs.contains(reset.code ?? "--------"))
        }
    }

    @Test func requiredVerificationRefusesLoginUntilTheCodeIsEntered() async throws {
        let smtp = try await SMTPTestServer.start()
        defer { smtp.stop() }
        try await Self.withMailGateway(smtp: "smtp://127.0.0.1:\(smtp.port)") { gateway in
            let signup = try await gateway.post("/auth/signup", host: "strict.test", #"{"email":"kim@strict.test","password":"a long password"}"#)
            #expect(signup.status == 201)
            #expect(signup.json["email_verified"] as? Bool == false)
            let refused = try await gateway.post("/auth/login", host: "strict.test", #"{"email":"kim@strict.test","password":"a long password"}"#)
            #expect(refused.status == 403)
            #expect((refused.json["detail"] as? String)?.contains("not verified") == true)
            #expect(try await gateway.post("/auth/login", host: "strict.test", #"{"email":"kim@strict.test","password":"wrong password"}"#).status == 401)
            let mail = try #require(try await Self.mails(smtp, to: "kim@strict.test", count: 1).first)
            #expect(mail.header("Subject") == "Confirm your e-mail address for strict")
            let code = try #require(mail.code)
            let wrong = code == "12345678" ? "87654321" : "12345678"
            #expect(try await gateway.post("/auth/verify-email", host: "strict.test", #"{"email":"kim@strict.test","code":"\#(wrong)"}"#).status == 401)
            for bad in ["1234567", "123456789", "12a45678"] {
                let response = try await gateway.post("/auth/verify-email", host: "strict.test", #"{"email":"kim@strict.test","code":"\#(bad)"}"#)
                #expect(response.status == 400)
            }
            #expect(try await gateway.post("/auth/verify-email", host: "strict.test", #"{"email":"kim@strict.test","code":"\#(code)"}"#).status == 204)
            let login = try await gateway.post("/auth/login", host: "strict.test", #"{"email":"kim@strict.test","password":"a long password"}"#)
            #expect(login.status == 200)
            let access = try #require(login.json["access_token"] as? String)
            let payload = try #require(Base64URL.decode(access.split(separator: ".")[1]))
            #expect((try JSONSerialization.jsonObject(with: payload) as? [String: Any])?["email_verified"] as? Bool == true)
            let me = try await gateway.get("/auth/me", host: "strict.test", token: access)
            #expect(me.json["email_verified"] as? Bool == true)
            let metrics = try await scrapeMetrics(adminPort: gateway.adminPort)
            #expect(metrics.value(#"gatehouse_logins_total{tenant="strict",result="unverified"}"#) == 1)
            #expect(gateway.auditLines().contains { $0["event"] as? String == "email_verified" })
        }
    }

    @Test func everyWrongTokenIs401AndResetOffIs404() async throws {
        let smtp = try await SMTPTestServer.start()
        defer { smtp.stop() }
        try await Self.withMailGateway(smtp: "smtp://127.0.0.1:\(smtp.port)") { gateway in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"lee@globex.test","password":"a long password"}"#)
            #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"lee@globex.test"}"#).status == 202)
            let mail = try #require(try await Self.mails(smtp, to: "lee@globex.test", count: 1).first)
            let token = try #require(mail.token)
            let tampered = String(token.dropLast()) + (token.last == "A" ? "B" : "A")
            for (host, candidate) in [
                ("globex.test", String(token.dropLast(3))), ("globex.test", tampered), ("globex.test", token + "A"),
                // Another tenant, and the other purpose.
                ("acme.test", token),
            ] {
                let response = try await gateway.post("/auth/password/reset", host: host, #"{"token":"\#(candidate)","new_password":"a new long password"}"#)
                #expect(response.status == 401)
            }
            #expect(try await gateway.post("/auth/verify-email", host: "globex.test", #"{"token":"\#(token)"}"#).status == 401)
            let page = try await gateway.get("/auth/verify-email?token=" + token, host: "globex.test")
            #expect(page.status == 401 && page.text.contains("This link no longer works"))
            // Both ways at once, or neither: 400.
            #expect(try await gateway.post("/auth/password/reset", host: "globex.test", #"{"token":"\#(token)","email":"lee@globex.test","code":"12345678","new_password":"a new long password"}"#).status == 400)
            #expect(try await gateway.post("/auth/password/reset", host: "globex.test", #"{"new_password":"a new long password"}"#).status == 400)
            // Codes that are no code at the reset endpoint: 400, and they count for nothing.
            for bad in ["1234567", "123456789", "1234567a"] {
                let response = try await gateway.post(
                    "/auth/password/reset", host: "globex.test", #"{"email":"lee@globex.test","code":"\#(bad)","new_password":"a new long password"}"#)
                #expect(response.status == 400)
            }
            // An expired request (code_ttl is at least a minute, so one is written straight into the store) and its
            // link: 401 by JSON and on the page.
            let identity = gateway.server.state.identity
            let user = try #require(try await identity.store.user(tenant: "globex", email: "lee@globex.test"))
            let expiredToken = AccountSecrets.newToken()
            let now = Int64(Date().timeIntervalSince1970)
            let expired = AccountCodeRecord(
                tenant: "globex", emailKey: "lee@globex.test", purpose: .verify, userID: user.id, codeHash: "x",
                tokenHash: identity.accountMail.secrets.tokenHash(expiredToken, tenant: "globex", purpose: .verify), createdAt: now - 1000, expiresAt: now - 1)
            _ = try await identity.store.issueAccountCode(
                expired, mail: OutboxMessage(tenant: "globex", kind: "verify", userID: user.id, email: user.email, sealedMessage: Data([0]), createdAt: now, giveUpAt: now),
                minimumInterval: 0, audit: [])
            #expect(try await gateway.post("/auth/verify-email", host: "globex.test", #"{"token":"\#(expiredToken)"}"#).status == 401)
            #expect(try await gateway.get("/auth/verify-email?token=" + expiredToken, host: "globex.test").status == 401)
            // The real one still works after all that (a wrong token is no wrong code).
            #expect(try await gateway.post("/auth/password/reset", host: "globex.test", #"{"token":"\#(token)","new_password":"a new long password"}"#).status == 204)
            // A tenant with reset off has no such endpoint.
            #expect(try await gateway.post("/auth/password/forgot", host: "noreset.test", #"{"email":"a@noreset.test"}"#).status == 404)
            #expect(try await gateway.post("/auth/password/reset", host: "noreset.test", #"{"token":"\#(token)","new_password":"a new long password"}"#).status == 404)
            #expect(try await gateway.get("/auth/password/forgot", host: "noreset.test").status == 404)
        }
    }

    @Test func tenForgotRequestsInASecondSendOneMessageAndHeaderInjectionGoesNowhere() async throws {
        let smtp = try await SMTPTestServer.start()
        defer { smtp.stop() }
        try await Self.withMailGateway(smtp: "smtp://127.0.0.1:\(smtp.port)") { gateway in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"max@globex.test","password":"a long password"}"#)
            for _ in 0..<10 {
                #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"max@globex.test"}"#).status == 202)
            }
            #expect(try await Self.mails(smtp, to: "max@globex.test", count: 1).count == 1)
            // Give any second message time to arrive before saying there is none.
            try await Task.sleep(for: .seconds(2))
            #expect(smtp.messages().filter { $0.to.contains("max@globex.test") }.count == 1)
            // A line break in the address or the name never reaches a message.
            let injected = try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"max@globex.test\r\nBcc: eve@evil.test"}"#)
            #expect(injected.status == 400)
            let name = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"nat@globex.test","password":"a long password","name":"Nat\r\nBcc: eve@evil.test"}"#)
            #expect(name.status == 422)
            // A name that is accepted (no control character) but reads like more recipients: it stays a quoted
            // display name of the one address (CLI-added users are verified, so their messages carry the name).
            let globex = try #require(gateway.server.state.tenants.resolve(host: "globex.test")).configuration
            _ = try await gateway.server.state.identity.addUser(
                tenant: globex, email: "pat@globex.test", password: "a long password", name: #"Eve" <eve@evil.test>, "x"#, roles: ["user"])
            #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"pat@globex.test"}"#).status == 202)
            let pat = try #require(try await smtp.waitForMessages(2).first { $0.to.contains("pat@globex.test") })
            #expect(pat.to == ["pat@globex.test"])
            let to = ReceivedMail(raw: pat.message).header("To") ?? ""
            #expect(to.hasSuffix(" <pat@globex.test>") && to.hasPrefix("\""), "\(to)")
            #expect(ReceivedMail(raw: pat.message).header("Bcc") == nil)
            try await Task.sleep(for: .seconds(1))
            #expect(smtp.messages().allSatisfy { !$0.to.contains("eve@evil.test") })
            #expect(smtp.messages().allSatisfy { !$0.message.contains("Bcc:") })
        }
    }

    @Test func aRefusedRecipientIsLoggedAndAuditedAndTheRequesterStillGets202() async throws {
        var options = SMTPTestServer.Options()
        options.refuseRecipients = true
        let smtp = try await SMTPTestServer.start(options)
        defer { smtp.stop() }
        try await Self.withMailGateway(smtp: "smtp://127.0.0.1:\(smtp.port)") { gateway in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"oz@globex.test","password":"a long password"}"#)
            #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"oz@globex.test"}"#).status == 202)
            let deadline = ContinuousClock.now + .seconds(15)
            var failure: [String: Any]?
            while failure == nil, ContinuousClock.now < deadline {
                failure = gateway.auditLines().first { $0["event"] as? String == "email_delivery_error" }
                try await Task.sleep(for: .milliseconds(50))
            }
            let event = try #require(failure)
            #expect(event["error"] as? String == "rejected")
            #expect(event["email"] as? String == "oz@globex.test")
            #expect(((event["details"] as? [String: String])?["reason"])?.contains("550") == true)
            #expect(try await gateway.server.state.identity.store.pendingMailCount() == 0)
        }
    }

    @Test func aServerDownAtRequestTimeGetsTheMessageWhenItComesBack() async throws {
        let port = try freeLoopbackPort()
        try await Self.withMailGateway(smtp: "smtp://127.0.0.1:\(port)") { gateway in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"pat@globex.test","password":"a long password"}"#)
            let started = ContinuousClock.now
            #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"pat@globex.test"}"#).status == 202)
            #expect(ContinuousClock.now - started < .seconds(1))
            try await Task.sleep(for: .seconds(3))
            var options = SMTPTestServer.Options()
            options.port = port
            let smtp = try await SMTPTestServer.start(options)
            defer { smtp.stop() }
            let mails = try await Self.mails(smtp, to: "pat@globex.test", count: 1, timeout: .seconds(30))
            #expect(mails.first?.token != nil)
        }
    }

    @Test func aServerThatNeverAnswersHoldsUpNothing() async throws {
        let silent = try SilentListener()
        defer { silent.close() }
        try await Self.withMailGateway(smtp: "smtp://127.0.0.1:\(silent.port)") { gateway in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"quinn@globex.test","password":"a long password"}"#)
            #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"quinn@globex.test"}"#).status == 202)
            // While the session waits for a greeting that never comes (30 s), the gateway answers as usual: each
            // request well within that, however loaded the machine (alone, each takes a few milliseconds).
            for _ in 0..<20 {
                let started = ContinuousClock.now
                #expect(try await gateway.get("/", host: "globex.test").status == 200)
                #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"quinn@globex.test"}"#).status == 202)
                #expect(ContinuousClock.now - started < .seconds(3))
            }
            #expect(try await gateway.server.state.identity.store.pendingMailCount() == 1)
            // Stopping does not wait for the silent server either.
            let stopping = ContinuousClock.now
            await gateway.stopMail()
            #expect(ContinuousClock.now - stopping < .seconds(5))
        }
    }

    @Test func startTLSWithAuthAndAPrivateCA() async throws {
        let authority = try await offThread { try TestCertificateAuthority() }
        var options = SMTPTestServer.Options()
        options.tls = (authority.serverCertificate, authority.serverKey)
        options.requireTLS = true
        options.credentials = ("mailer", "s3cret pass")
        let smtp = try await SMTPTestServer.start(options)
        defer {
            smtp.stop()
            authority.remove()
        }
        try await Self.withMailGateway(smtp: "smtp://mailer:s3cret%20pass@localhost:\(smtp.port)?starttls=required&ca=\(authority.caCertificate)") { gateway in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"ray@globex.test","password":"a long password"}"#)
            #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"ray@globex.test"}"#).status == 202)
            let mail = try #require(try await Self.mails(smtp, to: "ray@globex.test", count: 1).first)
            #expect(mail.code != nil)
        }
    }

    @Test func theWebhookReceivesTheMessageAsJSON() async throws {
        let receiver = try await RecordingUpstream.start()
        try await TestGateway.with(
            gatewayExtra: authGatewayExtra + "email:\n  webhook: http://127.0.0.1:\(receiver.port)/send\n  from: no-reply@gatehouse.test\n", tenants: Self.tenants,
            scripted: [:]
        ) { gateway in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"sam@globex.test","password":"a long password"}"#)
            #expect(try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"sam@globex.test"}"#).status == 202)
            let deadline = ContinuousClock.now + .seconds(15)
            while receiver.view().requests.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(25)) }
            let request = try #require(receiver.view().requests.first)
            #expect(request.head.method == .POST && request.head.uri == "/send")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
            #expect(json["tenant"] as? String == "globex" && json["kind"] as? String == "reset" && json["to"] as? String == "sam@globex.test")
            #expect((json["subject"] as? String) == "Reset your globex password")
            let mail = ReceivedMail(text: json["text"] as? String ?? "", html: json["html"] as? String ?? "")
            #expect(mail.code != nil && mail.token != nil)
        }
        await receiver.stop()
    }

    /// §11's no oracle, measured: the forgot endpoint answers an address with an account and one without in the same
    /// time. 50 requests each, alternating; the medians must be within 10 ms (they are within a fraction of one).
    @Test func forgotTakesTheSameTimeForAnAccountAndForNobody() async throws {
        let smtp = try await SMTPTestServer.start()
        defer { smtp.stop() }
        try await Self.withMailGateway(smtp: "smtp://127.0.0.1:\(smtp.port)") { gateway in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"tim@globex.test","password":"a long password"}"#)
            var existing: [Duration] = []
            var unknown: [Duration] = []
            for index in 0..<100 {
                let email = index % 2 == 0 ? "tim@globex.test" : "nobody\(index)@globex.test"
                let started = ContinuousClock.now
                let response = try await gateway.post("/auth/password/forgot", host: "globex.test", #"{"email":"\#(email)"}"#)
                let elapsed = ContinuousClock.now - started
                #expect(response.status == 202)
                if index % 2 == 0 { existing.append(elapsed) } else { unknown.append(elapsed) }
            }
            let medians = (existing.sorted()[25], unknown.sorted()[25])
            let difference = medians.0 > medians.1 ? medians.0 - medians.1 : medians.1 - medians.0
            print("forgot medians: account \(medians.0), nobody \(medians.1), difference \(difference)")
            #expect(difference < .milliseconds(10))
        }
    }
}
