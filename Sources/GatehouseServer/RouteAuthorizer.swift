import Foundation
import GatehouseConfiguration
import GatehouseMetrics
import GatehouseProxy
import GatehouseTokens
import NIOHTTP1

/// What the policy step (§6.3) decided about one request.
enum AuthorizationDecision {
    /// Forward, injecting these headers (identity headers, and `X-Identity-Assertion` when the route asks).
    /// None for an anonymous request on a public route.
    case allow(identityHeaders: [(String, String)])
    case deny(ProblemResponse)
}

/// The outcome of authenticating one request.
enum Authentication {
    case anonymous
    case valid(AccessTokenClaims)
    case invalid(TokenRejection)
}

extension Authentication {
    /// The `result` of `gatehouse_auth_total`; exhaustive, so a new rejection must choose its label.
    var metricsResult: AuthResult {
        switch self {
        case .anonymous: return .anonymous
        case .valid: return .valid
        case .invalid(let rejection):
            switch rejection {
            case .malformed, .unsupportedHeader, .wrongType: return .malformed
            case .unknownKey: return .unknownKey
            case .algorithmMismatch, .badSignature: return .invalidSignature
            case .wrongIssuer: return .wrongIssuer
            case .wrongAudience: return .wrongAudience
            case .expired, .notYetValid: return .expired
            case .revoked: return .revoked
            }
        }
    }
}

/// Enforces a route's `require` (§6.3), synchronously on the event loop: a hot token costs a cache lookup.
struct RouteAuthorizer: Sendable {
    let validator: TokenValidator

    /// - Parameter authorization: the request's `Authorization` value, if any.
    func authorize(authorization: String?, tenant: Tenant, route: Route) -> AuthorizationDecision {
        authorize(authenticate(authorization: authorization, tenant: tenant), tenant: tenant, route: route)
    }

    /// Applies the route's requirement to who the request turned out to be (from a bearer token or a session).
    ///
    /// Exhaustive over the requirement, with no default: a new kind of requirement does not compile until it has
    /// a decision here, and every outcome other than a valid identity that meets it is a denial.
    func authorize(_ outcome: Authentication, tenant: Tenant, route: Route) -> AuthorizationDecision {
        switch route.requirement {
        case .public:
            // An invalid token on a public route is ignored: the request goes on anonymously.
            guard case .valid(let claims) = outcome else { return .allow(identityHeaders: []) }
            return .allow(identityHeaders: forwardedIdentity(claims, tenant: tenant, route: route))
        case .authenticated:
            switch outcome {
            case .valid(let claims): return .allow(identityHeaders: forwardedIdentity(claims, tenant: tenant, route: route))
            case .anonymous: return .deny(Self.authenticationRequired(tenant))
            case .invalid(let rejection): return .deny(Self.invalidToken(rejection, tenant: tenant))
            }
        case .anyRole(let roles):
            switch outcome {
            case .valid(let claims):
                guard claims.roles.contains(where: roles.contains) else {
                    return .deny(
                        ProblemResponse(
                            .forbidden, "This route requires one of the roles: \(roles.joined(separator: ", ")).",
                            headers: [("WWW-Authenticate", Self.challenge(tenant, error: "insufficient_scope"))]))
                }
                return .allow(identityHeaders: forwardedIdentity(claims, tenant: tenant, route: route))
            case .anonymous: return .deny(Self.authenticationRequired(tenant))
            case .invalid(let rejection): return .deny(Self.invalidToken(rejection, tenant: tenant))
            }
        }
    }

    static func authenticationRequired(_ tenant: Tenant) -> ProblemResponse {
        ProblemResponse(
            .unauthorized, "This route requires authentication: send Authorization: Bearer <access token>.",
            headers: [("WWW-Authenticate", challenge(tenant, error: nil))])
    }

    /// Who the request's bearer token says the caller is.
    func authenticate(_ headers: HTTPHeaders, tenant: Tenant) -> Authentication {
        authenticate(authorization: headers.first(name: "authorization"), tenant: tenant)
    }

    /// Who an `Authorization` value says the caller is.
    func authenticate(authorization: String?, tenant: Tenant) -> Authentication {
        switch BearerCredential.parse(authorization: authorization) {
        case .none: return .anonymous
        case .malformed: return .invalid(.malformed)
        case .bearer(let token):
            switch validator.validate(token, for: Self.expectations(tenant)) {
            case .success(let claims): return .valid(claims)
            case .failure(let rejection): return .invalid(rejection)
            }
        }
    }

    static func expectations(_ tenant: Tenant) -> TokenExpectations {
        let configuration = tenant.configuration
        return TokenExpectations(
            tenant: configuration.id, issuer: configuration.issuer, audience: configuration.audience,
            clockSkewSeconds: Int64(configuration.tokens.clockSkew.components.seconds))
    }

    static func challenge(_ tenant: Tenant, error: String?) -> String {
        var value = "Bearer realm=\"\(tenant.id)\""
        if let error { value += ", error=\"\(error)\"" }
        return value
    }

    static func invalidToken(_ rejection: TokenRejection, tenant: Tenant) -> ProblemResponse {
        ProblemResponse(
            .unauthorized, rejection.description, headers: [("WWW-Authenticate", challenge(tenant, error: "invalid_token"))])
    }

    /// The tenant's identity headers from the token's claims, plus `X-Identity-Assertion` when the route asks.
    private func forwardedIdentity(_ claims: AccessTokenClaims, tenant: Tenant, route: Route) -> [(String, String)] {
        var headers: [(String, String)] = []
        headers.reserveCapacity(tenant.configuration.identityHeaders.count + 1)
        for header in tenant.configuration.identityHeaders {
            headers.append((header.name, Self.headerSafe(claims.value(of: header.claim))))
        }
        if route.configuration.identityAssertion, let assertion = identityAssertion(claims, tenant: tenant, route: route) {
            headers.append(("X-Identity-Assertion", assertion))
        }
        return headers
    }

    /// A 60-second JWT for the upstream, signed by the tenant's key, with the upstream's origin as audience, so a
    /// backend can verify the identity with the JWKS instead of trusting headers.
    private func identityAssertion(_ claims: AccessTokenClaims, tenant: Tenant, route: Route) -> String? {
        guard let key = validator.keys.ring(for: tenant.id).signingKey, key.algorithm != .hs256 else { return nil }
        let now = Int64(Date().timeIntervalSince1970)
        let assertion = IdentityAssertionClaims(
            iss: claims.iss, aud: route.upstream.origin, sub: claims.sub, email: claims.email, name: claims.name, roles: claims.roles,
            tenant: claims.tenant, sid: claims.sid, iat: now, exp: now + 60, jti: UUID().uuidString.lowercased())
        return try? CompactJWS.sign(assertion, with: key, type: "JWT")
    }

    /// Control characters never reach an injected header value (§5): they are dropped.
    static func headerSafe(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return value }
        return String(String.UnicodeScalarView(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
    }
}

/// The claims of `X-Identity-Assertion`.
struct IdentityAssertionClaims: Encodable {
    var iss: String
    var aud: String
    var sub: String
    var email: String
    var name: String
    var roles: [String]
    var tenant: String
    var sid: String
    var iat: Int64
    var exp: Int64
    var jti: String
}
