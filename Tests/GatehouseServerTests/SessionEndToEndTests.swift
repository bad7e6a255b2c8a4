import Foundation
@testable import GatehouseIdentity
import GatehouseTestSupport
import Testing
@testable import GatehouseServer

/// Browser sessions (§7) through real sockets: pages, forms, cookies, CSRF, redirects and the proxy path.
@Suite struct SessionEndToEndTests {
    /// Signs `email` up and in through the HTML forms; returns the browser holding the session.
    static func signedInBrowser(_ gateway: TestGateway, _ email: String, name: String = "Ann") async throws -> TestBrowser {
        var browser = TestBrowser(port: gateway.port)
        _ = try await browser.open("/auth/signup")
        let signup = try await browser.submit("/auth/signup", [("name", name), ("email", email), ("password", "a long password"), ("rd", "/")])
        precondition(signup.status == 303 && browser.cookies["gatehouse_session"] != nil, "signup failed: \(signup.status) \(signup.text)")
        return browser
    }

    @Test func aBrowserIsSentToLoginSignsUpSignsInAndComesBack() async throws {
        try await withAuthGateway { gateway in
            var browser = TestBrowser(port: gateway.port)
            let protected = try await browser.open("/private/orders?id=7")
            #expect(protected.status == 302)
            #expect(protected.header("location") == "/auth/login?rd=/private/orders%3Fid%3D7")

            let loginPage = try await browser.open("/auth/login?rd=/private/orders%3Fid%3D7")
            #expect(loginPage.status == 200)
            #expect(loginPage.header("content-type") == "text/html; charset=utf-8")
            #expect(loginPage.header("content-security-policy")?.contains("frame-ancestors 'none'") == true)
            #expect(loginPage.text.contains("<form method=\"post\" action=\"/auth/login\""))
            #expect(loginPage.text.contains("name=\"rd\" value=\"/private/orders?id=7\""))
            #expect(loginPage.text.contains("href=\"/auth/signup?rd=/private/orders%3Fid%3D7\""))
            #expect(browser.cookies["gatehouse_csrf"] != nil, "the page binds its CSRF token to this browser")
            #expect(!browser.csrfToken.isEmpty)

            let signupPage = try await browser.open("/auth/signup?rd=/private/orders%3Fid%3D7")
            #expect(signupPage.status == 200)
            let signup = try await browser.submit(
                "/auth/signup", [("name", "Ann"), ("email", "ann@acme.test"), ("password", "a long password"), ("rd", "/private/orders?id=7")])
            #expect(signup.status == 303)
            #expect(signup.header("location") == "/private/orders?id=7", "signing up signs in and goes on to rd (§7)")
            let signupCookie = try #require(signup.headers("set-cookie").first { $0.hasPrefix("gatehouse_session=") })
            #expect(signupCookie.hasSuffix("; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax"))
            #expect(try await browser.open("/private/orders").status == 200)
            // Sign out, and in again through the login form.
            #expect(try await browser.submit("/auth/logout", []).status == 303)
            #expect(try await browser.open("/auth/login?created=1&rd=/private").text.contains("Your account is ready"))

            let login = try await browser.submit("/auth/login", [("email", "ann@acme.test"), ("password", "a long password"), ("rd", "/private/orders?id=7")])
            #expect(login.status == 303)
            #expect(login.header("location") == "/private/orders?id=7")
            let cookie = try #require(login.headers("set-cookie").first { $0.hasPrefix("gatehouse_session=") })
            #expect(cookie.hasSuffix("; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax"), "no Secure over plain HTTP")

            let landed = try await browser.open("/private/orders?id=7", headers: [("Cookie", "theme=dark")])
            #expect(landed.status == 200)
            let seen = landed.echoedHeaders
            #expect(seen["x-user-email"] == "ann@acme.test")
            #expect(seen["x-user-name"] == "Ann")
            #expect(seen["x-user-roles"] == "user")
            #expect(seen["x-tenant-id"] == "acme")
            #expect(seen["x-user-id"]?.count == 36)
            #expect(seen["cookie"]?.contains("gatehouse_session") != true, "the session cookie never reaches the upstream")
            #expect(seen["cookie"]?.contains("theme=dark") == true, "other cookies do")

            let alreadyIn = try await browser.open("/auth/login?rd=/private/orders%3Fid%3D7")
            #expect(alreadyIn.status == 303, "a signed-in browser skips the form")
            #expect(alreadyIn.header("location") == "/private/orders?id=7")

            let me = try await browser.send("/auth/me")
            #expect(me.status == 200)
            #expect(me.json["email"] as? String == "ann@acme.test")

            let signOutPage = try await browser.open("/auth/logout")
            #expect(signOutPage.text.contains("Signed in as <strong>ann@acme.test</strong>"))
            let oldCookies = browser.cookies
            let logout = try await browser.submit("/auth/logout", [])
            #expect(logout.status == 303)
            #expect(logout.header("location") == "/auth/login?signed_out=1")
            #expect(logout.headers("set-cookie").contains("gatehouse_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"))
            #expect(browser.cookies["gatehouse_session"] == nil)

            let again = try await browser.open("/private/orders?id=7")
            #expect(again.status == 302, "sent to login again")
            // The old cookie, replayed, is revoked: treated as no session, and cleared.
            var replay = browser
            replay.cookies = oldCookies
            let revoked = try await replay.open("/private")
            #expect(revoked.status == 302)
            #expect(revoked.headers("set-cookie").contains { $0.hasPrefix("gatehouse_session=;") })
        }
    }

