import GatehouseConfiguration
import GatehouseIdentity
import GatehouseProxy
import NIOHTTP1

/// The JSON endpoints of §11: forgot, reset, verify and resend. Forgot and resend answer 202 with one body, whatever
/// the address, before any work on it is done (it is queued for the ``AccountMailService``), so neither their
/// answer nor its timing says whether an account exists.
struct AccountEmailEndpoints: Sendable {
    let identity: IdentityService

    /// The one body of every accepted forgot or resend request.
    static let acceptedBody = """
        {"status":"accepted","detail":"If an account with this address can receive it, a message is on its way. It can take a few minutes."}
        """

    /// `POST /auth/password/forgot` `{email}`.
    func forgot(_ request: EndpointRequest, _ tenant: Tenant) throws -> EndpointResponse {
        guard tenant.configuration.email.passwordResetEnabled else { return Self.resetDisabled(tenant) }
        let email = try Self.address(try JSONBody(request))
        identity.requestAccountCode(.reset, tenant: tenant.configuration, email: email, context: request.audit, logger: request.logger)
        return EndpointResponse(.accepted, json: Self.acceptedBody, headers: [("Cache-Control", "no-store")])
    }

    /// `POST /auth/verify-email/resend` `{email}`.
    func resend(_ request: EndpointRequest, _ tenant: Tenant) throws -> EndpointResponse {
        let email = try Self.address(try JSONBody(request))
        identity.requestAccountCode(.verify, tenant: tenant.configuration, email: email, context: request.audit, logger: request.logger)
        return EndpointResponse(.accepted, json: Self.acceptedBody, headers: [("Cache-Control", "no-store")])
    }

    /// `POST /auth/password/reset` `{email, code, new_password}` or `{token, new_password}`.
    func reset(_ request: EndpointRequest, _ tenant: Tenant) async throws -> EndpointResponse {
        guard tenant.configuration.email.passwordResetEnabled else { return Self.resetDisabled(tenant) }
        let body = try JSONBody(request)
        let selector = try Self.selector(body)
        let password = try body.string("new_password")
        try await identity.resetPassword(tenant: tenant.configuration, using: selector, newPassword: password, context: request.audit)
        return .noContent
    }

    /// `POST /auth/verify-email` `{email, code}` or `{token}`.
    func verify(_ request: EndpointRequest, _ tenant: Tenant) async throws -> EndpointResponse {
        try await identity.verifyEmail(tenant: tenant.configuration, using: try Self.selector(try JSONBody(request)), context: request.audit)
        return .noContent
    }

    // MARK: Helpers

    /// The address of a forgot or resend body: 400 when it is none (§4 lists no other error; whether an address is
    /// well formed is no secret, and a typo deserves to be told).
    static func address(_ body: JSONBody) throws -> String {
        let email = try body.string("email")
        guard EmailAddress(email) != nil else { throw BadRequest(status: .badRequest, detail: "'email' is not a valid email address.") }
        return email
    }

    /// Either `email` with `code`, or `token`, never both.
    static func selector(_ body: JSONBody) throws -> AccountCodeSelector {
        let token = try body.optionalString("token")
        let email = try body.optionalString("email")
        let code = try body.optionalString("code")
        switch (token, email, code) {
        case (let token?, nil, nil): return .token(token)
        case (nil, let email?, let code?): return .code(email: email, code: code)
        case (.some, _, _): throw BadRequest(status: .badRequest, detail: "Send either 'token', or 'email' with 'code', not both.")
        default: throw BadRequest(status: .badRequest, detail: "Send 'token' (from the link), or 'email' with 'code' (the 8 digits).")
        }
    }

    static func resetDisabled(_ tenant: Tenant) -> EndpointResponse { EndpointResponse(resetDisabledProblem(tenant)) }

    static func resetDisabledProblem(_ tenant: Tenant) -> ProblemResponse {
        ProblemResponse(.notFound, "Password reset is not enabled for \(tenant.configuration.branding.displayName).")
    }
}
