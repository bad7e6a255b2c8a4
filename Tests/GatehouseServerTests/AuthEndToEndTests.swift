import Crypto
import Foundation
import GatehouseIdentity
import GatehouseConfiguration
import GatehouseTestSupport
@testable import GatehouseTokens
import Logging
import Testing
@testable import GatehouseServer

/// Sign-up, login, tokens and policy through real sockets, with a real SQLite file and the echo upstream.
@Suite(.serialized) struct AuthEndToEndTests {
    @Test func signUpLogInAndCallAProtectedRoute() async throws {
        try await withAuthGateway { gateway in
            let signup = try await gateway.post("/auth/signup", #"{"email":"Ada@Acme.test","password":"a long password","name":"Ada"}"#)
            #expect(signup.status == 201)
            #expect(signup.json["email"] as? String == "ada@acme.test", "stored in canonical form (§5)")
            #expect(signup.json["roles"] as? [String] == ["user"])
            #expect(signup.json["tenant"] as? String == "acme")
            #expect(signup.json["password_hash"] == nil && !signup.text.contains("argon2"))
            let userID = try #require(signup.json["id"] as? String)

            let login = try await gateway.post("/auth/login", #"{"email":"ada@acme.test","password":"a long password"}"#)
            #expect(login.status == 200)
            #expect(login.header("cache-control") == "no-store")
            #expect(login.json["token_type"] as? String == "Bearer")
            #expect(login.json["expires_in"] as? Int == 900)
            let token = try #require(login.json["access_token"] as? String)
            #expect((login.json["refresh_token"] as? String)?.count ?? 0 >= 43, "at least 256 bits")

            let proxied = try await gateway.get("/private/orders", token: token)
            #expect(proxied.status == 200)
            let seen = proxied.echoedHeaders
            #expect(seen["x-user-id"] == userID)
            #expect(seen["x-user-email"] == "ada@acme.test")
            #expect(seen["x-user-name"] == "Ada")
            #expect(seen["x-user-roles"] == "user")
            #expect(seen["x-tenant-id"] == "acme")
            #expect(seen["authorization"] == nil, "forward_authorization is off by default")
            #expect(try await gateway.get("/forward", token: token).echoedHeaders["authorization"] == "Bearer \(token)")

            let me = try await gateway.get("/auth/me", token: token)
            #expect(me.status == 200 && me.json["id"] as? String == userID)

            let anonymous = try await gateway.get("/private/orders")
            #expect(anonymous.status == 401)
            #expect(anonymous.header("www-authenticate") == #"Bearer realm="acme""#)

            let admin = try await gateway.get("/admin", token: token)
            #expect(admin.status == 403)
            #expect(admin.header("www-authenticate") == #"Bearer realm="acme", error="insufficient_scope""#)
        }
    }

    @Test func signUpRejectsBadInput() async throws {
        try await withAuthGateway { gateway in
            func signup(_ body: String, host: String = "acme.test", type: String = "application/json") async throws -> TestResponse {
                try await gateway.post("/auth/signup", host: host, contentType: type, body)
            }
            let cases: [(String, Int, String)] = [
                (#"{"email":"a@acme.test","password":"#, 400, "not valid JSON"),
                (#"["a@acme.test"]"#, 400, "JSON object"),
                (#"{"password":"a long password"}"#, 400, "'email' is missing"),
                (#"{"email":"a@acme.test","password":1234567890}"#, 400, "'password' must be a string"),
                (#"{"email":"a@acme.test","password":"\#(String(repeating: "x", count: 1025))"}"#, 422, "at most 1024 bytes"),
                (#"{"email":"a@acme.test","password":"123456789"}"#, 422, "at least 10 characters"),
                (#"{"email":"not-an-email","password":"a long password"}"#, 422, "'email'"),
            ]
            for (body, status, detail) in cases {
                let response = try await signup(body)
                #expect(response.status == status, "\(body.prefix(60))")
                #expect(response.header("content-type") == "application/problem+json")
                #expect((response.json["detail"] as? String)?.contains(detail) == true, "\(response.text)")
            }
            // Addresses a mail parser would read as someone else's (§5): 422, never stored or forwarded.
            for address in [
                "<sam@acme.test>", "sam@acme.test(x)", "kate@acme.test;x", #"x@acme.test\\"#, #"\"<svg/onload=alert(1)>\"@acme.test"#,
                "a b@acme.test", "a@b@acme.test",
            ] {
                let response = try await signup(#"{"email":"\#(address)","password":"a long password"}"#)
                #expect(response.status == 422, "\(address): \(response.text)")
            }
            // Two spellings of one address are one account: the Kelvin sign, and NFD against NFC.
            let kelvin = try await signup(#"{"email":"\u212Aim@acme.test","password":"a long password"}"#)
            #expect(kelvin.status == 201)
            #expect(kelvin.json["email"] as? String == "kim@acme.test")
            #expect(try await signup(#"{"email":"kim@acme.test","password":"a long password"}"#).status == 409)
            #expect(try await signup(#"{"email":"jose\u0301@acme.test","password":"a long password"}"#).status == 201)
            #expect(try await signup(#"{"email":"jos\u00e9@acme.test","password":"a long password"}"#).status == 409)
            let nul = try await signup(#"{"email":"nul@acme.test","password":"a long password","name":"Ann\u0000Admin"}"#)
            #expect(nul.status == 422)
            #expect(try await signup(#"{"email":"dup@acme.test","password":"a long password"}"#).status == 201)
            #expect(try await signup(#"{"email":"DUP@Acme.Test","password":"a long password"}"#).status == 409)
            #expect(try await signup(#"{"email":"a@closed.test","password":"a long password"}"#, host: "closed.test").status == 403)
            #expect(try await signup(#"{"email":"a@evil.test","password":"a long password"}"#, host: "picky.test").status == 403)
            #expect(try await signup(#"{"email":"a@picky.test","password":"a long password"}"#, host: "picky.test").status == 201)
            #expect(try await signup("email=a@acme.test", type: "text/plain").status == 415)
            let huge = #"{"email":"big@acme.test","password":"\#(String(repeating: "x", count: 5000))"}"#
            #expect(try await signup(huge).status == 413)
            let put = try await requestOffThread(port: gateway.port, "/auth/signup", method: "PUT", body: "{}")
            #expect(put.status == 405)
            #expect(put.header("allow") == "GET, HEAD, POST")
            #expect(try await requestOffThread(port: gateway.port, "/auth/signup").status == 200, "the HTML signup page")
            #expect(try await requestOffThread(port: gateway.port, "/auth/nothing-here").status == 404)
        }
    }

    @Test func everyBadTokenIs401InvalidToken() async throws {
        try await withAuthGateway { gateway in
            let (token, _) = try await gateway.signUpAndLogIn("victim@acme.test")
            let (globexToken, _) = try await gateway.signUpAndLogIn("g@globex.test", host: "globex.test")
            let key = try #require(gateway.signingKey("acme"))
            let claims = try JSONDecoder().decode(AccessTokenClaims.self, from: Base64URL.decode(token.split(separator: ".")[1])!)

            func forge(header: [String: Any]? = nil, _ change: (inout AccessTokenClaims) -> Void = { _ in }, sign: ((Data) -> Data)? = nil) throws -> String {
                var forged = claims
                change(&forged)
                let headerJSON = try JSONSerialization.data(withJSONObject: header ?? ["alg": "ES256", "kid": key.kid, "typ": "at+jwt"])
                let input = Base64URL.encode(headerJSON) + "." + Base64URL.encode(try JSONEncoder().encode(forged))
                let signature = try sign?(Data(input.utf8)) ?? key.sign(Data(input.utf8))
                return input + "." + Base64URL.encode(signature)
            }
            let jwk = try #require(key.verificationKey.publicJWK)
            let now = Int64(Date().timeIntervalSince1970)
            let parts = token.split(separator: ".")
            var tamperedClaims = claims
            tamperedClaims.roles = ["admin"]
            let bad: [(String, String)] = [
                ("alg none", try forge(header: ["alg": "none", "kid": key.kid, "typ": "at+jwt"], sign: { _ in Data() })),
                ("HS256 with the public key", try forge(header: ["alg": "HS256", "kid": key.kid, "typ": "at+jwt"]) { _ in } sign: { input in
                    Data(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: Data((jwk["x"]! + jwk["y"]!).utf8))))
                }),
                ("unknown kid", try forge(header: ["alg": "ES256", "kid": "nope", "typ": "at+jwt"])),
                ("kid with ../", try forge(header: ["alg": "ES256", "kid": "../../keys/acme", "typ": "at+jwt"])),
                ("tampered payload", parts[0] + "." + Base64URL.encode(try JSONEncoder().encode(tamperedClaims)) + "." + parts[2]),
                ("expired beyond the skew", try forge { $0.exp = now - 31 }),
                ("nbf in the future", try forge { $0.nbf = now + 3600 }),
                ("wrong iss", try forge { $0.iss = "http://evil.test" }),
                ("wrong aud", try forge { $0.aud = ["globex"] }),
                ("the other tenant's token", globexToken),
                ("crit", try forge(header: ["alg": "ES256", "kid": key.kid, "typ": "at+jwt", "crit": ["exp"]])),
                ("b64 false", try forge(header: ["alg": "ES256", "kid": key.kid, "typ": "at+jwt", "b64": false, "crit": ["b64"]])),
                ("jku", try forge(header: ["alg": "ES256", "kid": key.kid, "typ": "at+jwt", "jku": "https://evil.test/jwks"])),
                ("jwk", try forge(header: ["alg": "ES256", "kid": key.kid, "typ": "at+jwt", "jwk": jwk])),
                ("x5u", try forge(header: ["alg": "ES256", "kid": key.kid, "typ": "at+jwt", "x5u": "https://evil.test/c.pem"])),
                ("the high-S copy of the real token", parts[0] + "." + parts[1] + "." + Base64URL.encode(ECDSALowS.complement(Base64URL.decode(parts[2])!))),
                ("garbage", "not-a-token"),
            ]
            for (name, forged) in bad {
                let response = try await gateway.get("/private", token: forged)
                #expect(response.status == 401, "\(name)")
                #expect(response.header("www-authenticate") == #"Bearer realm="acme", error="invalid_token""#, "\(name)")
                #expect(response.header("content-type") == "application/problem+json", "\(name)")
            }
            let empty = try await requestOffThread(port: gateway.port, "/private", headers: [("Authorization", "Bearer ")])
            #expect(empty.status == 401 && empty.header("www-authenticate")?.contains("invalid_token") == true)
            let twice = try await requestOffThread(port: gateway.port, "/private", headers: [("Authorization", "Bearer \(token)"), ("Authorization", "Bearer x")])
            #expect(twice.status == 400)
            // The genuine token still works, and stops working once its login is revoked.
            #expect(try await gateway.get("/private", token: token).status == 200)
            #expect(try await requestOffThread(port: gateway.port, "/auth/logout", method: "POST", headers: [("Authorization", "Bearer \(token)")]).status == 204)
            let revoked = try await gateway.get("/private", token: token)
            #expect(revoked.status == 401 && revoked.header("www-authenticate")?.contains("invalid_token") == true)
            #expect(try await gateway.get("/auth/me", token: token).status == 401)
        }
    }

    @Test func aPublicRouteIgnoresABadTokenAndUsesAGoodOne() async throws {
        try await withAuthGateway { gateway in
            let (token, _) = try await gateway.signUpAndLogIn("pub@acme.test")
            let anonymous = try await requestOffThread(port: gateway.port, "/", headers: [("Authorization", "Bearer garbage"), ("X-User-Id", "forged")])
            #expect(anonymous.status == 200)
            #expect(anonymous.echoedHeaders["x-user-id"] == nil)
            let known = try await gateway.get("/", token: token)
            #expect(known.echoedHeaders["x-user-email"] == "pub@acme.test")
        }
    }

    @Test func refreshRotatesAndReuseRevokesTheFamily() async throws {
        try await withAuthGateway { gateway in
            let (_, refresh) = try await gateway.signUpAndLogIn("fam@acme.test")
            let (_, globexRefresh) = try await gateway.signUpAndLogIn("fam@globex.test", host: "globex.test")
            let rotated = try await gateway.post("/auth/refresh", #"{"refresh_token":"\#(refresh)"}"#)
            #expect(rotated.status == 200)
            let newAccess = try #require(rotated.json["access_token"] as? String)
            let newRefresh = try #require(rotated.json["refresh_token"] as? String)
            #expect(try await gateway.get("/private", token: newAccess).status == 200)
            // The spent token again: 401, and everything descended from that login is revoked.
            #expect(try await gateway.post("/auth/refresh", #"{"refresh_token":"\#(refresh)"}"#).status == 401)
            #expect(try await gateway.post("/auth/refresh", #"{"refresh_token":"\#(newRefresh)"}"#).status == 401)
            #expect(try await gateway.get("/private", token: newAccess).status == 401)
            #expect(try await gateway.post("/auth/refresh", #"{"refresh_token":"\#(globexRefresh)"}"#).status == 401, "another tenant's")
            #expect(try await gateway.post("/auth/refresh", #"{"refresh_token":"unknown"}"#).status == 401)
        }
    }

    @Test func theTokenEndpointSpeaksOAuth() async throws {
        try await withAuthGateway { gateway in
            _ = try await gateway.signUpAndLogIn("oauth@acme.test")
            let form = "application/x-www-form-urlencoded"
            let granted = try await gateway.post("/auth/token", contentType: form, "grant_type=password&username=oauth%40acme.test&password=a+long+password")
            #expect(granted.status == 200)
            #expect(granted.header("cache-control") == "no-store")
            let refresh = try #require(granted.json["refresh_token"] as? String)
            let refreshed = try await gateway.post("/auth/token", contentType: form, "grant_type=refresh_token&refresh_token=\(refresh)")
            #expect(refreshed.status == 200)
            let cases: [(String, Int, String)] = [
                ("grant_type=password&username=oauth%40acme.test&password=wrong", 400, "invalid_grant"),
                ("grant_type=refresh_token&refresh_token=\(refresh)", 400, "invalid_grant"),
                ("grant_type=client_credentials", 400, "unsupported_grant_type"),
                ("username=x&password=y", 400, "invalid_request"),
                ("grant_type=password&username=x", 400, "invalid_request"),
                ("grant_type=password&grant_type=password&username=x&password=y", 400, "invalid_request"),
            ]
            for (body, status, error) in cases {
                let response = try await gateway.post("/auth/token", contentType: form, body)
                #expect(response.status == status, "\(body)")
                #expect(response.json["error"] as? String == error, "\(body): \(response.text)")
            }
            // RFC 6749 §5.2: whatever is wrong with the request, it is 400 invalid_request (never 415).
            let json = try await gateway.post("/auth/token", #"{"grant_type":"password"}"#)
            #expect(json.status == 400)
            #expect(json.json["error"] as? String == "invalid_request")
            let empty = try await requestOffThread(port: gateway.port, "/auth/token", method: "POST", host: "acme.test", body: "")
            #expect(empty.status == 400)
            #expect(empty.json["error"] as? String == "invalid_request")
        }
    }

    @Test func lockoutAnswers429WithRetryAfter() async throws {
        try await withAuthGateway { gateway in
            _ = try await gateway.signUpAndLogIn("lock@acme.test")
            for _ in 0..<3 {
                #expect(try await gateway.post("/auth/login", #"{"email":"lock@acme.test","password":"wrong password"}"#).status == 401)
            }
            let locked = try await gateway.post("/auth/login", #"{"email":"lock@acme.test","password":"a long password"}"#)
            #expect(locked.status == 429)
            #expect(Int(locked.header("retry-after") ?? "") ?? 0 > 0)
            // The OAuth token endpoint honours the same lockout, with an RFC 6749 body.
            let grant = try await gateway.post(
                "/auth/token", contentType: "application/x-www-form-urlencoded", "grant_type=password&username=lock%40acme.test&password=a+long+password")
            #expect(grant.status == 429)
            #expect(grant.json["error"] as? String == "invalid_grant")
            #expect(Int(grant.header("retry-after") ?? "") ?? 0 > 0)
            // An unknown email and a wrong password get the same answer.
            let unknown = try await gateway.post("/auth/login", #"{"email":"nobody@acme.test","password":"a long password"}"#)
            let wrong = try await gateway.post("/auth/login", #"{"email":"fresh@acme.test","password":"x"}"#)
            #expect(unknown.status == 401 && wrong.status == 401 && unknown.json["detail"] as? String == wrong.json["detail"] as? String)
        }
    }

    /// 59 wrong passwords at once against `max_failures: 3`: the attempt is reserved in the store before the hash,
    /// so at most 3 are ever evaluated, and the right password after the burst is locked out too.
    @Test func aBurstOfWrongPasswordsGetsNoMoreThanMaxFailuresGuesses() async throws {
        try await withAuthGateway { gateway in
            _ = try await gateway.signUpAndLogIn("burst@acme.test")
            let port = gateway.port
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<59 {
                    group.addTask {
                        try await requestOffThread(
                            port: port, "/auth/login", method: "POST", headers: [("Content-Type", "application/json")],
                            body: #"{"email":"burst@acme.test","password":"wrong password \#(index)"}"#
                        ).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 401 }.count == 3, "\(statuses.sorted())")
            #expect(statuses.filter { $0 == 429 }.count == 56, "\(statuses.sorted())")
            let right = try await gateway.post("/auth/login", #"{"email":"burst@acme.test","password":"a long password"}"#)
            #expect(right.status == 429, "the right password does not win once the window is full")
        }
    }

    /// A wrong `current_password` is a failed login too: a stolen token is not an unlimited password oracle.
    @Test func wrongCurrentPasswordsCountTowardsLockout() async throws {
        try await withAuthGateway { gateway in
            let (access, _) = try await gateway.signUpAndLogIn("oracle@acme.test")
            let bearer = [("Authorization", "Bearer \(access)")]
            var statuses: [Int] = []
            for index in 0..<6 {
                statuses.append(
                    try await gateway.post(
                        "/auth/password", #"{"current_password":"guess number \#(index)","new_password":"a new long password"}"#, headers: bearer
                    ).status)
            }
            #expect(statuses == [401, 401, 401, 429, 429, 429])
            let right = try await gateway.post(
                "/auth/password", #"{"current_password":"a long password","new_password":"a new long password"}"#, headers: bearer)
            #expect(right.status == 429)
            #expect(try await gateway.post("/auth/login", #"{"email":"oracle@acme.test","password":"a long password"}"#).status == 429)
        }
    }

    @Test func passwordChangeRevokesOtherLogins() async throws {
        try await withAuthGateway { gateway in
            let (phone, _) = try await gateway.signUpAndLogIn("pw@acme.test")
            let (laptop, _) = try await gateway.logIn("pw@acme.test")
            let bearer = [("Authorization", "Bearer \(laptop)")]
            #expect(try await gateway.post("/auth/password", #"{"current_password":"wrong one!","new_password":"a new long password"}"#, headers: bearer).status == 401)
            #expect(try await gateway.post("/auth/password", #"{"current_password":"a long password","new_password":"short"}"#, headers: bearer).status == 422)
            #expect(try await gateway.post("/auth/password", #"{"current_password":"a long password","new_password":"a new long password"}"#, headers: bearer).status == 204)
            #expect(try await gateway.get("/private", token: phone).status == 401)
            #expect(try await gateway.get("/private", token: laptop).status == 200)
            _ = try await gateway.logIn("pw@acme.test", password: "a new long password")
        }
    }

    @Test func jwksDiscoveryAndAVerifiableIdentityAssertion() async throws {
        try await withAuthGateway { gateway in
            let (token, _) = try await gateway.signUpAndLogIn("assert@acme.test")
            let discovery = try await gateway.get("/.well-known/openid-configuration")
            #expect(discovery.status == 200)
            let issuer = try #require(gateway.server.state.tenants.resolve(host: "acme.test")).configuration.issuer
            #expect(discovery.json["issuer"] as? String == issuer)
            #expect(discovery.json["jwks_uri"] as? String == issuer + "/.well-known/jwks.json")
            #expect((discovery.json["token_endpoint"] as? String)?.hasSuffix("/auth/token") == true)
            #expect(discovery.json["id_token_signing_alg_values_supported"] as? [String] == ["ES256"])
            let jwks = try await gateway.get("/.well-known/jwks.json")
            let keys = try #require(jwks.json["keys"] as? [[String: String]])
            #expect(keys.count == 1 && keys[0]["d"] == nil)

            let seen = try await gateway.get("/asserted", token: token).echoedHeaders
            let assertion = try #require(seen["x-identity-assertion"])
            let parts = assertion.split(separator: ".")
            let header = try #require(try JSONSerialization.jsonObject(with: Base64URL.decode(parts[0])!) as? [String: String])
            let jwk = try #require(keys.first { $0["kid"] == header["kid"] })
            // Verify the way a backend would: with the published key only.
            let publicKey = try P256.Signing.PublicKey(rawRepresentation: Base64URL.decode(jwk["x"]!)! + Base64URL.decode(jwk["y"]!)!)
            let signature = try P256.Signing.ECDSASignature(rawRepresentation: Base64URL.decode(parts[2])!)
            #expect(publicKey.isValidSignature(signature, for: Data((parts[0] + "." + parts[1]).utf8)))
            let claims = try #require(try JSONSerialization.jsonObject(with: Base64URL.decode(parts[1])!) as? [String: Any])
            #expect(claims["aud"] as? String == "http://127.0.0.1:\(gateway.echoPort)")
            #expect((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0) == 60)
            #expect(claims["email"] as? String == "assert@acme.test")
            // A forged assertion from the client never gets through.
            let forged = try await requestOffThread(port: gateway.port, "/", headers: [("X-Identity-Assertion", "forged")])
            #expect(forged.echoedHeaders["x-identity-assertion"] == nil)
        }
    }

    @Test func disablingAUserFromAnotherProcessRevokesTheirTokens() async throws {
        try await withAuthGateway { gateway in
            let (token, _) = try await gateway.signUpAndLogIn("gone@acme.test")
            #expect(try await gateway.get("/private", token: token).status == 200)
            // What `gatehouse users disable` does: its own service over the same SQLite file.
            let loaded = try ConfigurationLoader.load(configPath: gateway.root.appendingPathComponent("config/gatehouse.yaml").path, environment: [:]).get()
            try await StoreBootstrap.withIdentity(loaded.gateway, logger: Logger(label: "test.cli"), warn: { _ in }) { other in
                try await other.setDisabled(tenant: loaded.tenants.tenants["acme"]!, email: "gone@acme.test", disabled: true)
            }
            let disabledAt = ContinuousClock.now
            var status = 200
            while status == 200, ContinuousClock.now - disabledAt < .seconds(3) {
                try await Task.sleep(for: .milliseconds(20))
                status = try await gateway.get("/private", token: token).status
            }
            #expect(status == 401)
            // §8: within 500 ms of the command's exit (the SQLite change check runs every 50 ms).
            #expect(ContinuousClock.now - disabledAt < .milliseconds(500), "the running gateway enforced it \(ContinuousClock.now - disabledAt) after")
            // The revocation travelled through the store: its lag is on /metrics, under a second.
            let scrape = try await scrapeMetrics(adminPort: gateway.adminPort)
            #expect(scrape.value("gatehouse_revocation_lag_seconds_count") >= 1)
            #expect(scrape.value(#"gatehouse_revocation_lag_seconds_bucket{le="1"}"#) == scrape.value("gatehouse_revocation_lag_seconds_count"))
        }
    }
}
