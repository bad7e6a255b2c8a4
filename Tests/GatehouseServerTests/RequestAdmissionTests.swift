import Foundation
@testable import GatehouseConfiguration
import GatehouseIdentity
import GatehouseProxy
import GatehouseTokens
import NIOHTTP1
import Testing
@testable import GatehouseServer

/// Admission as the pure function it is: each decision of §3, §6 and §7 from a request head alone, without a
/// socket. The end-to-end suites check the same answers through the listener.
@Suite struct RequestAdmissionTests {
    let admission: RequestAdmission

    init() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-admission-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
        try "listen: 127.0.0.1:8080\ntenants: tenants\nlimits: {max_body_bytes: 1000, auth_body_bytes: 100}\n"
            .write(to: root.appendingPathComponent("gatehouse.yaml"), atomically: true, encoding: .utf8)
        try """
            hosts: [acme.test, other.acme.test]
            routes:
              - {path: /api, upstream: "http://127.0.0.1:1", methods: [GET, POST]}
              - {path: /open, upstream: "http://127.0.0.1:1", require: public}
            """.write(to: root.appendingPathComponent("tenants/acme.yaml"), atomically: true, encoding: .utf8)
        let loaded = try ConfigurationLoader.load(configPath: root.appendingPathComponent("gatehouse.yaml").path, environment: [:]).get()
        admission = RequestAdmission(
            tenants: TenantDirectory(loaded.tenants),
            authorizer: RouteAuthorizer(validator: TokenValidator(keys: KeyDirectory(), revocations: RevocationList(), cache: VerifiedTokenCache())),
            limits: loaded.gateway.limits, isHTTP2: false, scheme: "http")
    }

    func decide(_ method: HTTPMethod = .GET, _ uri: String, _ headers: [(String, String)] = [("Host", "acme.test")], session: RequestAdmission.SessionInput = .needsStore)
        -> RequestAdmission.Decision
    {
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
        return admission.decide(head, facts: RequestHeaderFacts(head.headers)) { _, _ in session }
    }

    /// The status of a refusal, or what else was decided.
    func outcome(_ decision: RequestAdmission.Decision) -> String {
        switch decision {
        case .reject(let rejection): return "\(rejection.problem.status.code)" + (rejection.problem.closeConnection ? " close" : "")
        case .endpoint(_, let target, _): return "endpoint \(target.path)"
        case .lookUpSession(_, let cookies): return "session \(cookies.count)"
        case .proxy(let admitted): return "proxy \(admitted.route.path) \(admitted.target.path)"
        }
    }

    @Test func framingHostAndTenantComeFirst() {
        #expect(outcome(decide(.POST, "/api", [("Host", "acme.test"), ("Transfer-Encoding", "gzip")])) == "400 close")
        #expect(outcome(decide(.POST, "/api", [("Host", "acme.test"), ("Content-Length", "1"), ("Content-Length", "2")])) == "400 close")
        #expect(outcome(decide(.GET, "/api", [])) == "400")
        #expect(outcome(decide(.GET, "/api", [("Host", "acme.test"), ("Host", "other.acme.test")])) == "400")
        #expect(outcome(decide(.GET, "/api", [("Host", "nobody.test")])) == "404")
        #expect(outcome(decide(.GET, "/api", [("Host", "acme.test"), ("Authorization", "Bearer a"), ("Authorization", "Bearer b")])) == "400")
        #expect(outcome(decide(.GET, "/api/%2e%2e/../x")) == "400")
    }

    @Test func reservedPathsAreTheGatewaysOwn() {
        #expect(outcome(decide(.POST, "/auth/login", [("Host", "acme.test"), ("Content-Length", "10")])) == "endpoint /auth/login")
        #expect(outcome(decide(.GET, "/auth/nothing")) == "404")
        if case .reject(let rejection) = decide(.DELETE, "/auth/login") {
            #expect(rejection.problem.status == .methodNotAllowed && rejection.problem.headers.contains { $0.0 == "Allow" })
        } else {
            Issue.record("not refused")
        }
        #expect(outcome(decide(.POST, "/auth/login", [("Host", "acme.test"), ("Content-Length", "101")])) == "413 close")
    }

    @Test func routesMethodsLimitsAndExpect() {
        #expect(outcome(decide(.GET, "/nowhere")) == "404")
        #expect(outcome(decide(.DELETE, "/api/x")) == "405")
        #expect(outcome(decide(.POST, "/open", [("Host", "acme.test"), ("Content-Length", "1001")])) == "413 close")
        #expect(outcome(decide(.POST, "/open", [("Host", "acme.test"), ("Content-Length", "1"), ("Expect", "something")])) == "417")
        #expect(outcome(decide(.GET, "/open/a/../b?x=1")) == "proxy /open /open/b")
    }

    @Test func authenticationPolicyAndTheLoginRedirect() throws {
        #expect(outcome(decide(.GET, "/api/orders")) == "401")
        let browser = decide(.GET, "/api/orders?x=1", [("Host", "acme.test"), ("Accept", "text/html")])
        guard case .reject(let redirect) = browser else { Issue.record("not refused"); return }
        #expect(redirect.problem.status == .found && redirect.problem.headers.contains { $0 == ("Location", "/auth/login?rd=/api/orders%3Fx%3D1") })
        #expect(redirect.authentication != nil, "a request that got as far as authentication is counted")
        // A session cookie is looked up first, then decided with the answer.
        let cookie = [("Host", "acme.test"), ("Cookie", "gatehouse_session=abc")]
        #expect(outcome(decide(.GET, "/api/orders", cookie)) == "session 1")
        #expect(outcome(decide(.GET, "/api/orders", cookie, session: .answered(nil))) == "401")
        #expect(outcome(decide(.GET, "/api/orders", cookie, session: .unavailable)) == "503")
        let session = ActiveSession(
            record: SessionRecord(hash: "h", tenant: "acme", sid: "s", userID: "u", createdAt: 1, lastSeenAt: 1, expiresAt: .max),
            claims: AccessTokenClaims(iss: "http://acme.test", aud: "acme", sub: "u", email: "a@acme.test", name: "", roles: [], tenant: "acme", sid: "s", iat: 1, exp: .max, jti: ""))
        #expect(outcome(decide(.GET, "/api/orders", cookie, session: .answered(session))) == "proxy /api /api/orders")
        // §7: a cookie-authenticated POST needs the tenant's Origin.
        #expect(outcome(decide(.POST, "/api/orders", cookie, session: .answered(session))) == "403")
        #expect(outcome(decide(.POST, "/api/orders", cookie + [("Origin", "http://evil.test")], session: .answered(session))) == "403")
        #expect(outcome(decide(.POST, "/api/orders", cookie + [("Origin", "http://other.acme.test")], session: .answered(session))) == "proxy /api /api/orders")
        // A bearer token wins over the cookie: no lookup at all.
        #expect(outcome(decide(.GET, "/api/orders", cookie + [("Authorization", "Bearer not-a-token")])) == "401")
    }

    @Test func theSessionIsAskedForOnceAndOnlyForACookieWithoutABearerToken() {
        final class Count { var value = 0 }
        func asks(_ headers: [(String, String)], _ uri: String = "/api/orders") -> Int {
            let count = Count()
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
            _ = admission.decide(head, facts: RequestHeaderFacts(head.headers)) { _, _ in
                count.value += 1
                return .answered(nil)
            }
            return count.value
        }
        #expect(asks([("Host", "acme.test"), ("Cookie", "gatehouse_session=abc")]) == 1)
        #expect(asks([("Host", "acme.test"), ("Cookie", "other=1")]) == 0)
        #expect(asks([("Host", "acme.test"), ("Cookie", "gatehouse_session=abc"), ("Authorization", "Bearer x")]) == 0)
        // Refused before authentication: no lookup.
        #expect(asks([("Host", "acme.test"), ("Cookie", "gatehouse_session=abc")], "/nowhere") == 0)
    }

    @Test func aWebSocketHandshakeHasNoBody() {
        let upgrade = [("Host", "acme.test"), ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        #expect(outcome(decide(.GET, "/open/ws", upgrade)) == "proxy /open /open/ws")
        #expect(outcome(decide(.GET, "/open/ws", upgrade + [("Content-Length", "5")])) == "400 close")
    }
}
