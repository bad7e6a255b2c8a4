import Foundation
@testable import GatehouseIdentity
import GatehouseTestSupport
import Testing

@testable import GatehouseServer

/// The audit trail through real sockets (§10): every event an endpoint causes is in the store and on the audit log,
/// with the request it came from, and not one byte of either is a secret the test used.
@Suite struct AuditEndToEndTests {
    static let agent = "AuditTest/1.0"
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let password = "Tr0ub4dor-audit-1"
    static let newPassword = "Correct-Horse-audit-2"
    static let wrongPassword = "Wr0ng-audit-guess"

    static func headers(_ id: String) -> [(String, String)] {
        [("X-Request-Id", id), ("User-Agent", agent), ("traceparent", "00-\(traceID)-00f067aa0ba902b7-01")]
    }

    @Test func everyEndpointEventIsRecordedWithItsRequestAndNothingSecret() async throws {
        try await withAuthGateway { gateway in
            var secrets = [Self.password, Self.newPassword, Self.wrongPassword, "sh0rt!"]
            func post(_ path: String, _ id: String, _ body: String, headers: [(String, String)] = []) async throws -> TestResponse {
                try await gateway.post(path, body, headers: Self.headers(id) + headers)
            }
            #expect(try await post("/auth/signup", "r-signup", #"{"email":"ann@acme.test","password":"\#(Self.password)"}"#).status == 201)
            #expect(try await post("/auth/signup", "r-taken", #"{"email":"ANN@acme.test","password":"\#(Self.password)"}"#).status == 409)
            #expect(try await post("/auth/signup", "r-short", #"{"email":"sam@acme.test","password":"sh0rt!"}"#).status == 422)
            let login = try await post("/auth/login", "r-login", #"{"email":"ann@acme.test","password":"\#(Self.password)"}"#)
            #expect(login.status == 200)
            let firstRefresh = try #require(login.json["refresh_token"] as? String)
            let refreshed = try await post("/auth/refresh", "r-refresh", #"{"refresh_token":"\#(firstRefresh)"}"#)
            #expect(refreshed.status == 200)
            #expect(try await post("/auth/refresh", "r-reuse", #"{"refresh_token":"\#(firstRefresh)"}"#).status == 401)
            let second = try await post("/auth/login", "r-login-2", #"{"email":"ann@acme.test","password":"\#(Self.password)"}"#)
            let token = try #require(second.json["access_token"] as? String)
            let bearer = [("Authorization", "Bearer \(token)")]
            #expect(
                try await post("/auth/password", "r-password", #"{"current_password":"\#(Self.password)","new_password":"\#(Self.newPassword)"}"#, headers: bearer)
                    .status == 204)
            #expect(try await post("/auth/logout", "r-logout", "", headers: bearer).status == 204)
            for attempt in 0..<3 {
                #expect(try await post("/auth/login", "r-wrong-\(attempt)", #"{"email":"ann@acme.test","password":"\#(Self.wrongPassword)"}"#).status == 401)
            }
            #expect(try await post("/auth/login", "r-locked", #"{"email":"ann@acme.test","password":"\#(Self.newPassword)"}"#).status == 429)
            for response in [login, refreshed, second] {
                secrets += [response.json["access_token"] as? String, response.json["refresh_token"] as? String].compactMap { $0 }
            }

            // The browser: sign-up starts a session, logout ends it, a login starts another.
            var browser = TestBrowser(port: gateway.port)
            _ = try await browser.open("/auth/signup")
            let signup = try await browser.submit(
                "/auth/signup", [("email", "bob@acme.test"), ("password", Self.password), ("rd", "/")], headers: Self.headers("r-form-signup"))
            #expect(signup.status == 303)
            secrets += browser.cookies.values
            #expect(try await browser.send("/auth/logout", method: "POST", headers: Self.headers("r-form-logout") + [("Origin", browser.origin)]).status == 204)
            _ = try await browser.open("/auth/login")
            let formLogin = try await browser.submit("/auth/login", [("email", "bob@acme.test"), ("password", Self.password)], headers: Self.headers("r-form-login"))
            #expect(formLogin.status == 303)
            secrets += browser.cookies.values

            let expected: [(String, String, String?)] = [
                ("r-signup", "signup", nil), ("r-taken", "signup_error", "email_taken"), ("r-short", "signup_error", "password_too_short"),
                ("r-login", "login", nil), ("r-reuse", "refresh_reuse", nil), ("r-login-2", "login", nil), ("r-password", "password_change", nil),
                ("r-logout", "logout", nil), ("r-wrong-0", "login_error", "invalid_credentials"), ("r-wrong-1", "login_error", "invalid_credentials"),
                ("r-wrong-2", "login_error", "invalid_credentials"), ("r-wrong-2", "lockout", nil), ("r-locked", "login_error", "locked"),
                ("r-form-signup", "signup", nil), ("r-form-signup", "session_start", nil), ("r-form-logout", "session_end", nil),
                ("r-form-login", "login", nil), ("r-form-login", "session_start", nil),
            ]
            let stored = try await gateway.server.state.identity.store.auditEvents(AuditQuery(tenant: "acme", limit: 1000))
            #expect(stored.map { "\($0.requestID ?? "-") \($0.event.rawValue) \($0.error ?? "")" } == expected.map { "\($0.0) \($0.1) \($0.2 ?? "")" })
            for event in stored {
                #expect(event.actor == .user)
                #expect(event.ip == "127.0.0.1")
                #expect(event.userAgent == Self.agent)
                #expect(event.traceID == Self.traceID)
                #expect(event.tenant == "acme")
            }
            #expect(stored.filter { $0.event == .login }.allSatisfy { $0.sid != nil && $0.userID != nil && $0.email != nil })
            #expect(stored.first { $0.requestID == "r-short" }?.email == "sam@acme.test")

            let lines = gateway.auditLines()
            #expect(lines.map { "\($0["request_id"] as? String ?? "-") \($0["event"] as? String ?? "")" } == expected.map { "\($0.0) \($0.1)" })
            for line in lines {
                #expect(line["type"] as? String == "audit")
                #expect(line["actor"] as? String == "user")
                #expect(line["trace_id"] as? String == Self.traceID)
                #expect((line["time"] as? String)?.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil)
                for key in ["tenant", "event", "user_id", "email", "sid", "ip", "user_agent", "request_id", "actor"] { #expect(line.keys.contains(key), "\(key)") }
            }

            // Not one secret in any byte the gateway wrote: audit log, stored rows, access log.
            let users = try await gateway.server.state.identity.store.users(tenant: "acme")
            secrets += users.map(\.passwordHash)
            let keys = try await gateway.server.state.identity.keys.storedKeys(for: "acme")
            secrets += keys.map { $0.sealedPrivateKey.base64EncodedString() }
            if let key = gateway.signingKey("acme") { secrets.append(key.privateRepresentation.base64EncodedString()) }
            let auditBytes = String(decoding: FileManager.default.contents(atPath: gateway.root.appendingPathComponent("audit.log").path) ?? Data(), as: UTF8.self)
            let storedBytes = stored.map(\.jsonLine).joined()
            gateway.server.flushAccessLog()
            let accessBytes = gateway.accessLogLines().joined(separator: "\n")
            #expect(secrets.count >= 12)
            for secret in secrets where !secret.isEmpty {
                #expect(!auditBytes.contains(secret), "the audit log holds a secret")
                #expect(!storedBytes.contains(secret), "the stored events hold a secret")
                #expect(!accessBytes.contains(secret), "the access log holds a secret")
            }
        }
    }

    @Test func offWritesNoLinesButStillStoresTheEvents() async throws {
        try await TestGateway.with(gatewayExtra: authGatewayExtra + "audit_log: off\n", tenants: authTenants, scripted: [:]) { gateway in
            _ = try await gateway.signUpAndLogIn("ann@acme.test")
            #expect(gateway.auditLines().isEmpty)
            let stored = try await gateway.server.state.identity.store.auditEvents(AuditQuery(tenant: "acme"))
            #expect(stored.map(\.event) == [.signup, .login])
        }
    }

    @Test func theClientAddressComesFromATrustedProxyOnly() async throws {
        try await TestGateway.with(gatewayExtra: authGatewayExtra + "trusted_proxies: [127.0.0.0/8]\n", tenants: authTenants, scripted: [:]) { gateway in
            _ = try await gateway.post(
                "/auth/signup", #"{"email":"ann@acme.test","password":"a long password"}"#,
                headers: [("X-Forwarded-For", "198.51.100.1, 203.0.113.9"), ("X-Request-Id", "via-proxy")])
            _ = try await gateway.post(
                "/auth/signup", #"{"email":"bob@acme.test","password":"a long password"}"#,
                headers: [("X-Forwarded-For", "not-an-address"), ("X-Request-Id", "junk")])
            let stored = try await gateway.server.state.identity.store.auditEvents(AuditQuery(tenant: "acme"))
            #expect(stored.first { $0.requestID == "via-proxy" }?.ip == "203.0.113.9", "the address the trusted proxy saw")
            #expect(stored.first { $0.requestID == "junk" }?.ip == "127.0.0.1")
        }
        try await withAuthGateway { gateway in
            _ = try await gateway.post(
                "/auth/signup", #"{"email":"ann@acme.test","password":"a long password"}"#, headers: [("X-Forwarded-For", "198.51.100.1")])
            let stored = try await gateway.server.state.identity.store.auditEvents(AuditQuery(tenant: "acme"))
            #expect(stored.first?.ip == "127.0.0.1", "a forged X-Forwarded-For from anyone else is ignored")
        }
    }

    @Test func aFloodOfRefusalsThatCostNothingStoresOneEventAMinuteAndCountsTheRest() async throws {
        try await withAuthGateway { gateway in
            for _ in 0..<20 {
                #expect(try await gateway.post("/auth/signup", host: "closed.test", #"{"email":"x@closed.test","password":"a long password"}"#).status == 403)
            }
            let refused = try await gateway.server.state.identity.store.auditEvents(AuditQuery(tenant: "closed"))
            #expect(refused.map(\.event) == [.signupError])
            #expect(refused.first?.error == "signup_disabled")
            #expect(gateway.auditLines().filter { $0["tenant"] as? String == "closed" }.count == 1, "the log is throttled alike")
            // Another client is another key.
            let throttle = AuditThrottle(window: .seconds(60))
            let first = AuditEvent(.signupError, tenant: "t", context: .request(ip: "192.0.2.1", userAgent: nil, requestID: nil, traceID: nil), error: "x", time: 0)
            var later = first
            later.time = 61_000
            var other = first
            other.ip = "192.0.2.2"
            #expect(throttle.admit(first) == 0)
            #expect(throttle.admit(first) == nil)
            #expect(throttle.admit(other) == 0)
            #expect(throttle.admit(first) == nil)
            #expect(throttle.admit(later) == 2, "a minute on: stored, saying two were left out")
        }
    }
}
