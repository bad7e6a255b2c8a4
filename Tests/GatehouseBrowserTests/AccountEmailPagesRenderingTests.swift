import Foundation
import GatehouseBrowser
import GatehouseConfiguration
import Testing

/// The pages of §11, rendered: labelled fields, the CSRF token on every form, values escaped.
@Suite struct AccountEmailPagesRenderingTests {
    let pages = BrowserPages()

    @Test func theForgotAndResetFormsCarryTheirTokensAndLabels() throws {
        let tenant = try BrowserPagesTests.tenant("branding: {display_name: Acme Corp}\n")
        var model = BrowserPages.Model()
        model.csrfToken = "tok"
        let forgot = pages.render(.forgotPassword, model, tenant: tenant).html
        #expect(forgot.contains("<title>Reset your password · Acme Corp</title>"))
        #expect(forgot.contains("action=\"/auth/password/forgot\"") && forgot.contains("name=\"csrf_token\" value=\"tok\""))
        #expect(forgot.contains("<label for=\"email\">Email</label>"))
        model.token = "a\"b<c>"
        let reset = pages.render(.resetPassword, model, tenant: tenant).html
        #expect(reset.contains("<label for=\"password\">New password</label>"))
        #expect(reset.contains("name=\"token\" value=\"a&quot;b&lt;c&gt;\""))
        #expect(reset.contains("autocomplete=\"new-password\" required minlength=\"10\""))
        // Without a live token: no form, a way to ask for a new link.
        model.token = nil
        model.formError = "The reset link is wrong."
        let dead = pages.render(.resetPassword, model, tenant: tenant).html
        #expect(!dead.contains("<form") && dead.contains("href=\"/auth/password/forgot\"") && dead.contains("role=\"alert\""))
    }

    @Test func theLoginFormLinksToForgotOnlyWhereResetIsOnAndOffersResendWhenAsked() throws {
        // No e-mail transport in this configuration: no reset, no link.
        let tenant = try BrowserPagesTests.tenant("")
        var model = BrowserPages.Model()
        #expect(!pages.render(.login, model, tenant: tenant).html.contains("/auth/password/forgot"))
        var withReset = tenant
        withReset.email.passwordResetEnabled = true
        #expect(pages.render(.login, model, tenant: withReset).html.contains("href=\"/auth/password/forgot\""))
        model.showResend = true
        model.email = "x@acme.test"
        let resend = pages.render(.login, model, tenant: withReset).html
        #expect(resend.contains("action=\"/auth/verify-email/resend\"") && resend.contains("name=\"email\" value=\"x@acme.test\""))
    }

    @Test func aMessagePageHasItsOwnTitle() throws {
        let tenant = try BrowserPagesTests.tenant("")
        var model = BrowserPages.Model()
        model.title = "Address confirmed"
        model.notice = "Your e-mail address is confirmed."
        let page = pages.render(.message, model, tenant: tenant).html
        #expect(page.contains("<h1 id=\"page-title\">Address confirmed</h1>") && page.contains("role=\"status\""))
    }
}
