import GatehouseBrowser
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseProxy
import NIOHTTP1

/// The HTML side of §11: forgot → "check your e-mail" → the link's reset form → the login page with a notice, and
/// the verification link. Forms carry the CSRF token like the login form; nothing here says whether an address has
/// an account.
extension BrowserEndpoints {
    static let checkEmailNotice = "If an account with this address can receive it, we sent it a message with a code and a link. It can take a few minutes."

    func forgotPasswordPage(_ request: EndpointRequest, tenant: Tenant) -> EndpointResponse {
        guard tenant.configuration.email.passwordResetEnabled else { return resetDisabledPage(request, tenant) }
        return page(.forgotPassword, BrowserPages.Model(), status: .ok, request: request, tenant: tenant)
    }

    /// `POST /auth/password/forgot` (form): the same "check your e-mail" page for every address.
    func forgotPassword(_ request: EndpointRequest, tenant: Tenant) -> EndpointResponse {
        guard tenant.configuration.email.passwordResetEnabled else { return resetDisabledPage(request, tenant) }
        guard let form = FormBody.parse(request.body) else { return unreadableForm(.forgotPassword, request, tenant) }
        var model = BrowserPages.Model()
        model.email = form["email"] ?? ""
        if let refusal = refuseForgedForm(.forgotPassword, form, model, request, tenant) { return refusal }
        guard EmailAddress(model.email) != nil else {
            model.emailError = "Enter an email address like name@example.com."
            return page(.forgotPassword, model, status: .badRequest, request: request, tenant: tenant)
        }
        identity.requestAccountCode(.reset, tenant: tenant.configuration, email: model.email, context: request.audit, logger: request.logger)
        return checkEmailPage(Self.checkEmailNotice, request, tenant)
    }

    /// `POST /auth/verify-email/resend` (form, from the login page of an unverified address).
    func resendVerification(_ request: EndpointRequest, tenant: Tenant) -> EndpointResponse {
        guard let form = FormBody.parse(request.body) else { return unreadableForm(.login, request, tenant) }
        var model = BrowserPages.Model()
        model.email = form["email"] ?? ""
        if let refusal = refuseForgedForm(.login, form, model, request, tenant) { return refusal }
        if EmailAddress(model.email) != nil {
            identity.requestAccountCode(.verify, tenant: tenant.configuration, email: model.email, context: request.audit, logger: request.logger)
        }
        return checkEmailPage(Self.checkEmailNotice, request, tenant)
    }

    /// `GET /auth/password/reset?token=`: the new-password form while the link is live (nothing is spent by looking).
    func resetPasswordPage(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        guard tenant.configuration.email.passwordResetEnabled else { return resetDisabledPage(request, tenant) }
        return await linkPage(.reset, request, tenant)
    }

    /// `POST /auth/password/reset` (form): the new password, then the login page with a notice (§11: no sign-in).
    func resetPassword(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        guard tenant.configuration.email.passwordResetEnabled else { return resetDisabledPage(request, tenant) }
        guard let form = FormBody.parse(request.body) else { return unreadableForm(.resetPassword, request, tenant) }
        var model = BrowserPages.Model()
        model.token = form["token"] ?? ""
        if let refusal = refuseForgedForm(.resetPassword, form, model, request, tenant) { return refusal }
        do {
            try await identity.resetPassword(
                tenant: tenant.configuration, using: .token(model.token ?? ""), newPassword: form["password"] ?? "", context: request.audit)
            return Self.seeOther("/auth/login?reset=1")
        } catch IdentityError.passwordTooShort(let minimum) {
            model.passwordError = "Use at least \(minimum) characters."
            return page(.resetPassword, model, status: .unprocessableEntity, request: request, tenant: tenant)
        } catch IdentityError.passwordTooLong {
            model.passwordError = "Use at most \(IdentityService.maximumPasswordBytes) bytes."
            return page(.resetPassword, model, status: .unprocessableEntity, request: request, tenant: tenant)
        } catch IdentityError.invalidAccountCode {
            return deadLinkPage(request, tenant)
        } catch IdentityError.overloaded {
            return unavailable(.resetPassword, model, request, tenant, detail: "Too many requests are in progress. Try again in a moment.")
        } catch {
            request.logger.error("identity store failure; the page says try again", metadata: ["error": "\(error)"])
            return unavailable(.resetPassword, model, request, tenant, detail: "Password reset is unavailable right now. Try again shortly.")
        }
    }

