import Foundation
import GatehouseTestSupport
import Testing

/// The whole browser journey of §7 in a real, headless Chromium driven over WebDriver: protected page, login
/// redirect, sign-up, sign-in, back to the page with the identity headers echoed, sign-out, login again.
///
/// Screenshots of the login and signup pages are written to `test-artifacts/` (not committed). Set
/// `GATEHOUSE_SKIP_BROWSER=1` to skip this test on a machine without Chromium; `.ci/run` installs it.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["GATEHOUSE_SKIP_BROWSER"] != "1"))
struct BrowserTests {
    static let tenant = """
        hosts: [acme.localhost]
        signup: {enabled: true}
        branding: {display_name: Acme Widgets, accent_color: "#0b5fff"}
        routes:
          - {path: /app, upstream: "{{ECHO}}"}
          - {path: /, upstream: "{{ECHO}}", require: public}
        """

    /// `test-artifacts/` at the package root.
    static let artifacts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("test-artifacts").path

    @Test func aPersonSignsUpSignsInUsesTheAppAndSignsOut() async throws {
        try await TestGateway.with(gatewayExtra: authGatewayExtra, tenants: ["acme": Self.tenant], scripted: [:]) { gateway in
            // Chromium resolves every *.localhost name to loopback by itself.
            let origin = "http://acme.localhost:\(gateway.port)"
            let browser = try await WebDriver()
            do {
                try await browser.open(origin + "/app/dashboard?tab=2")
                let login = try await browser.waitForURL { $0.path == "/auth/login" }
                #expect(login.query == "rd=/app/dashboard%3Ftab%3D2")
                #expect(try await browser.text("h1") == "Sign in")
                #expect(try await browser.text(".tenant") == "Acme Widgets")
                try await browser.screenshot(to: Self.artifacts + "/login-page.png")
                // On a phone-sized screen the form fits without sideways scrolling.
                try await browser.resize(width: 390, height: 844)
                let overflow = try await browser.evaluate("return document.documentElement.scrollWidth > window.innerWidth")
                #expect(overflow as? Bool == false)
                try await browser.screenshot(to: Self.artifacts + "/login-page-phone.png")
                try await browser.resize(width: 1024, height: 900)

                try await browser.click("a[href^='/auth/signup']")
                try await browser.waitForURL { $0.path == "/auth/signup" }
                #expect(try await browser.text("h1") == "Create an account")
                try await browser.screenshot(to: Self.artifacts + "/signup-page.png")
                try await browser.type("Ann <b>Example</b>", into: "#name")
                try await browser.type("ann@example.com", into: "#email")
                try await browser.type("correct horse battery", into: "#password")
                try await browser.click("button[type=submit]")

                // Signing up signs in (§7) and goes on to the page that asked.
                let arrived = try await browser.waitForURL { $0.path == "/app/dashboard" }
                #expect(arrived.query == "tab=2")
                try await browser.open(origin + "/auth/logout")
                try await browser.click("button[type=submit]")
                _ = try await browser.waitForURL { $0.path == "/auth/login" && $0.query == "signed_out=1" }
                try await browser.open(origin + "/app/dashboard?tab=2")
                _ = try await browser.waitForURL { $0.path == "/auth/login" && $0.query == "rd=/app/dashboard%3Ftab%3D2" }
                try await browser.type("ann@example.com", into: "#email")
                try await browser.type("not the password", into: "#password")
                try await browser.click("button[type=submit]")
                #expect(try await browser.waitForText("#form-error") == "The email or password is wrong.")
                #expect(try await browser.property("value", of: "#email") == "ann@example.com")
                try await browser.type("correct horse battery", into: "#password")
                try await browser.click("button[type=submit]")

                let landed = try await browser.waitForURL { $0.path == "/app/dashboard" }
                #expect(landed.query == "tab=2")
                let echoed = try JSONSerialization.jsonObject(with: Data(try await browser.text("body").utf8)) as? [String: Any]
                let headers = echoed?["headers"] as? [String: String] ?? [:]
                #expect(headers["x-user-email"] == "ann@example.com")
                #expect(headers["x-user-name"] == "Ann <b>Example</b>")
                #expect(headers["x-user-roles"] == "user")
                #expect(headers["x-tenant-id"] == "acme")
                #expect(headers["x-user-id"]?.count == 36)
                #expect(headers["cookie"] == nil, "the session cookie never reaches the upstream")

                try await browser.open(origin + "/auth/logout")
                #expect(try await browser.text(".who") == "Signed in as ann@example.com.")
                try await browser.click("button[type=submit]")
                let signedOut = try await browser.waitForURL { $0.path == "/auth/login" && $0.query == "signed_out=1" }
                #expect(signedOut.path == "/auth/login")
                #expect(try await browser.text(".notice") == "You are signed out.")

                try await browser.open(origin + "/app/dashboard")
                let again = try await browser.waitForURL { $0.path == "/auth/login" }
                #expect(again.query == "rd=/app/dashboard")
            } catch {
                await browser.quit()
                throw error
            }
            await browser.quit()
        }
    }