    @Test func formsWithoutAValidCSRFTokenAreRefusedAndShownAgain() async throws {
        try await withAuthGateway { gateway in
            var browser = TestBrowser(port: gateway.port)
            _ = try await browser.open("/auth/login")
            let good = browser.csrfToken
            var stranger = TestBrowser(port: gateway.port)
            _ = try await stranger.open("/auth/login")

            let cases: [(String, [(String, String)], String??)] = [
                ("no token", [("email", "a@acme.test"), ("password", "a long password"), ("csrf_token", "")], nil),
                ("wrong token", [("email", "a@acme.test"), ("password", "a long password"), ("csrf_token", String(good.reversed()))], nil),
                ("another browser's token", [("email", "a@acme.test"), ("password", "a long password"), ("csrf_token", stranger.csrfToken)], nil),
                ("foreign origin", [("email", "a@acme.test"), ("password", "a long password")], .some("https://evil.example")),
            ]
            for (label, fields, origin) in cases {
                browser.csrfToken = good
                let refused = try await browser.submit("/auth/login", fields, origin: origin)
                #expect(refused.status == 403, "\(label)")
                #expect(refused.header("content-type") == "text/html; charset=utf-8", "\(label)")
                #expect(refused.text.contains("This form has expired or did not come from this site"), "\(label)")
                #expect(refused.text.contains("<form method=\"post\" action=\"/auth/login\""), "the form again: \(label)")
                #expect(refused.headers("set-cookie").allSatisfy { !$0.hasPrefix("gatehouse_session=") }, "\(label)")
            }
            // Without the binding cookie at all, even a token that was once good fails.
            var cookieless = browser
            cookieless.cookies = [:]
            #expect(try await cookieless.submit("/auth/login", [("email", "a@acme.test"), ("password", "x")]).status == 403)
            // A body that is not a form at all: 400, the form again.
            let garbled = try await browser.send(
                "/auth/login", method: "POST", headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", browser.origin)],
                body: "email=%ZZ&password=x")
            #expect(garbled.status == 400)
            #expect(garbled.text.contains("The form could not be read."))
            let oversized = try await browser.send(
                "/auth/login", method: "POST", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: "email=" + String(repeating: "a", count: 5000))
            #expect(oversized.status == 413)
            // A logout with a cookie that names no session: 401, and the cookie is cleared.
            let stale = try await requestOffThread(
                port: gateway.port, "/auth/logout", method: "POST",
                headers: [("Cookie", "gatehouse_session=\(String(repeating: "A", count: 43))"), ("Origin", browser.origin)])
            #expect(stale.status == 401)
            #expect(stale.header("set-cookie")?.hasPrefix("gatehouse_session=;") == true)
            let signup = try await browser.submit("/auth/signup", [("email", "b@acme.test"), ("password", "a long password"), ("csrf_token", "forged")])
            #expect(signup.status == 403)
            #expect(try await gateway.server.state.identity.store.user(tenant: "acme", email: "b@acme.test") == nil)
        }
    }

