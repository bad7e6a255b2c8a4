import Crypto
import Foundation
import GatehouseConfiguration
import Mustache

/// Renders the login, signup and sign-out pages of a tenant (§4) with Mustache, which HTML-escapes every value.
public struct BrowserPages: Sendable {
    /// Which page to render.
    public enum Kind: String, Sendable {
        case login, signup, signOut
        /// `GET /auth/password/forgot`: the address form.
        case forgotPassword
        /// `GET /auth/password/reset?token=`: the new-password form, or why the link no longer works.
        case resetPassword
        /// `GET /auth/verify-email?token=`: the button that confirms the address.
        case confirmEmail
        /// A page with a notice or an error and nothing to fill in, under its own ``Model/title``.
        case message
    }

    /// What a page shows besides the tenant's branding. Every string is user- or request-supplied and is escaped.
    public struct Model: Sendable {
        public var csrfToken = ""
        /// Where to go after logging in; already checked by ``RedirectTarget``.
        public var redirectTarget = RedirectTarget.fallback
        public var email = ""
        public var name = ""
        /// An error about the whole form (wrong password, expired form), shown above it and announced.
        public var formError: String?
        public var emailError: String?
        public var passwordError: String?
        /// A confirmation (account created, signed out).
        public var notice: String?
        /// The email of the signed-in user, on the sign-out page.
        public var signedInAs: String?
        /// The reset link's token, carried by the new-password form.
        public var token: String?
        /// The login form offers to send the verification message again (the address is unverified).
        public var showResend = false
        /// The heading of a ``Kind/message`` page.
        public var title: String?

        public init() {}
    }

    /// A rendered page and the Content-Security-Policy that lets only its own style sheet apply.
    public struct Page: Sendable {
        public var html: String
        public var contentSecurityPolicy: String
    }

    private let library: MustacheLibrary
    private let style: MustacheTemplate

    public init() {
        var library = MustacheLibrary()
        do {
            try library.register(PageTemplates.layout, named: "layout")
            try library.register(PageTemplates.login, named: Kind.login.rawValue)
            try library.register(PageTemplates.signup, named: Kind.signup.rawValue)
            try library.register(PageTemplates.signOut, named: Kind.signOut.rawValue)
            try library.register(PageTemplates.forgotPassword, named: Kind.forgotPassword.rawValue)
            try library.register(PageTemplates.resetPassword, named: Kind.resetPassword.rawValue)
            try library.register(PageTemplates.confirmEmail, named: Kind.confirmEmail.rawValue)
            try library.register(PageTemplates.message, named: Kind.message.rawValue)
            style = try MustacheTemplate(string: PageTemplates.style)
        } catch {
            // The templates are compiled into the binary, and a test renders each one.
            preconditionFailure("built-in page template does not parse: \(error)")
        }
        self.library = library
    }

    public func render(_ kind: Kind, _ model: Model, tenant: TenantConfiguration) -> Page {
        let branding = tenant.branding
        let styleSheet = style.render(["accent": branding.accentColor])
        let query = "?rd=" + Self.queryEscaped(model.redirectTarget)
        var values: [String: Any] = [
            "title": model.title ?? Self.title(kind), "tenantName": branding.displayName, "style": styleSheet,
            "csrfToken": model.csrfToken, "rd": model.redirectTarget, "email": model.email, "name": model.name,
            "signupEnabled": tenant.signup.enabled, "signupHref": "/auth/signup" + query, "loginHref": "/auth/login" + query,
            "minimumPasswordLength": tenant.minimumPasswordLength, "hasLogo": branding.logoURL != nil,
            "resetEnabled": tenant.email.passwordResetEnabled, "showResend": model.showResend,
        ]
        if let token = model.token { values["token"] = token }
        if let logo = branding.logoURL { values["logoURL"] = logo }
        if let error = model.formError { values["formError"] = error }
        if let error = model.emailError { values["emailError"] = error }
        if let error = model.passwordError { values["passwordError"] = error }
        if let notice = model.notice { values["notice"] = notice }
        if let email = model.signedInAs { values["signedInAs"] = email }
        let html = library.render(values, withTemplate: kind.rawValue) ?? ""
        return Page(html: html, contentSecurityPolicy: Self.contentSecurityPolicy(styleSheet: styleSheet, logoURL: branding.logoURL))
    }

    static func title(_ kind: Kind) -> String {
        switch kind {
        case .login: return "Sign in"
        case .signup: return "Create an account"
        case .signOut: return "Sign out"
        case .forgotPassword: return "Reset your password"
        case .resetPassword: return "Choose a new password"
        case .confirmEmail: return "Confirm your e-mail address"
        case .message: return "Check your e-mail"
        }
    }

    /// Nothing but this page's style sheet (by hash), its logo, and forms posting back to the gateway; never framed.
    static func contentSecurityPolicy(styleSheet: String, logoURL: String?) -> String {
        let hash = Data(SHA256.hash(data: Array(styleSheet.utf8))).base64EncodedString()
        var images = "'self'"
        if let logoURL, let components = URLComponents(string: logoURL), let scheme = components.scheme, let host = components.host {
            images += " " + scheme + "://" + host + (components.port.map { ":\($0)" } ?? "")
        }
        return "default-src 'none'; style-src 'sha256-\(hash)'; img-src \(images); form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    /// Percent-encodes a value for a query string: everything but unreserved characters and `/`.
    public static func queryEscaped(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~/")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}
