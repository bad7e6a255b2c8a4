import Crypto
import Foundation
import GatehouseBrowser
import GatehouseConfiguration
import Testing

@Suite struct BrowserPagesTests {
    let pages = BrowserPages()

    /// A tenant loaded from real files, as the gateway loads it.
    static func tenant(_ extra: String) throws -> TenantConfiguration {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-pages-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
        try "listen: 127.0.0.1:8080\ntenants: tenants\n".write(to: root.appendingPathComponent("gatehouse.yaml"), atomically: true, encoding: .utf8)
        try ("hosts: [acme.test]\nroutes: [{path: /, upstream: \"http://127.0.0.1:1\"}]\n" + extra)
            .write(to: root.appendingPathComponent("tenants/acme.yaml"), atomically: true, encoding: .utf8)
        return try ConfigurationLoader.load(configPath: root.appendingPathComponent("gatehouse.yaml").path, environment: [:]).get()
            .tenants.tenants["acme"]!
    }

    @Test func loginPageCarriesBrandingTheFormFieldsAndALinkToSignup() throws {
        let tenant = try Self.tenant(
            "signup: {enabled: true}\nbranding: {display_name: Acme Corp, logo_url: \"https://cdn.acme.test/logo.svg\", accent_color: \"#123abc\"}\n")
        var model = BrowserPages.Model()
        model.csrfToken = "tok"
        model.redirectTarget = "/app?x=1&y=2"
        let page = pages.render(.login, model, tenant: tenant)
        #expect(page.html.contains("<title>Sign in · Acme Corp</title>"))
        #expect(page.html.contains("src=\"https://cdn.acme.test/logo.svg\" alt=\"Acme Corp\""))
        #expect(page.html.contains("--accent:#123abc"))
        #expect(page.html.contains("<label for=\"email\">Email</label>"))
        #expect(page.html.contains("<label for=\"password\">Password</label>"))
        #expect(page.html.contains("name=\"csrf_token\" value=\"tok\""))
        #expect(page.html.contains("name=\"rd\" value=\"/app?x=1&amp;y=2\""))
        #expect(page.html.contains("href=\"/auth/signup?rd=/app%3Fx%3D1%26y%3D2\""))
        #expect(page.contentSecurityPolicy.contains("img-src 'self' https://cdn.acme.test"))
        #expect(page.contentSecurityPolicy.contains("frame-ancestors 'none'"))
    }

    @Test func theContentSecurityPolicyAllowsExactlyThePagesOwnStyleSheet() throws {
        let page = pages.render(.login, BrowserPages.Model(), tenant: try Self.tenant(""))
        let style = try #require(page.html.range(of: "<style>").flatMap { start in
            page.html.range(of: "</style>").map { String(page.html[start.upperBound..<$0.lowerBound]) }
        })
        let hash = Data(SHA256.hash(data: Array(style.utf8))).base64EncodedString()
        #expect(page.contentSecurityPolicy.contains("style-src 'sha256-\(hash)'"))
        #expect(!page.contentSecurityPolicy.contains("unsafe-inline"))
    }

    @Test func everyValueIsEscaped() throws {
        let tenant = try Self.tenant("signup: {enabled: true}\nbranding: {display_name: \"<b>Acme</b> & Co\"}\n")
        var model = BrowserPages.Model()
        model.name = "<script>alert(1)</script>"
        model.email = "\"><img src=x onerror=alert(1)>"
        model.redirectTarget = "/\"><script>"
        model.formError = "<i>bad</i>"
        let page = pages.render(.signup, model, tenant: tenant)
        #expect(!page.html.contains("<script>"))
        #expect(!page.html.contains("<img src=x"))
        #expect(!page.html.contains("<i>bad"))
        #expect(page.html.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""))
        #expect(page.html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"))
        #expect(page.html.contains("&lt;b&gt;Acme&lt;/b&gt; &amp; Co"))
    }

    @Test func fieldErrorsSitNextToTheirFieldAndAreAnnounced() throws {
        var model = BrowserPages.Model()
        model.passwordError = "Use at least 10 characters."
        model.formError = "Fix the errors below."
        let html = pages.render(.signup, model, tenant: try Self.tenant("signup: {enabled: true}\npassword: {min_length: 10}\n")).html
        #expect(html.contains("aria-describedby=\"password-hint password-error\" aria-invalid=\"true\""))
        #expect(html.contains("<p class=\"field-error\" id=\"password-error\">Use at least 10 characters.</p>"))
        #expect(html.contains("role=\"alert\" id=\"form-error\">Fix the errors below.</p>"))
        #expect(html.contains("minlength=\"10\""))
    }

    @Test func withSignupDisabledThereIsNeitherLinkNorForm() throws {
        let tenant = try Self.tenant("signup: {enabled: false}\n")
        #expect(!pages.render(.login, BrowserPages.Model(), tenant: tenant).html.contains("/auth/signup"))
        #expect(!pages.render(.signup, BrowserPages.Model(), tenant: tenant).html.contains("<form"))
    }

    @Test func signOutPageOffersAPostFormOnlyWhenSignedIn() throws {
        let tenant = try Self.tenant("")
        var model = BrowserPages.Model()
        model.signedInAs = "ann@acme.test"
        model.csrfToken = "tok"
        let signedIn = pages.render(.signOut, model, tenant: tenant).html
        #expect(signedIn.contains("<form method=\"post\" action=\"/auth/logout\">"))
        #expect(signedIn.contains("ann@acme.test"))
        #expect(!pages.render(.signOut, BrowserPages.Model(), tenant: tenant).html.contains("<form"))
    }
}