    @Test func aWrongPasswordShowsTheFormAgainWithoutSayingWhetherTheEmailExists() async throws {
        try await withAuthGateway { gateway in
            var browser = try await Self.signedInBrowser(gateway, "ann@acme.test")
            browser.cookies["gatehouse_session"] = nil
            _ = try await browser.open("/auth/login")
            let wrong = try await browser.submit("/auth/login", [("email", "ann@acme.test"), ("password", "not the password")])
            let unknown = try await browser.submit("/auth/login", [("email", "nobody@acme.test"), ("password", "not the password")])
            for response in [wrong, unknown] {
                #expect(response.status == 401)
                #expect(response.text.contains("role=\"alert\" id=\"form-error\">The email or password is wrong.</p>"))
                #expect(response.headers("set-cookie").allSatisfy { !$0.hasPrefix("gatehouse_session=") })
            }
            let strip = { (html: String) in html.replacingOccurrences(of: browser.csrfToken, with: "").replacingOccurrences(of: "nobody@", with: "ann@") }
            #expect(strip(wrong.text) == strip(unknown.text), "the same page either way")
            #expect(wrong.text.contains("value=\"ann@acme.test\""), "the email is kept")
        }
    }

    @Test(arguments: [
        "//evil.example", "https://evil.example", "/\\evil.example", "/%2F%2Fevil.example", "%2F%2Fevil.example", "/%5Cevil.example",
        "/%252F%252Fevil.example", "http:evil.example", "/\t/evil.example", "javascript:alert(1)",
    ])
    func aRedirectTargetOffThisTenantGoesToTheRoot(_ target: String) async throws {
        try await withAuthGateway { gateway in
            var browser = TestBrowser(port: gateway.port)
            _ = try await browser.open("/auth/signup")
            _ = try await browser.submit("/auth/signup", [("email", "ann@acme.test"), ("password", "a long password")])
            let login = try await browser.submit("/auth/login", [("email", "ann@acme.test"), ("password", "a long password"), ("rd", target)])
            #expect(login.status == 303)
            #expect(login.header("location") == "/")
            // The GET form too: the page carries the safe target in its hidden field.
            browser.cookies["gatehouse_session"] = nil
            let page = try await browser.open("/auth/login?rd=" + TestBrowser.formEscaped(target))
            #expect(page.text.contains("name=\"rd\" value=\"/\""))
        }
    }

    @Test func aCookieAuthenticatedUnsafeRequestNeedsAnOriginOnTheTenant() async throws {
        try await withAuthGateway { gateway in
            let browser = try await Self.signedInBrowser(gateway, "ann@acme.test")
            let json = [("Content-Type", "application/json")]
            let foreign = try await browser.send("/private/x", method: "POST", headers: json + [("Origin", "https://evil.example")], body: "{}")
            #expect(foreign.status == 403)
            #expect(foreign.json["detail"] as? String == "A POST authenticated by the session cookie needs an Origin (or Referer) on one of the tenant's hosts.")
            #expect(try await browser.send("/private/x", method: "DELETE").status == 403, "no Origin and no Referer")
            #expect(try await browser.send("/private/x", method: "PUT", headers: [("Origin", "null")], body: "x").status == 403)
            #expect(try await browser.send("/private/x", method: "POST", headers: [("Origin", "http://globex.test")], body: "x").status == 403, "another tenant")
            #expect(try await browser.send("/private/x", method: "POST", headers: [("Referer", "https://evil.example/acme.test")], body: "x").status == 403)

            let same = try await browser.send("/private/x", method: "POST", headers: json + [("Origin", browser.origin)], body: "{}")
            #expect(same.status == 200)
            #expect(same.echoedHeaders["x-user-email"] == "ann@acme.test")
            #expect(try await browser.send("/private/x", method: "PATCH", headers: [("Referer", "http://acme.test:1/page")], body: "x").status == 200)
            #expect(try await browser.send("/private/x").status == 200, "safe methods need no Origin")
            // Logout by cookie obeys the same rule.
            #expect(try await browser.send("/auth/logout", method: "POST", headers: [("Origin", "https://evil.example")]).status == 403)
            #expect(try await browser.send("/private/x").status == 200, "the refused logout did nothing")
            #expect(try await browser.send("/auth/logout", method: "POST", headers: [("Origin", browser.origin)]).status == 204)
            #expect(try await browser.send("/private/x").status == 401)

            // A bearer-authenticated request is not a browser's ambient credential: no Origin needed.
            let (token, _) = try await gateway.logIn("ann@acme.test")
            let bearer = try await requestOffThread(port: gateway.port, "/private/x", method: "POST", headers: [("Authorization", "Bearer \(token)")], body: "x")
            #expect(bearer.status == 200)
        }
    }