    /// §11 in the browser: "Forgot password?" on the login page, the address form, "check your e-mail", the message
    /// (rendered by Chromium too, as `test-artifacts/reset-message.png`), its link, the new-password form, the login
    /// page with a notice, and signing in with the new password.
    @Test func aPersonWhoForgotTheirPasswordResetsItByEmail() async throws {
        let smtp = try await SMTPTestServer.start()
        defer { smtp.stop() }
        let email = "email:\n  smtp: smtp://127.0.0.1:\(smtp.port)\n  from: \"Acme Widgets <accounts@acme.localhost>\"\n"
        try await TestGateway.with(gatewayExtra: authGatewayExtra + email, tenants: ["acme": Self.tenant], scripted: [:]) { gateway in
            let origin = "http://acme.localhost:\(gateway.port)"
            let signup = try await gateway.post("/auth/signup", host: "acme.localhost", #"{"email":"bea@example.com","password":"my old password","name":"Bea"}"#)
            #expect(signup.status == 201)
            let browser = try await WebDriver()
            do {
                try await browser.open(origin + "/auth/login")
                try await browser.click("a[href='/auth/password/forgot']")
                try await browser.waitForURL { $0.path == "/auth/password/forgot" }
                #expect(try await browser.text("h1") == "Reset your password")
                try await browser.screenshot(to: Self.artifacts + "/forgot-page.png")
                try await browser.type("bea@example.com", into: "#email")
                try await browser.click("button[type=submit]")
                #expect(try await browser.waitForText("h1") == "Check your e-mail")
                #expect(try await browser.text(".notice").hasPrefix("If an account with this address can receive it"))

                let received = try await smtp.waitForMessages(1, timeout: .seconds(15))
                let mail = ReceivedMail(raw: try #require(received.first?.message))
                #expect(received.first?.to == ["bea@example.com"])
                #expect(mail.header("Subject") == "Reset your Acme Widgets password")
                // How the message looks, as a mail client would show its HTML part.
                let page = Self.artifacts + "/reset-message.html"
                try FileManager.default.createDirectory(atPath: Self.artifacts, withIntermediateDirectories: true)
                try mail.html.write(toFile: page, atomically: true, encoding: .utf8)
                try await browser.open("file://" + page)
                #expect(try await browser.text("a").contains("Choose a new password"))
                try await browser.screenshot(to: Self.artifacts + "/reset-message.png")

                // The link: its path and token on this test's port (the issuer names the configured port, 0 here).
                let linkText = try #require(mail.link)
                let link = try #require(URLComponents(string: linkText))
                #expect(link.path == "/auth/password/reset")
                try await browser.open(origin + link.path + "?" + (link.query ?? ""))
                #expect(try await browser.waitForText("h1") == "Choose a new password")
                try await browser.screenshot(to: Self.artifacts + "/reset-page.png")
                try await browser.type("short", into: "#password")
                // The browser's own minlength check stops a short one; the server's is tested without a browser.
                _ = try await browser.evaluate("document.querySelector('#password').value = ''; return true")
                try await browser.type("my new password!", into: "#password")
                try await browser.click("button[type=submit]")
                let login = try await browser.waitForURL { $0.path == "/auth/login" }
                #expect(login.query == "reset=1")
                #expect(try await browser.text(".notice") == "Your password was changed. Sign in with the new one.")
                try await browser.type("bea@example.com", into: "#email")
                try await browser.type("my new password!", into: "#password")
                try await browser.click("button[type=submit]")
                _ = try await browser.waitForURL { $0.path == "/" }
                let echoed = try JSONSerialization.jsonObject(with: Data(try await browser.text("body").utf8)) as? [String: Any]
                #expect((echoed?["headers"] as? [String: String])?["x-user-email"] == "bea@example.com")
                // And the notice that the password changed.
                let all = try await smtp.waitForMessages(2, timeout: .seconds(15))
                #expect(all.map { ReceivedMail(raw: $0.message).header("Subject") }.contains("Your Acme Widgets password was changed"))
            } catch {
                await browser.quit()
                throw error
            }
            await browser.quit()
        }
    }
}
