import GatehouseConfiguration
import GatehouseProxy
import NIOHTTP1

/// What the policy step (§6.3) decided about one request.
enum AuthorizationDecision {
    /// Forward, injecting these identity headers (none for an anonymous request on a public route).
    case allow(identityHeaders: [(String, String)])
    case deny(ProblemResponse)
}

/// The one place where a route's `require` is enforced.
///
/// Until identities exist (tokens and sessions come with the identity issue) nothing carries a valid
/// identity, so only `public` routes pass and every other route answers 401 with a Bearer challenge.
struct RouteAuthorizer: Sendable {
    func authorize(_ head: HTTPRequestHead, tenant: Tenant, route: Route) -> AuthorizationDecision {
        switch route.requirement {
        case .public:
            return .allow(identityHeaders: [])
        case .authenticated, .anyRole:
            return .deny(
                ProblemResponse(
                    .unauthorized, "This route requires authentication: send Authorization: Bearer <access token>.",
                    headers: [("WWW-Authenticate", "Bearer realm=\"\(tenant.id)\"")]))
        }
    }
}
