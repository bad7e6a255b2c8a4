import Logging
import Foundation
import GatehouseBrowser
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseProxy
import NIOHTTP1

/// The HTML side of `/auth/login`, `/auth/signup` and `/auth/logout` (§4, §7): pages with CSRF-protected forms that
/// start and end browser sessions. A failed form comes back with its error next to the field, never as JSON.
struct BrowserEndpoints: Sendable {
    let identity: IdentityService
    let pages = BrowserPages()
    let formTokens: FormTokens

    init(identity: IdentityService) {
        self.identity = identity
        self.formTokens = FormTokens(key: identity.formTokenKey)
    }

    // MARK: Pages

    /// The login form. A browser that already has a session goes straight on to `rd`.
    func loginPage(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        let query = request.query.flatMap(FormBody.parse) ?? [:]
        let target = RedirectTarget.safe(query["rd"])
        if !request.sessionCookies.isEmpty, await liveSession(request, tenant) != nil {
            return Self.seeOther(target)
        }
        var model = BrowserPages.Model()
        model.redirectTarget = target
        if query["created"] != nil { model.notice = "Your account is ready. Sign in to continue." }
        if query["signed_out"] != nil { model.notice = "You are signed out." }
        if query["reset"] != nil { model.notice = "Your password was changed. Sign in with the new one." }
        if query["verified"] != nil { model.notice = "Your e-mail address is confirmed. Sign in to continue." }
        return page(.login, model, status: .ok, request: request, tenant: tenant)
    }

    func signupPage(_ request: EndpointRequest, tenant: Tenant) -> EndpointResponse {
        let query = request.query.flatMap(FormBody.parse) ?? [:]
        var model = BrowserPages.Model()
        model.redirectTarget = RedirectTarget.safe(query["rd"])
        guard tenant.configuration.signup.enabled else {
            model.formError = "Sign-up is closed for \(tenant.configuration.branding.displayName). Ask an administrator for an account."
            return page(.signup, model, status: .forbidden, request: request, tenant: tenant)
        }
        return page(.signup, model, status: .ok, request: request, tenant: tenant)
    }

    /// Who is signed in, and a button that posts the sign-out.
    func signOutPage(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        var model = BrowserPages.Model()
        if let session = await liveSession(request, tenant) {
            model.signedInAs = session.claims.email
        } else {
            model.notice = "You are not signed in."
        }
        return page(.signOut, model, status: .ok, request: request, tenant: tenant)
    }

    /// The request's session, if any; a store failure is logged and treated as no session (the page shows the form).
    func liveSession(_ request: EndpointRequest, _ tenant: Tenant) async -> ActiveSession? {
        guard !request.sessionCookies.isEmpty else { return nil }
        do {
            return try await identity.session(tenant: tenant.configuration, cookies: request.sessionCookies)
        } catch {
            request.logger.warning("session lookup failed; showing the page as signed out", metadata: ["error": "\(error)"])
            return nil
        }
    }

    // MARK: Form posts

    func logIn(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        guard let form = FormBody.parse(request.body) else { return unreadableForm(.login, request, tenant) }
        var model = BrowserPages.Model()
        model.redirectTarget = RedirectTarget.safe(form["rd"])
        model.email = form["email"] ?? ""
        if let refusal = refuseForgedForm(.login, form, model, request, tenant) { return refusal }
        do {
            let grant = try await tenant.metrics.countingLogin {
                try await identity.logInToSession(tenant: tenant.configuration, email: model.email, password: form["password"] ?? "", context: request.audit)
            }
            let maxAge = grant.session.record.expiresAt - grant.session.record.createdAt
            var response = Self.seeOther(model.redirectTarget)
            response.headers.append(("Set-Cookie", BrowserCookie.setSession(grant.cookieValue, maxAge: maxAge, secure: request.isSecure)))
            return response
        } catch IdentityError.lockedOut(let retryAfter) {
            model.formError = "Too many failed sign-ins for this account. Try again in \(Self.minutes(retryAfter))."
            var response = page(.login, model, status: .tooManyRequests, request: request, tenant: tenant)
            response.headers.append(("Retry-After", String(retryAfter)))
            return response
        } catch IdentityError.overloaded {
            return unavailable(.login, model, request, tenant, detail: "Too many sign-ins are in progress. Try again in a moment.")
        } catch IdentityError.emailUnverified {
            model.formError = "Confirm your e-mail address first: open the link in the message we sent you, or send it again."
            model.showResend = true
            return page(.login, model, status: .forbidden, request: request, tenant: tenant)
        } catch is IdentityError {
            // Unknown email, wrong password or disabled user: one answer, with no hint which.
            model.formError = "The email or password is wrong."
            return page(.login, model, status: .unauthorized, request: request, tenant: tenant)
        } catch {
            request.logger.error("identity store failure; the page says try again", metadata: ["error": "\(error)"])
            return unavailable(.login, model, request, tenant, detail: "Sign-in is unavailable right now. Try again shortly.")
        }
    }

