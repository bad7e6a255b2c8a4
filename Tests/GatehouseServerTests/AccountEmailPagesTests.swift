import Foundation
import GatehouseTestSupport
import Testing

@testable import GatehouseServer

/// The HTML side of §11 without a browser engine: CSRF on every form, the "check your e-mail" page after an HTML
/// sign-up where verification is required, the login form's resend button, and the reset form's errors.
@Suite struct AccountEmailPagesTests {
    static func withGateway(_ body: (TestGateway, SMTPTestServer) async throws -> Void) async throws {
        let smtp = try await SMTPTestServer.start()
        defer { smtp.stop() }
        try await TestGateway.with(
            gatewayExtra: AccountEmailEndToEndTests.gatewayExtra(smtp: "smtp://127.0.0.1:\(smtp.port)"), tenants: AccountEmailEndToEndTests.tenants,
            scripted: [:]
        ) { gateway in try await body(gateway, smtp) }
    }

    @Test func anHTMLSignUpWhereVerificationIsRequiredSaysCheckYourEmailAndTheLoginFormOffersToResend() async throws {
        try await Self.withGateway { gateway, smtp in
            var browser = TestBrowser(port: gateway.port, host: "strict.test")
            _ = try await browser.open("/auth/signup")
            let signup = try await browser.submit("/auth/signup", [("email", "uma@strict.test"), ("password", "a long password"), ("name", "Uma"), ("rd", "/")])
            #expect(signup.status == 200)
            #expect(signup.text.contains("Check your e-mail") && signup.text.contains("uma@strict.test"))
            #expect(browser.cookies["gatehouse_session"] == nil)
            _ = try await AccountEmailEndToEndTests.mails(smtp, to: "uma@strict.test", count: 1)

            _ = try await browser.open("/auth/login")
            let login = try await browser.submit("/auth/login", [("email", "uma@strict.test"), ("password", "a long password"), ("rd", "/")])
            #expect(login.status == 403)
            #expect(login.text.contains("Confirm your e-mail address first"))
            #expect(login.text.contains("action=\"/auth/verify-email/resend\""))
            #expect(browser.cookies["gatehouse_session"] == nil)
            // The resend button; within the minute of the sign-up's message it sends nothing more, and says the same.
            let resend = try await browser.submit("/auth/verify-email/resend", [("email", "uma@strict.test")])
            #expect(resend.status == 200 && resend.text.contains("Check your e-mail"))
            try await Task.sleep(for: .seconds(2))
            #expect(smtp.messages().filter { $0.to.contains("uma@strict.test") }.count == 1)
            // Without the form's token: refused.
            let forged = try await browser.submit("/auth/verify-email/resend", [("email", "uma@strict.test"), ("csrf_token", "forged")])
            #expect(forged.status == 403)
            // The link from the message, opened: the address is confirmed, and signing in works.
            let mail = try #require(try await AccountEmailEndToEndTests.mails(smtp, to: "uma@strict.test", count: 1).first)
            // Opening the link (twice, or as HEAD, as a mail scanner would) shows a button and spends nothing.
            for _ in 0..<2 {
                let page = try await browser.open("/auth/verify-email?token=" + (mail.token ?? ""))
                #expect(page.status == 200 && page.text.contains("Confirm my address"))
                #expect(page.header("Referrer-Policy") == "strict-origin")
            }
            #expect(try await browser.send("/auth/verify-email?token=" + (mail.token ?? ""), method: "HEAD").status == 200)
            #expect(try await browser.submit("/auth/verify-email", [("token", mail.token ?? ""), ("csrf_token", "forged")]).status == 403)
            let confirmed = try await browser.submit("/auth/verify-email", [("token", mail.token ?? "")])
            #expect(confirmed.status == 200 && confirmed.text.contains("Address confirmed"))
            #expect(try await browser.open("/auth/verify-email?token=" + (mail.token ?? "")).status == 401)
            _ = try await browser.open("/auth/login")
            let again = try await browser.submit("/auth/login", [("email", "uma@strict.test"), ("password", "a long password"), ("rd", "/")])
            #expect(again.status == 303 && browser.cookies["gatehouse_session"] != nil)
        }
    }

    @Test func theResetFormsCheckTheirTokenAndTheirPassword() async throws {
        try await Self.withGateway { gateway, smtp in
            _ = try await gateway.post("/auth/signup", host: "globex.test", #"{"email":"vic@globex.test","password":"a long password"}"#)
            var browser = TestBrowser(port: gateway.port, host: "globex.test")
            let loginPage = try await browser.open("/auth/login")
            #expect(loginPage.text.contains("href=\"/auth/password/forgot\""))
            let form = try await browser.open("/auth/password/forgot")
            #expect(form.status == 200 && form.text.contains("Reset your password"))
            // Forged: 403, and nothing is sent.
            #expect(try await browser.submit("/auth/password/forgot", [("email", "vic@globex.test")], origin: "http://evil.test").status == 403)
            #expect(try await browser.submit("/auth/password/forgot", [("email", "not an address")]).status == 400)
            let sent = try await browser.submit("/auth/password/forgot", [("email", "vic@globex.test")])
            let nobody = try await browser.submit("/auth/password/forgot", [("email", "nobody@globex.test")])
            #expect(sent.status == 200 && nobody.status == 200 && sent.text.contains("Check your e-mail"))
            let mail = try #require(try await AccountEmailEndToEndTests.mails(smtp, to: "vic@globex.test", count: 1).first)
            let token = try #require(mail.token)

            #expect(try await browser.open("/auth/password/reset?token=nonsense").status == 401)
            // Looking at the form twice spends nothing.
            for _ in 0..<2 {
                let page = try await browser.open("/auth/password/reset?token=" + token)
                #expect(page.status == 200 && page.text.contains("Choose a new password"))
            }
            let weak = try await browser.submit("/auth/password/reset", [("token", token), ("password", "short")])
            #expect(weak.status == 422 && weak.text.contains("Use at least 10 characters."))
            #expect(try await browser.submit("/auth/password/reset", [("token", token), ("password", "a new long password"), ("csrf_token", "x")]).status == 403)
            let done = try await browser.submit("/auth/password/reset", [("token", token), ("password", "a new long password")])
            #expect(done.status == 303 && done.header("Location") == "/auth/login?reset=1")
            #expect(browser.cookies["gatehouse_session"] == nil, "a reset does not sign in")
            let spent = try await browser.submit("/auth/password/reset", [("token", token), ("password", "a third long password")])
            #expect(spent.status == 401 && spent.text.contains("This link no longer works"))
            #expect(try await gateway.post("/auth/login", host: "globex.test", #"{"email":"vic@globex.test","password":"a new long password"}"#).status == 200)
        }
    }
}