    /// `GET /auth/verify-email?token=`: the page the message's link opens, with a button that confirms. Looking
    /// spends nothing: mail scanners open every link, and an account someone else opened with this address must not
    /// become verified without its owner pressing the button.
    func confirmEmailPage(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        await linkPage(.verify, request, tenant)
    }

    /// The page a message's link opens while the link is live: the new-password form (reset) or the confirm button
    /// (verify), carrying the token; otherwise why the link no longer works.
    private func linkPage(_ purpose: AccountCodePurpose, _ request: EndpointRequest, _ tenant: Tenant) async -> EndpointResponse {
        let token = (request.query.flatMap(FormBody.parse) ?? [:])["token"] ?? ""
        var model = BrowserPages.Model()
        let kind: BrowserPages.Kind = purpose == .reset ? .resetPassword : .confirmEmail
        do {
            guard try await identity.isLiveLinkToken(purpose, tenant: tenant.configuration, token: token) else {
                return purpose == .reset ? deadLinkPage(request, tenant) : deadVerificationLinkPage(request, tenant)
            }
        } catch {
            request.logger.error("identity store failure; the page says try again", metadata: ["error": "\(error)"])
            return unavailable(
                purpose == .reset ? .resetPassword : .message, model, request, tenant, detail: "This link cannot be checked right now. Try it again shortly.")
        }
        model.token = token
        return page(kind, model, status: .ok, request: request, tenant: tenant)
    }

    /// `POST /auth/verify-email` (form): the button of ``confirmEmailPage(_:tenant:)``.
    func confirmEmail(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        guard let form = FormBody.parse(request.body) else { return unreadableForm(.message, request, tenant) }
        var model = BrowserPages.Model()
        model.token = form["token"] ?? ""
        if let refusal = refuseForgedForm(.confirmEmail, form, model, request, tenant) { return refusal }
        model.token = nil
        do {
            try await identity.verifyEmail(tenant: tenant.configuration, using: .token(form["token"] ?? ""), context: request.audit)
            model.title = "Address confirmed"
            model.notice = "Your e-mail address is confirmed. You can sign in now."
            return page(.message, model, status: .ok, request: request, tenant: tenant)
        } catch IdentityError.invalidAccountCode {
            return deadVerificationLinkPage(request, tenant)
        } catch {
            request.logger.error("identity store failure; the page says try again", metadata: ["error": "\(error)"])
            return unavailable(.message, model, request, tenant, detail: "Confirming addresses is unavailable right now. Try again shortly.")
        }
    }

    func checkEmailPage(_ notice: String, _ request: EndpointRequest, _ tenant: Tenant) -> EndpointResponse {
        var model = BrowserPages.Model()
        model.title = "Check your e-mail"
        model.notice = notice
        return page(.message, model, status: .ok, request: request, tenant: tenant)
    }

    private func deadVerificationLinkPage(_ request: EndpointRequest, _ tenant: Tenant) -> EndpointResponse {
        var model = BrowserPages.Model()
        model.title = "This link no longer works"
        model.formError = "The link is wrong, already used, replaced by a newer one, or expired. Sign in to ask for a new one."
        return page(.message, model, status: .unauthorized, request: request, tenant: tenant)
    }

    private func deadLinkPage(_ request: EndpointRequest, _ tenant: Tenant) -> EndpointResponse {
        var model = BrowserPages.Model()
        model.title = "This link no longer works"
        model.formError = "The reset link is wrong, already used, replaced by a newer one, or expired."
        return page(.resetPassword, model, status: .unauthorized, request: request, tenant: tenant)
    }

    private func resetDisabledPage(_ request: EndpointRequest, _ tenant: Tenant) -> EndpointResponse {
        var model = BrowserPages.Model()
        model.title = "Password reset is off"
        model.formError = "\(tenant.configuration.branding.displayName) does not reset passwords by e-mail. Ask an administrator."
        return page(.message, model, status: .notFound, request: request, tenant: tenant)
    }
}
