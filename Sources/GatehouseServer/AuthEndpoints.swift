import Foundation
import GatehouseBrowser
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseProxy
import GatehouseTokens
import Logging
import NIOCore
import NIOHTTP1

/// A request to one of the gateway's own endpoints, with its body collected (bounded by `auth_body_bytes`).
struct EndpointRequest: Sendable {
    /// Where an `Origin` (or `Referer`) says the request came from.
    enum Site: Sendable {
        /// One of the tenant's hosts.
        case tenant
        /// Somewhere else, or an opaque origin (`null`).
        case foreign
        /// Neither header was sent.
        case unknown
    }

    var method: HTTPMethod
    var path: String
    var query: String? = nil
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// The `Cookie` header values.
    var cookies: [String] = []
    var site: Site = .unknown
    /// Served over TLS: cookies get `Secure`.
    var isSecure = false
    /// The gateway's logger with this request's `request_id` and `tenant`: for failures the client is not told about.
    var logger = Logger(label: "gatehouse")
    /// Who the audit events of this request name (§10): the client's address, user agent, request and trace ids.
    var audit = AuditContext(actor: .user)

    /// Every `gatehouse_session` value sent; which of them (if any) is the session is the identity service's call (§7).
    var sessionCookies: [String] { BrowserCookie.values(named: BrowserCookie.session, in: cookies) }

    /// Whether the body is an HTML form post.
    var isFormPost: Bool { AuthEndpoints.mediaType(headers) == "application/x-www-form-urlencoded" }
}

/// The gateway's answer to an endpoint request.
struct EndpointResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: [(String, String)]
    var body: String

    init(_ status: HTTPResponseStatus, json: String, headers: [(String, String)] = []) {
        self.init(status: status, headers: [("Content-Type", "application/json")] + headers, body: json)
    }

    init(status: HTTPResponseStatus, headers: [(String, String)], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    init(_ problem: ProblemResponse) {
        self.init(status: problem.status, headers: [("Content-Type", "application/problem+json")] + problem.headers, body: problem.body)
    }

    static let noContent = EndpointResponse(status: .noContent, headers: [], body: "")
}

/// The endpoints of §4 under `/auth/` and `/.well-known/` (all but the HTML pages).
struct AuthEndpoints: Sendable {
    let identity: IdentityService
    let authorizer: RouteAuthorizer
    let browser: BrowserEndpoints
    let accountEmail: AccountEmailEndpoints

    init(identity: IdentityService, authorizer: RouteAuthorizer) {
        self.identity = identity
        self.authorizer = authorizer
        self.browser = BrowserEndpoints(identity: identity)
        self.accountEmail = AccountEmailEndpoints(identity: identity)
    }

    /// The methods each endpoint answers; any other path under a reserved prefix is 404.
    static let methods: [String: [HTTPMethod]] = [
        "/auth/signup": [.GET, .HEAD, .POST], "/auth/login": [.GET, .HEAD, .POST], "/auth/token": [.POST], "/auth/refresh": [.POST],
        "/auth/logout": [.GET, .HEAD, .POST],
        "/auth/me": [.GET, .HEAD], "/auth/password": [.POST], "/.well-known/jwks.json": [.GET, .HEAD],
        "/.well-known/openid-configuration": [.GET, .HEAD],
        "/auth/password/forgot": [.GET, .HEAD, .POST], "/auth/password/reset": [.GET, .HEAD, .POST], "/auth/verify-email": [.GET, .HEAD, .POST],
        "/auth/verify-email/resend": [.POST],
    ]

