import Foundation
import GatehouseTestSupport
import GatehouseTokens
@testable import GatehouseServer

/// Tenants with users: acme (open signup, lockout after 3), globex (another tenant), closed (no signup) and
/// picky (one email domain).
let authTenants: [String: String] = [
    "acme": """
        hosts: [acme.test]
        signup: {enabled: true}
        lockout: {max_failures: 3, window: 15m}
        routes:
          - {path: /admin, upstream: "{{ECHO}}", require: {roles: [admin]}}
          - {path: /private, upstream: "{{ECHO}}"}
          - {path: /asserted, upstream: "{{ECHO}}", identity_assertion: true}
          - {path: /forward, upstream: "{{ECHO}}", forward_authorization: true}
          - {path: /, upstream: "{{ECHO}}", require: public}
        """,
    "globex": """
        hosts: [globex.test]
        signup: {enabled: true}
        routes:
          - {path: /private, upstream: "{{ECHO}}"}
        """,
    "closed": """
        hosts: [closed.test]
        routes:
          - {path: /, upstream: "{{ECHO}}"}
        """,
    "picky": """
        hosts: [picky.test]
        signup: {enabled: true, allowed_email_domains: [picky.test]}
        routes:
          - {path: /, upstream: "{{ECHO}}"}
        """,
]

/// Cheap argon2 parameters keep the end-to-end tests quick; the defaults are measured by the benchmark.
let authGatewayExtra = """
    password_hashing: {memory: 1MiB, iterations: 1}
    limits:
      auth_body_bytes: 4KiB
      upstream_timeout: 2s

    """

func withAuthGateway(_ body: (TestGateway) async throws -> Void) async throws {
    try await TestGateway.with(gatewayExtra: authGatewayExtra, tenants: authTenants, scripted: [:], body)
}

extension TestGateway {
    /// A request with a body of the given type.
    func post(_ path: String, host: String = "acme.test", contentType: String = "application/json", _ body: String, headers: [(String, String)] = [])
        async throws -> TestResponse
    {
        try await requestOffThread(port: port, path, method: "POST", host: host, headers: [("Content-Type", contentType)] + headers, body: body)
    }

    func get(_ path: String, host: String = "acme.test", token: String? = nil) async throws -> TestResponse {
        try await requestOffThread(port: port, path, host: host, headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    /// Signs a user up and logs them in; returns the token response.
    func signUpAndLogIn(_ email: String, password: String = "a long password", host: String = "acme.test") async throws -> (access: String, refresh: String) {
        let signup = try await post("/auth/signup", host: host, #"{"email":"\#(email)","password":"\#(password)","name":"Test User"}"#)
        precondition(signup.status == 201, "signup failed: \(signup.status) \(signup.text)")
        return try await logIn(email, password: password, host: host)
    }

    func logIn(_ email: String, password: String = "a long password", host: String = "acme.test") async throws -> (access: String, refresh: String) {
        let login = try await post("/auth/login", host: host, #"{"email":"\#(email)","password":"\#(password)"}"#)
        precondition(login.status == 200, "login failed: \(login.status) \(login.text)")
        return (login.json["access_token"] as! String, login.json["refresh_token"] as! String)
    }

    /// The tenant's current signing key, for forging tokens the way an attacker holding it could.
    func signingKey(_ tenant: String) -> SigningKey? {
        server.state.identity.keys.directory.ring(for: tenant).signingKey
    }
}