    /// Creates the account and signs the new user in (§7): the session cookie, and 303 to `rd`. Should the session
    /// not start (the store failing between the two steps), the account exists and the login form says so.
    func signUp(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        guard let form = FormBody.parse(request.body) else { return unreadableForm(.signup, request, tenant) }
        var model = BrowserPages.Model()
        model.redirectTarget = RedirectTarget.safe(form["rd"])
        model.email = form["email"] ?? ""
        model.name = form["name"] ?? ""
        if let refusal = refuseForgedForm(.signup, form, model, request, tenant) { return refusal }
        let status: HTTPResponseStatus
        do {
            let name = model.name.isEmpty ? nil : model.name
            let user = try await tenant.metrics.countingSignup {
                try await identity.signUp(tenant: tenant.configuration, email: model.email, password: form["password"] ?? "", name: name, context: request.audit)
            }
            if tenant.configuration.email.verification == .required && !user.emailVerified {
                // §7: no session until the address is verified; the message is on its way.
                return checkEmailPage(
                    "We sent a message to \(user.email). Open its link to confirm the address, then sign in.", request, tenant)
            }
            let grant: SessionGrant
            do {
                grant = try await identity.startSession(tenant: tenant.configuration, user: user, context: request.audit)
            } catch {
                request.logger.error("account created but its session did not start", metadata: ["error": "\(error)"])
                return Self.seeOther("/auth/login?created=1&rd=" + BrowserPages.queryEscaped(model.redirectTarget))
            }
            let maxAge = grant.session.record.expiresAt - grant.session.record.createdAt
            var response = Self.seeOther(model.redirectTarget)
            response.headers.append(("Set-Cookie", BrowserCookie.setSession(grant.cookieValue, maxAge: maxAge, secure: request.isSecure)))
            return response
        } catch IdentityError.invalidEmail {
            model.emailError = "Enter an email address like name@example.com."
            status = .unprocessableEntity
        } catch IdentityError.invalidName {
            model.formError = "The name must be at most 256 bytes, without control characters."
            status = .unprocessableEntity
        } catch IdentityError.passwordTooShort(let minimum) {
            model.passwordError = "Use at least \(minimum) characters."
            status = .unprocessableEntity
        } catch IdentityError.passwordTooLong {
            model.passwordError = "Use at most \(IdentityService.maximumPasswordBytes) bytes."
            status = .unprocessableEntity
        } catch IdentityError.emailTaken {
            model.emailError = "An account with this email already exists. Sign in instead."
            status = .conflict
        } catch IdentityError.domainNotAllowed {
            model.emailError = "Sign-up is not open to this email domain."
            status = .forbidden
        } catch IdentityError.signupDisabled {
            model.formError = "Sign-up is closed for \(tenant.configuration.branding.displayName)."
            status = .forbidden
        } catch IdentityError.overloaded {
            return unavailable(.signup, model, request, tenant, detail: "Too many requests are in progress. Try again in a moment.")
        } catch {
            request.logger.error("identity store failure; the page says try again", metadata: ["error": "\(error)"])
            return unavailable(.signup, model, request, tenant, detail: "Sign-up is unavailable right now. Try again shortly.")
        }
        if model.formError == nil { model.formError = "The account was not created. Check the fields below." }
        return page(.signup, model, status: status, request: request, tenant: tenant)
    }