    func handle(_ request: EndpointRequest, tenant: Tenant) async -> EndpointResponse {
        let configuration = tenant.configuration
        do {
            switch (request.path, request.method) {
            case ("/auth/login", .GET), ("/auth/login", .HEAD): return await browser.loginPage(request, tenant: tenant)
            case ("/auth/signup", .GET), ("/auth/signup", .HEAD): return browser.signupPage(request, tenant: tenant)
            case ("/auth/logout", .GET), ("/auth/logout", .HEAD): return await browser.signOutPage(request, tenant: tenant)
            case ("/auth/login", _) where request.isFormPost: return await browser.logIn(request, tenant: tenant)
            case ("/auth/signup", _) where request.isFormPost: return await browser.signUp(request, tenant: tenant)
            case ("/auth/logout", _) where request.headers.first(name: "authorization") == nil && !request.sessionCookies.isEmpty:
                return await browser.logOut(request, tenant: tenant)
            case ("/auth/password/forgot", .GET), ("/auth/password/forgot", .HEAD): return browser.forgotPasswordPage(request, tenant: tenant)
            case ("/auth/password/reset", .GET), ("/auth/password/reset", .HEAD): return await browser.resetPasswordPage(request, tenant: tenant)
            case ("/auth/verify-email", .GET), ("/auth/verify-email", .HEAD): return await browser.confirmEmailPage(request, tenant: tenant)
            case ("/auth/password/forgot", _) where request.isFormPost: return browser.forgotPassword(request, tenant: tenant)
            case ("/auth/password/reset", _) where request.isFormPost: return await browser.resetPassword(request, tenant: tenant)
            case ("/auth/verify-email/resend", _) where request.isFormPost: return browser.resendVerification(request, tenant: tenant)
            case ("/auth/verify-email", _) where request.isFormPost: return await browser.confirmEmail(request, tenant: tenant)
            default: break
            }
            switch request.path {
            case "/auth/signup": return try await signUp(request, tenant)
            case "/auth/login": return try await logIn(request, tenant)
            case "/auth/token": return await token(request, tenant)
            case "/auth/refresh": return try await refresh(request, configuration)
            case "/auth/logout": return try await logOut(request, tenant)
            case "/auth/me": return try await me(request, tenant)
            case "/auth/password": return try await changePassword(request, tenant)
            case "/.well-known/jwks.json": return try await jwks(configuration)
            case "/.well-known/openid-configuration": return discovery(configuration)
            case "/auth/password/forgot": return try accountEmail.forgot(request, tenant)
            case "/auth/password/reset": return try await accountEmail.reset(request, tenant)
            case "/auth/verify-email": return try await accountEmail.verify(request, tenant)
            case "/auth/verify-email/resend": return try accountEmail.resend(request, tenant)
            default: return EndpointResponse(ProblemResponse(.notFound, "There is no gateway endpoint at '\(request.path)'."))
            }
        } catch let error as BadRequest {
            return EndpointResponse(ProblemResponse(error.status, error.detail))
        } catch let error as IdentityError {
            return EndpointResponse(Self.problem(for: error, tenant: tenant))
        } catch let error as TokenProblem {
            guard let rejection = error.rejection else {
                return EndpointResponse(
                    ProblemResponse(
                        .unauthorized, "This endpoint needs Authorization: Bearer <access token>.",
                        headers: [("WWW-Authenticate", RouteAuthorizer.challenge(tenant, error: nil))]))
            }
            return EndpointResponse(RouteAuthorizer.invalidToken(rejection, tenant: tenant))
        } catch {
            // A store or crypto failure: never a stack trace, never a secret (GRDB leaves statement arguments out).
            request.logger.error("endpoint failed; answering 503", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return EndpointResponse(ProblemResponse(.serviceUnavailable, "The identity store is unavailable; try again shortly.",
                headers: [("Retry-After", "1")]))
        }
    }

    // MARK: Endpoints

    private func signUp(_ request: EndpointRequest, _ tenant: Tenant) async throws -> EndpointResponse {
        let body = try JSONBody(request)
        let email = try body.string("email")
        let password = try body.string("password")
        let name = try body.optionalString("name")
        let user = try await tenant.metrics.countingSignup {
            try await identity.signUp(tenant: tenant.configuration, email: email, password: password, name: name, context: request.audit)
        }
        return EndpointResponse(.created, json: Self.userJSON(user))
    }

    private func logIn(_ request: EndpointRequest, _ tenant: Tenant) async throws -> EndpointResponse {
        let body = try JSONBody(request)
        let email = try body.string("email")
        let password = try body.string("password")
        let grant = try await tenant.metrics.countingLogin { try await identity.logIn(tenant: tenant.configuration, email: email, password: password, context: request.audit) }
        return Self.tokenResponse(grant)
    }

    /// RFC 6749 §4.3 and §6, with §5.2 error bodies.
    private func token(_ request: EndpointRequest, _ tenant: Tenant) async -> EndpointResponse {
        let metrics = tenant.metrics
        let tenant = tenant.configuration
        // RFC 6749 §5.2: a request the server cannot use is 400 invalid_request, whatever is wrong with it.
        guard Self.mediaType(request.headers) == "application/x-www-form-urlencoded" else {
            return Self.oauthError(.badRequest, "invalid_request", "The body must be application/x-www-form-urlencoded.")
        }
        guard let form = FormBody.parse(request.body) else {
            return Self.oauthError(.badRequest, "invalid_request", "The body is not a valid form, or repeats a parameter.")
        }
        do {
            switch form["grant_type"] {
            case "password":
                guard let username = form["username"], let password = form["password"] else {
                    return Self.oauthError(.badRequest, "invalid_request", "The password grant needs username and password.")
                }
                return Self.tokenResponse(try await metrics.countingLogin { try await identity.logIn(tenant: tenant, email: username, password: password, context: request.audit) })
            case "refresh_token":
                guard let token = form["refresh_token"] else {
                    return Self.oauthError(.badRequest, "invalid_request", "The refresh_token grant needs refresh_token.")
                }
                return Self.tokenResponse(try await identity.refresh(tenant: tenant, refreshToken: token, context: request.audit))
            case nil:
                return Self.oauthError(.badRequest, "invalid_request", "grant_type is missing.")
            case .some:
                return Self.oauthError(.badRequest, "unsupported_grant_type", "Supported grants: password, refresh_token.")
            }
        } catch IdentityError.lockedOut(let retryAfter) {
            var response = Self.oauthError(.tooManyRequests, "invalid_grant", "Too many failed logins; try again later.")
            response.headers.append(("Retry-After", String(retryAfter)))
            return response
        } catch IdentityError.overloaded {
            var response = Self.oauthError(.serviceUnavailable, "temporarily_unavailable", "Too many logins in progress; try again shortly.")
            response.headers.append(("Retry-After", "1"))
            return response
        } catch is IdentityError {
            return Self.oauthError(.badRequest, "invalid_grant", "The credentials or the refresh token are invalid.")
        } catch {
            request.logger.error("token endpoint failed; answering 503", metadata: ["error": "\(error)"])
            return Self.oauthError(.serviceUnavailable, "temporarily_unavailable", "The identity store is unavailable; try again shortly.")
        }
    }

    private func refresh(_ request: EndpointRequest, _ tenant: TenantConfiguration) async throws -> EndpointResponse {
        let body = try JSONBody(request)
        return Self.tokenResponse(try await identity.refresh(tenant: tenant, refreshToken: try body.string("refresh_token"), context: request.audit))
    }

    private func logOut(_ request: EndpointRequest, _ tenant: Tenant) async throws -> EndpointResponse {
        let claims = try bearerClaims(request, tenant)
        try await identity.logOut(tenant: tenant.configuration, claims: claims, context: request.audit)
        return .noContent
    }

    private func me(_ request: EndpointRequest, _ tenant: Tenant) async throws -> EndpointResponse {
        let claims: AccessTokenClaims
        if request.headers.first(name: "authorization") == nil, !request.sessionCookies.isEmpty,
            let session = try await identity.session(tenant: tenant.configuration, cookies: request.sessionCookies)
        {
            claims = session.claims
        } else {
            claims = try bearerClaims(request, tenant)
        }
        return EndpointResponse(.ok, json: Self.userJSON(try await identity.user(tenant: tenant.configuration, claims: claims)))
    }

    private func changePassword(_ request: EndpointRequest, _ tenant: Tenant) async throws -> EndpointResponse {
        let claims = try bearerClaims(request, tenant)
        let body = try JSONBody(request)
        let current = try body.string("current_password")
        let new = try body.string("new_password")
        do {
            try await identity.changePassword(tenant: tenant.configuration, claims: claims, current: current, new: new, context: request.audit)
        } catch IdentityError.invalidCredentials {
            return EndpointResponse(ProblemResponse(.unauthorized, "The current password is wrong."))
        }
        return .noContent
    }

    private func jwks(_ tenant: TenantConfiguration) async throws -> EndpointResponse {
        if tenant.tokens.algorithm != .hs256 { _ = try await identity.keys.activeKey(for: tenant) }
        let ring = identity.keys.directory.ring(for: tenant.id)
        let keys = ring.verificationKeys.values.sorted { $0.kid < $1.kid }.compactMap(\.publicJWK)
        let data = try JSONSerialization.data(withJSONObject: ["keys": keys], options: [.sortedKeys, .withoutEscapingSlashes])
        return EndpointResponse(.ok, json: String(decoding: data, as: UTF8.self), headers: [("Cache-Control", "public, max-age=300")])
    }

    private func discovery(_ tenant: TenantConfiguration) -> EndpointResponse {
        let issuer = tenant.issuer.hasSuffix("/") ? String(tenant.issuer.dropLast()) : tenant.issuer
        let document: [String: Any] = [
            "issuer": tenant.issuer,
            "jwks_uri": issuer + "/.well-known/jwks.json",
            "token_endpoint": issuer + "/auth/token",
            "userinfo_endpoint": issuer + "/auth/me",
            "grant_types_supported": ["password", "refresh_token"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "token_endpoint_auth_methods_supported": ["none"],
            "id_token_signing_alg_values_supported": [tenant.tokens.algorithm.rawValue],
            "claims_supported": AccessTokenClaim.allCases.map(\.rawValue),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return EndpointResponse(.ok, json: String(decoding: data, as: UTF8.self), headers: [("Cache-Control", "public, max-age=300")])
    }

    // MARK: Helpers

    private func bearerClaims(_ request: EndpointRequest, _ tenant: Tenant) throws -> AccessTokenClaims {
        switch authorizer.authenticate(request.headers, tenant: tenant) {
        case .valid(let claims): return claims
        case .anonymous: throw TokenProblem(rejection: nil)
        case .invalid(let rejection): throw TokenProblem(rejection: rejection)
        }
    }

    static func problem(for error: IdentityError, tenant: Tenant) -> ProblemResponse {
        switch error {
        case .invalidEmail: return ProblemResponse(.unprocessableEntity, "'email' is not a valid email address.")
        case .passwordTooShort(let minimum): return ProblemResponse(.unprocessableEntity, "'password' must be at least \(minimum) characters.")
        case .passwordTooLong: return ProblemResponse(.unprocessableEntity, "'password' must be at most \(IdentityService.maximumPasswordBytes) bytes.")
        case .emailTaken: return ProblemResponse(.conflict, "A user with this email already exists.")
        case .signupDisabled: return ProblemResponse(.forbidden, "Sign-up is disabled for this tenant.")
        case .domainNotAllowed: return ProblemResponse(.forbidden, "Sign-up is not open to this email domain.")
        case .invalidCredentials: return ProblemResponse(.unauthorized, "The email or password is wrong.")
        case .lockedOut(let retryAfter):
            return ProblemResponse(.tooManyRequests, "Too many failed logins for this account; try again later.",
                headers: [("Retry-After", String(retryAfter))])
        case .invalidRefreshToken: return ProblemResponse(.unauthorized, "The refresh token is invalid, expired or already used.")
        case .overloaded:
            return ProblemResponse(.serviceUnavailable, "Too many logins in progress; try again shortly.", headers: [("Retry-After", "1")])
        case .unknownUser: return RouteAuthorizer.invalidToken(.revoked, tenant: tenant)
        case .invalidRole(let role): return ProblemResponse(.unprocessableEntity, RoleName.problem(role))
        case .invalidName: return ProblemResponse(.unprocessableEntity, "'name' must be at most 256 bytes, without control characters.")
        case .invalidAccountCode: return ProblemResponse(.unauthorized, "The code or link is wrong, already used, replaced by a newer one, or expired.")
        case .malformedCode: return ProblemResponse(.badRequest, "'code' must be the 8 digits from the message.")
        case .passwordResetDisabled: return AccountEmailEndpoints.resetDisabledProblem(tenant)
        case .emailUnverified:
            return ProblemResponse(
                .forbidden, "The email address is not verified yet: open the link in the message we sent, or ask for a new one at POST /auth/verify-email/resend.")
        }
    }

    static func tokenResponse(_ grant: TokenGrant) -> EndpointResponse {
        let json = """
            {"access_token":\(JSON.quote(grant.accessToken)),"token_type":"Bearer","expires_in":\(grant.expiresIn),\
            "refresh_token":\(JSON.quote(grant.refreshToken))}
            """
        return EndpointResponse(.ok, json: json, headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
    }

    static func oauthError(_ status: HTTPResponseStatus, _ code: String, _ description: String) -> EndpointResponse {
        EndpointResponse(
            status, json: "{\"error\":\(JSON.quote(code)),\"error_description\":\(JSON.quote(description))}",
            headers: [("Cache-Control", "no-store")])
    }

    static func userJSON(_ user: UserRecord) -> String {
        let created = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(user.createdAt)))
        return """
            {"id":\(JSON.quote(user.id)),"email":\(JSON.quote(user.email)),"name":\(JSON.quote(user.name)),\
            "email_verified":\(user.emailVerified),"roles":[\(user.roles.map(JSON.quote).joined(separator: ","))],"tenant":\(JSON.quote(user.tenant)),\
            "created_at":\(JSON.quote(created))}
            """
    }

    /// The media type of `Content-Type`, lower-cased, without parameters.
    static func mediaType(_ headers: HTTPHeaders) -> String? {
        headers.first(name: "content-type").map {
            String($0.split(separator: ";", maxSplits: 1).first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        }
    }
}

/// A body that cannot be used: 400 (malformed, missing or mistyped fields) or 415 (not JSON).
struct BadRequest: Error {
    var status: HTTPResponseStatus
    var detail: String
}

/// A bearer token that is missing or invalid on an endpoint that needs one.
struct TokenProblem: Error {
    var rejection: TokenRejection?
}

/// A JSON object body with typed field access and precise 400 details.
struct JSONBody {
    private let body: JSONObjectBody

    init(_ request: EndpointRequest) throws {
        guard AuthEndpoints.mediaType(request.headers) == "application/json" else {
            throw BadRequest(status: .unsupportedMediaType, detail: "The body must be application/json.")
        }
        do {
            body = try JSONObjectBody(bytes: request.body.readableBytesView)
        } catch {
            throw BadRequest(status: .badRequest, detail: error.description)
        }
    }

    func string(_ field: String) throws -> String {
        do { return try body.string(field) } catch { throw BadRequest(status: .badRequest, detail: error.description) }
    }

    func optionalString(_ field: String) throws -> String? {
        do { return try body.optionalString(field) } catch { throw BadRequest(status: .badRequest, detail: error.description) }
    }
}


extension FormBody {
    /// A form body as it arrived.
    static func parse(_ body: ByteBuffer) -> [String: String]? {
        parse(String(decoding: body.readableBytesView, as: UTF8.self))
    }
}