    @Test func forgedExpiredRevokedAndForeignCookiesAreNoSession() async throws {
        try await withAuthGateway { gateway in
            let identity = gateway.server.state.identity
            let browser = try await Self.signedInBrowser(gateway, "ann@acme.test")
            let live = try #require(browser.cookies["gatehouse_session"])
            let user = try #require(try await identity.store.user(tenant: "acme", email: "ann@acme.test"))

            let expired = IdentityService.randomToken()
            let now = Int64(Date().timeIntervalSince1970)
            try await identity.store.insertSession(
                SessionRecord(hash: IdentityService.hashToken(expired), tenant: "acme", sid: UUID().uuidString.lowercased(), userID: user.id,
                    createdAt: now - 8 * 86_400, lastSeenAt: now - 60, expiresAt: now - 86_400))
            let idle = IdentityService.randomToken()
            try await identity.store.insertSession(
                SessionRecord(hash: IdentityService.hashToken(idle), tenant: "acme", sid: UUID().uuidString.lowercased(), userID: user.id,
                    createdAt: now - 86_400, lastSeenAt: now - 13 * 3600, expiresAt: now + 86_400))
            let revokedBrowser = try await Self.signedInBrowser(gateway, "bob@acme.test", name: "Bob")
            let revoked = try #require(revokedBrowser.cookies["gatehouse_session"])
            try await identity.endSession(tenant: gateway.server.state.tenants.tenants["acme"]!.configuration, cookie: revoked)

            for (label, cookie) in [
                ("forged", IdentityService.randomToken()), ("malformed", "<script>"), ("empty", ""), ("expired", expired), ("idle", idle),
                ("revoked", revoked), ("tampered", String(live.dropLast()) + (live.hasSuffix("A") ? "B" : "A")),
            ] {
                let api = try await requestOffThread(port: gateway.port, "/private", headers: [("Cookie", "gatehouse_session=\(cookie)")])
                #expect(api.status == 401, "\(label)")
                let page = try await requestOffThread(
                    port: gateway.port, "/private", headers: [("Cookie", "gatehouse_session=\(cookie)"), ("Accept", "text/html")])
                #expect(page.status == 302, "\(label)")
                let publicRoute = try await requestOffThread(port: gateway.port, "/", headers: [("Cookie", "gatehouse_session=\(cookie)")])
                #expect(publicRoute.status == 200, "\(label)")
                #expect(publicRoute.echoedHeaders["x-user-id"] == nil, "\(label)")
            }
            // A live session of acme means nothing at globex.
            let elsewhere = try await requestOffThread(port: gateway.port, "/private", host: "globex.test", headers: [("Cookie", "gatehouse_session=\(live)")])
            #expect(elsewhere.status == 401)
            #expect(try await browser.send("/private").status == 200, "the live one still works")
        }
    }

    @Test func aSessionThisProcessHasNotSeenIsFetchedFromTheStoreWithTheRequestBodyHeldBack() async throws {
        try await withAuthGateway { gateway in
            let identity = gateway.server.state.identity
            let browser = try await Self.signedInBrowser(gateway, "ann@acme.test")
            let cookie = try #require(browser.cookies["gatehouse_session"])
            // As if another replica had started it: this process's memory does not know it.
            identity.sessions.remove(hash: IdentityService.hashToken(cookie))
            let body = String(repeating: "0123456789", count: 3000)
            let response = try await browser.send(
                "/private/upload", method: "POST", headers: [("Origin", browser.origin), ("Content-Type", "text/plain")], body: body)
            #expect(response.status == 200)
            #expect(response.echoedHeaders["x-user-email"] == "ann@acme.test")
            #expect(response.json["body_length"] as? Int == body.utf8.count)

            // Pipelined behind such a request, the next one waits its turn.
            identity.sessions.remove(hash: IdentityService.hashToken(cookie))
            let connection = try RawConnection(port: gateway.port)
            let request = "GET /private/a HTTP/1.1\r\nHost: acme.test\r\nCookie: gatehouse_session=\(cookie)\r\n\r\n"
            try connection.send(request + request.replacingOccurrences(of: "/private/a", with: "/private/b"))
            let first = try connection.readResponse()
            let second = try connection.readResponse()
            #expect(first.json["path"] as? String == "/private/a")
            #expect(second.json["path"] as? String == "/private/b")
            #expect(second.echoedHeaders["x-user-email"] == "ann@acme.test")
        }
    }