    /// `POST /auth/logout` with the session cookie (and no bearer token): ends the session for every replica and
    /// clears the cookie. A form post goes back to the login page; anything else gets 204 (§4).
    func logOut(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        guard request.site == .tenant else {
            return EndpointResponse(
                ProblemResponse(.forbidden, "A POST authenticated by the session cookie needs an Origin (or Referer) on one of the tenant's hosts."))
        }
        if request.isFormPost {
            let form = FormBody.parse(request.body) ?? [:]
            guard let binding = formBinding(request), formTokens.isValid(form["csrf_token"] ?? "", binding: binding, tenant: tenant.id) else {
                var model = BrowserPages.Model()
                model.formError = "This form has expired or did not come from this site. Please try again."
                return await signedOutPageAgain(model, request, tenant)
            }
        }
        let clear = ("Set-Cookie", BrowserCookie.clearSession(secure: request.isSecure))
        let ended: Bool
        do {
            let cookie = try await identity.sessionCookie(tenant: tenant.configuration, cookies: request.sessionCookies)?.cookie
            ended = try await identity.endSession(tenant: tenant.configuration, cookie: cookie ?? "", context: request.audit)
        } catch {
            request.logger.error("identity store failure; answering 503", metadata: ["error": "\(error)"])
            return EndpointResponse(
                ProblemResponse(.serviceUnavailable, "The identity store is unavailable; try again shortly.", headers: [("Retry-After", "1")]))
        }
        if request.isFormPost {
            var response = Self.seeOther("/auth/login?signed_out=1")
            response.headers.append(clear)
            return response
        }
        guard ended else {
            return EndpointResponse(
                ProblemResponse(
                    .unauthorized, "The session cookie names no live session.",
                    headers: [("WWW-Authenticate", RouteAuthorizer.challenge(tenant, error: nil)), clear]))
        }
        return EndpointResponse(status: .noContent, headers: [clear], body: "")
    }

    // MARK: Helpers

    /// The 403 of §7 for a form without a valid CSRF token or from another site: the form again, with a new token.
    func refuseForgedForm(
        _ kind: BrowserPages.Kind, _ form: [String: String], _ model: BrowserPages.Model, _ request: EndpointRequest, _ tenant: Tenant
    ) -> EndpointResponse? {
        let binding = formBinding(request)
        let tokenIsValid = binding.map { formTokens.isValid(form["csrf_token"] ?? "", binding: $0, tenant: tenant.id) } ?? false
        guard !tokenIsValid || request.site == .foreign else { return nil }
        var model = model
        model.formError = "This form has expired or did not come from this site. Please try again."
        return page(kind, model, status: .forbidden, request: request, tenant: tenant)
    }

    func unreadableForm(_ kind: BrowserPages.Kind, _ request: EndpointRequest, _ tenant: Tenant) -> EndpointResponse {
        var model = BrowserPages.Model()
        model.formError = "The form could not be read. Please try again."
        return page(kind, model, status: .badRequest, request: request, tenant: tenant)
    }

    func unavailable(
        _ kind: BrowserPages.Kind, _ model: BrowserPages.Model, _ request: EndpointRequest, _ tenant: Tenant, detail: String
    ) -> EndpointResponse {
        var model = model
        model.formError = detail
        var response = page(kind, model, status: .serviceUnavailable, request: request, tenant: tenant)
        response.headers.append(("Retry-After", "1"))
        return response
    }

    private func signedOutPageAgain(_ model: BrowserPages.Model, _ request: EndpointRequest, _ tenant: Tenant) async -> EndpointResponse {
        var model = model
        if let session = await liveSession(request, tenant) {
            model.signedInAs = session.claims.email
        }
        return page(.signOut, model, status: .forbidden, request: request, tenant: tenant)
    }

    /// The browser's CSRF binding, if it sent one we could have made.
    func formBinding(_ request: EndpointRequest) -> String? {
        BrowserCookie.value(named: BrowserCookie.formBinding, in: request.cookies).flatMap { FormTokens.isWellFormedBinding($0) ? $0 : nil }
    }

    /// Renders a page with a CSRF token for the browser's binding, giving it one first when it has none.
    func page(
        _ kind: BrowserPages.Kind, _ model: BrowserPages.Model, status: HTTPResponseStatus, request: EndpointRequest, tenant: Tenant
    ) -> EndpointResponse {
        var headers: [(String, String)] = []
        let binding: String
        if let existing = formBinding(request) {
            binding = existing
        } else {
            binding = FormTokens.newBinding()
            headers.append(("Set-Cookie", BrowserCookie.setFormBinding(binding, secure: request.isSecure)))
        }
        var model = model
        model.csrfToken = formTokens.token(binding: binding, tenant: tenant.id)
        let rendered = pages.render(kind, model, tenant: tenant.configuration)
        headers += [
            ("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", rendered.contentSecurityPolicy),
            ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "strict-origin"),
            ("Cache-Control", "no-store"),
        ]
        return EndpointResponse(status: status, headers: headers, body: rendered.html)
    }

    static func seeOther(_ location: String) -> EndpointResponse {
        EndpointResponse(status: .seeOther, headers: [("Location", location), ("Cache-Control", "no-store")], body: "")
    }

    static func minutes(_ seconds: Int) -> String {
        let minutes = (seconds + 59) / 60
        return minutes == 1 ? "a minute" : "\(minutes) minutes"
    }
}
