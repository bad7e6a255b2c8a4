@testable import GatehouseConfiguration
import GatehouseProxy
import GatehouseTokens
import Testing
@testable import GatehouseServer

/// The policy decision (§6.3) for every kind of requirement and every authentication outcome. The switch in
/// `RouteAuthorizer.authorize` has no default, so a new `Requirement` case does not compile without a decision;
/// these tests pin what each existing decision is, deny included.
@Suite struct RouteAuthorizerTests {
    let authorizer = RouteAuthorizer(validator: TokenValidator(keys: KeyDirectory(), revocations: RevocationList(), cache: VerifiedTokenCache()))

    var tenant: Tenant {
        var configuration = TenantConfiguration(
            id: "acme", file: "acme.yaml", hosts: [], issuer: "http://acme.test", audience: "acme", branding: .init(displayName: "Acme"),
            identityHeaders: TenantConfiguration.defaultIdentityHeaders + [.init(name: "X-Aud", claim: .aud), .init(name: "X-Exp", claim: .exp)])
        configuration.routes = []
        return Tenant(configuration)
    }

    func route(_ requirement: RouteConfiguration.Requirement) -> Route {
        var route = RouteConfiguration(path: "/api", upstream: UpstreamURL(host: "127.0.0.1", port: 1, basePath: ""), line: 1)
        route.requirement = requirement
        return Route(route)
    }

    func claims(roles: [String]) -> AccessTokenClaims {
        AccessTokenClaims(
            iss: "http://acme.test", aud: "acme", sub: "u1", email: "a@acme.test", name: "A", roles: roles, tenant: "acme", sid: "s1", iat: 1,
            exp: 2, jti: "j1")
    }

    func status(_ decision: AuthorizationDecision) -> Int {
        switch decision {
        case .allow: return 200
        case .deny(let problem): return Int(problem.status.code)
        }
    }

    @Test func eachRequirementDecidesEveryOutcome() {
        let outcomes: [(String, Authentication)] = [
            ("anonymous", .anonymous), ("invalid", .invalid(.badSignature)), ("user", .valid(claims(roles: ["user"]))),
            ("admin", .valid(claims(roles: ["admin"]))),
        ]
        let expected: [(RouteConfiguration.Requirement, [Int])] = [
            (.public, [200, 200, 200, 200]),
            (.authenticated, [401, 401, 200, 200]),
            (.anyRole(["admin"]), [401, 401, 403, 200]),
            (.anyRole([]), [401, 401, 403, 403]),
        ]
        for (requirement, statuses) in expected {
            for ((name, outcome), status) in zip(outcomes, statuses) {
                #expect(self.status(authorizer.authorize(outcome, tenant: tenant, route: route(requirement))) == status, "\(requirement) \(name)")
            }
        }
    }

    @Test func identityHeadersComeFromTheClaimCatalogue() throws {
        guard case .allow(let headers) = authorizer.authorize(.valid(claims(roles: ["a", "b"])), tenant: tenant, route: route(.authenticated)) else {
            Issue.record("denied")
            return
        }
        let values = Dictionary(headers, uniquingKeysWith: { first, _ in first })
        #expect(values["X-Aud"] == "acme", "a mapped `aud` claim reaches the upstream")
        #expect(values["X-Exp"] == "2")
        #expect(values["X-User-Roles"] == "a,b")
        #expect(values["X-User-Id"] == "u1")
    }
}