    @Test func theBearerTokenWinsOverTheSessionCookie() async throws {
        try await withAuthGateway { gateway in
            let ann = try await Self.signedInBrowser(gateway, "ann@acme.test")
            let (bobToken, _) = try await gateway.signUpAndLogIn("bob@acme.test")
            let both = try await ann.send("/private", headers: [("Authorization", "Bearer \(bobToken)")])
            #expect(both.echoedHeaders["x-user-email"] == "bob@acme.test")
            let badBearer = try await ann.send("/private", headers: [("Authorization", "Bearer not.a.token")])
            #expect(badBearer.status == 401, "an invalid bearer token is not rescued by the cookie")
            #expect(try await ann.send("/auth/me", headers: [("Authorization", "Bearer \(bobToken)")]).json["email"] as? String == "bob@acme.test")
        }
    }

    @Test func htmlInTheNameIsShownEscaped() async throws {
        try await withAuthGateway { gateway in
            var browser = TestBrowser(port: gateway.port)
            _ = try await browser.open("/auth/signup")
            let name = "<script>alert('x')</script>"
            let refused = try await browser.submit("/auth/signup", [("name", name), ("email", "ann@acme.test"), ("password", "short")])
            #expect(refused.status == 422)
            #expect(!refused.text.contains("<script>"))
            #expect(refused.text.contains("value=\"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\""))
            #expect(refused.text.contains("<p class=\"field-error\" id=\"password-error\">Use at least 10 characters.</p>"))

            let taken = try await browser.submit("/auth/signup", [("name", name), ("email", "x@acme.test"), ("password", "a long password")])
            #expect(taken.status == 303)
            let duplicate = try await browser.submit("/auth/signup", [("name", name), ("email", "X@acme.test"), ("password", "a long password")])
            #expect(duplicate.status == 409)
            #expect(duplicate.text.contains("An account with this email already exists."))
            #expect(!duplicate.text.contains("<script>"))
            let closed = try await requestOffThread(port: gateway.port, "/auth/signup", host: "closed.test", headers: [("Accept", "text/html")])
            #expect(closed.status == 403)
            #expect(!closed.text.contains("<form"))
        }
    }

    @Test func theSessionCookieIsSecureOverTLS() async throws {
        try await withAuthGateway { gateway in
            // The TLS listener is covered by ListenerTests; here the handler's decision is checked directly.
            let endpoints = gateway.server.state.endpoints.browser
            let tenant = try #require(gateway.server.state.tenants.tenants["acme"])
            _ = try await gateway.signUpAndLogIn("ann@acme.test")
            var request = EndpointRequest(method: .GET, path: "/auth/login", headers: [:], body: .init())
            request.isSecure = true
            let page = await endpoints.loginPage(request, tenant: tenant)
            let binding = try #require(page.headers.first { $0.0 == "Set-Cookie" }?.1)
            #expect(binding.hasSuffix("; Secure"))
            let value = String(binding.split(separator: ";")[0].split(separator: "=")[1])
            let token = try #require(TestBrowser.formField("csrf_token", in: page.body))
            request = EndpointRequest(
                method: .POST, path: "/auth/login", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                body: .init(string: "email=ann%40acme.test&password=a+long+password&csrf_token=\(token)"), cookies: ["gatehouse_csrf=\(value)"],
                site: .tenant, isSecure: true)
            let login = await endpoints.logIn(request, tenant: tenant)
            #expect(login.status == .seeOther)
            #expect(login.headers.first { $0.0 == "Set-Cookie" }?.1.hasSuffix("; HttpOnly; SameSite=Lax; Secure") == true)
        }
    }
}
