import Foundation
import GatehouseTestSupport
import GatehouseTokens
import Testing

@testable import GatehouseServer

/// `/metrics` on the admin listener (§10), scraped around known requests: exact deltas per series.
@Suite struct MetricsEndToEndTests {
    static let requests = "gatehouse_requests_total"

    @Test func requestsAreCountedPerRouteMethodAndStatus() async throws {
        try await withAuthGateway { gateway in
            let before = try await scrapeMetrics(adminPort: gateway.adminPort)
            for _ in 0..<3 { #expect(try await requestOffThread(port: gateway.port, "/hello").status == 200) }
            #expect(try await requestOffThread(port: gateway.port, "/private/x", method: "DELETE").status == 401)
            #expect(try await requestOffThread(port: gateway.port, "/x", host: "nobody.test").status == 404)
            #expect(try await requestOffThread(port: gateway.port, "/x", method: "PROPFIND", host: "nobody.test").status == 404)
            // A method NIO's parser does not know is a malformed request: no tenant, no method.
            #expect(try await requestOffThread(port: gateway.port, "/x", method: "BREW").status == 400)
            #expect(try await requestOffThread(port: gateway.port, "/private", host: "closed.test").status == 401, "closed's / route needs a token")
            #expect(try await requestOffThread(port: gateway.port, "/auth/me", host: "globex.test").status == 401)
            let after = try await scrapeMetrics(adminPort: gateway.adminPort)
            #expect(
                after.delta(since: before, prefix: Self.requests) == [
                    #"gatehouse_requests_total{tenant="acme",route="/",method="GET",code="200"}"#: 3,
                    #"gatehouse_requests_total{tenant="acme",route="/private",method="DELETE",code="401"}"#: 1,
                    #"gatehouse_requests_total{tenant="none",route="none",method="GET",code="404"}"#: 1,
                    #"gatehouse_requests_total{tenant="none",route="none",method="OTHER",code="404"}"#: 1,
                    #"gatehouse_requests_total{tenant="none",route="none",method="OTHER",code="400"}"#: 1,
                    #"gatehouse_requests_total{tenant="closed",route="/",method="GET",code="401"}"#: 1,
                    #"gatehouse_requests_total{tenant="globex",route="/auth",method="GET",code="401"}"#: 1,
                ])
            #expect(after.types[Self.requests] == "counter")
            #expect(after.types["gatehouse_request_duration_seconds"] == "histogram")
            let duration = #"gatehouse_request_duration_seconds_count{tenant="acme",route="/"}"#
            #expect(after.value(duration) - before.value(duration) == 3)
            let upstream = #"gatehouse_upstream_duration_seconds_count{tenant="acme",route="/"}"#
            #expect(after.value(upstream) - before.value(upstream) == 3, "the three that reached the echo upstream")
            #expect(after.value(#"gatehouse_upstream_duration_seconds_count{tenant="acme",route="/private"}"#) == 0, "the 401 never went upstream")
            let inf = #"gatehouse_request_duration_seconds_bucket{tenant="acme",route="/",le="+Inf"}"#
            #expect(after.value(inf) == after.value(duration))
        }
    }

    @Test func authenticationOutcomesLoginsAndSignupsAreCountedByResult() async throws {
        try await withAuthGateway { gateway in
            let before = try await scrapeMetrics(adminPort: gateway.adminPort)
            let (token, _) = try await gateway.signUpAndLogIn("ann@acme.test")
            #expect(try await gateway.post("/auth/signup", #"{"email":"ANN@acme.test","password":"a long password"}"#).status == 409)
            #expect(try await gateway.post("/auth/signup", #"{"email":"bob@acme.test","password":"short"}"#).status == 422)
            #expect(try await gateway.post("/auth/signup", host: "closed.test", #"{"email":"c@closed.test","password":"a long password"}"#).status == 403)
            for _ in 0..<3 {
                #expect(try await gateway.post("/auth/login", #"{"email":"ann@acme.test","password":"wrong password"}"#).status == 401)
            }
            #expect(try await gateway.post("/auth/login", #"{"email":"ann@acme.test","password":"a long password"}"#).status == 429)

            let key = try #require(gateway.signingKey("acme"))
            let claims = try JSONDecoder().decode(AccessTokenClaims.self, from: Base64URL.decode(token.split(separator: ".")[1])!)
            func forge(kid: String? = nil, _ change: (inout AccessTokenClaims) -> Void) throws -> String {
                var forged = claims
                change(&forged)
                let header = try JSONSerialization.data(withJSONObject: ["alg": "ES256", "kid": kid ?? key.kid, "typ": "at+jwt"])
                let input = Base64URL.encode(header) + "." + Base64URL.encode(try JSONEncoder().encode(forged))
                return input + "." + Base64URL.encode(try key.sign(Data(input.utf8)))
            }
            let parts = token.split(separator: ".")
            var admin = claims
            admin.roles = ["admin"]
            let presented: [(String?, Int)] = [
                (token, 200), (token, 200), (nil, 401), ("not.a.token", 401),
                (try forge { $0.exp = Int64(Date().timeIntervalSince1970) - 3600 }, 401),
                (try forge { $0.aud = ["globex"] }, 401),
                (try forge { $0.iss = "https://elsewhere.example" }, 401),
                (try forge(kid: "nope") { _ in }, 401),
                (parts[0] + "." + Base64URL.encode(try JSONEncoder().encode(admin)) + "." + parts[2], 401),
            ]
            for (credential, status) in presented {
                let headers = credential.map { [("Authorization", "Bearer \($0)")] } ?? []
                #expect(try await requestOffThread(port: gateway.port, "/private", headers: headers).status == status)
            }
            #expect(try await requestOffThread(port: gateway.port, "/auth/logout", method: "POST", headers: [("Authorization", "Bearer \(token)")]).status == 204)
            #expect(try await requestOffThread(port: gateway.port, "/private", headers: [("Authorization", "Bearer \(token)")]).status == 401)

            let after = try await scrapeMetrics(adminPort: gateway.adminPort)
            #expect(
                after.delta(since: before, prefix: "gatehouse_auth_total") == [
                    #"gatehouse_auth_total{tenant="acme",result="valid"}"#: 2,
                    #"gatehouse_auth_total{tenant="acme",result="anonymous"}"#: 1,
                    #"gatehouse_auth_total{tenant="acme",result="malformed"}"#: 1,
                    #"gatehouse_auth_total{tenant="acme",result="expired"}"#: 1,
                    #"gatehouse_auth_total{tenant="acme",result="wrong_audience"}"#: 1,
                    #"gatehouse_auth_total{tenant="acme",result="wrong_issuer"}"#: 1,
                    #"gatehouse_auth_total{tenant="acme",result="unknown_key"}"#: 1,
                    #"gatehouse_auth_total{tenant="acme",result="invalid_signature"}"#: 1,
                    #"gatehouse_auth_total{tenant="acme",result="revoked"}"#: 1,
                ])
            #expect(
                after.delta(since: before, prefix: "gatehouse_logins_total") == [
                    #"gatehouse_logins_total{tenant="acme",result="success"}"#: 1,
                    #"gatehouse_logins_total{tenant="acme",result="invalid_credentials"}"#: 3,
                    #"gatehouse_logins_total{tenant="acme",result="locked"}"#: 1,
                ])
            #expect(
                after.delta(since: before, prefix: "gatehouse_signups_total") == [
                    #"gatehouse_signups_total{tenant="acme",result="success"}"#: 1,
                    #"gatehouse_signups_total{tenant="acme",result="email_taken"}"#: 1,
                    #"gatehouse_signups_total{tenant="acme",result="invalid"}"#: 1,
                    #"gatehouse_signups_total{tenant="closed",result="forbidden"}"#: 1,
                ])
            // Every fixed result exists from the start, so rate() over it has a zero to begin from.
            #expect(before.samples[#"gatehouse_logins_total{tenant="globex",result="unverified"}"#] == 0)
            #expect(after.delta(since: before, prefix: "gatehouse_token_cache_lookups_total").values.reduce(0, +) >= 2)
        }
    }

    @Test func connectionsReloadsStoreBuildAndProcessAreReported() async throws {
        try await withAuthGateway { gateway in
            let before = try await scrapeMetrics(adminPort: gateway.adminPort)
            let idle = try RawConnection(port: gateway.port)
            try idle.send("GET / HTTP/1.1\r\nHost: acme.test\r\n\r\n")
            _ = try idle.readResponse()
            let open = try await scrapeMetrics(adminPort: gateway.adminPort)
            let publicConnections = #"gatehouse_open_connections{listener="public"}"#
            #expect(open.value(publicConnections) == before.value(publicConnections) + 1)
            #expect(open.value(#"gatehouse_open_connections{listener="admin"}"#) >= 1, "the scrape's own connection")
            idle.finishSending()
            #expect(idle.isClosedByPeer())
            try await waitUntil { try await scrapeMetrics(adminPort: gateway.adminPort).value(publicConnections) == before.value(publicConnections) }

            gateway.server.reloadTenants()
            try gateway.writeTenant("acme", "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"http://127.0.0.1:1\", nonsense: 1}\n")
            gateway.server.reloadTenants()
            let after = try await scrapeMetrics(adminPort: gateway.adminPort)
            #expect(
                after.delta(since: before, prefix: "gatehouse_config_reloads_total") == [
                    #"gatehouse_config_reloads_total{result="success"}"#: 1, #"gatehouse_config_reloads_total{result="failure"}"#: 1,
                ])
            #expect(after.value("gatehouse_store_up") == 1)
            #expect(after.value("gatehouse_password_hash_queue") == 0)
            #expect(after.value(#"gatehouse_build_info{version="\#(GatehouseVersion.current)"}"#) == 1)
            #expect(after.value("process_resident_memory_bytes") > 1_000_000)
            #expect(after.value("process_open_fds") > 3)
            #expect(after.value("process_cpu_seconds_total") > 0)
            #expect(after.types["process_cpu_seconds_total"] == "counter")
            #expect(after.types["gatehouse_revocation_lag_seconds"] == "histogram")
        }
    }

    @Test func randomPathsHostsAndMethodsAddNoSeries() async throws {
        let tenants = ["acme": "hosts: [acme.test]\nroutes:\n  - {path: /api, upstream: \"{{ECHO}}\", require: public}\n"]
        try await TestGateway.with(tenants: tenants, scripted: [:]) { gateway in
            var generator = SystemRandomNumberGenerator()
            let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "MKCOL", "PURGE", "SEARCH", "REPORT", "LOCK"]
            func segment() -> String { String((0..<Int.random(in: 1...12, using: &generator)).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789-_~".randomElement()! }) }
            func send(_ count: Int, hosts: Bool) async throws {
                for index in 0..<count {
                    let path = (index % 2 == 0 ? "/api/" : "/") + (0..<Int.random(in: 1...4)).map { _ in segment() }.joined(separator: "/")
                    let host = hosts ? "\(segment()).example" : "acme.test"
                    let method = methods.randomElement()!
                    let body = method == "GET" || method == "OPTIONS" || method == "DELETE" ? nil : "x"
                    let response = try await requestOffThread(port: gateway.port, path + "?q=\(segment())", method: method, host: host, body: body)
                    #expect([200, 404].contains(response.status), "\(method) \(host) \(path): \(response.status)")
                }
            }
            // Every combination of route, method class and status once, then many more requests.
            for method in methods {
                for (path, host) in [("/api/a", "acme.test"), ("/a", "acme.test"), ("/a", "x.example")] {
                    _ = try await requestOffThread(port: gateway.port, path, method: method, host: host, body: method == "GET" ? nil : "x")
                }
            }
            let before = try await scrapeMetrics(adminPort: gateway.adminPort)
            try await send(1000, hosts: false)
            try await send(200, hosts: true)
            let after = try await scrapeMetrics(adminPort: gateway.adminPort)
            #expect(Set(after.samples.keys) == Set(before.samples.keys), "no new series: \(Set(after.samples.keys).subtracting(before.samples.keys))")
            let counted = after.delta(since: before, prefix: Self.requests).values.reduce(0, +)
            #expect(counted == 1200)
            #expect(!after.text.contains(".example"), "no host of a request is a label")
        }
    }

    @Test func metricsAreNotOnThePublicListener() async throws {
        try await withAuthGateway { gateway in
            for host in ["acme.test", "127.0.0.1", "unknown.test"] {
                let response = try await requestOffThread(port: gateway.port, "/metrics", host: host)
                #expect(!response.text.contains("gatehouse_requests_total"), "\(host)")
            }
        }
    }

    @Test func aHundredParallelScrapesDuringReloadsAllParse() async throws {
        try await withAuthGateway { gateway in
            let adminPort = gateway.adminPort
            let scrapes = try await withThrowingTaskGroup(of: MetricsScrape.self) { group in
                for _ in 0..<100 { group.addTask { try await scrapeMetrics(adminPort: adminPort) } }
                // Reloads while the scrapes run.
                for round in 0..<20 {
                    try gateway.writeTenant("extra\(round % 3)", "hosts: [extra\(round % 3).test]\nroutes:\n  - {path: /r\(round), upstream: \"http://127.0.0.1:9\"}\n")
                    gateway.server.reloadTenants()
                    try await Task.sleep(for: .milliseconds(10))
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(scrapes.count == 100)
            for scrape in scrapes {
                #expect(scrape.samples["gatehouse_store_up"] == 1)
                #expect(ExpositionFormat.problems(scrape.text).isEmpty)
            }
            let last = try await scrapeMetrics(adminPort: adminPort)
            #expect(last.value(#"gatehouse_config_reloads_total{result="success"}"#) == 20)
        }
    }

    @Test func anIndependentParserAcceptsTheScrape() async throws {
        try await withAuthGateway { gateway in
            _ = try await gateway.signUpAndLogIn("ann@acme.test")
            _ = try await requestOffThread(port: gateway.port, "/hello")
            let text = try await scrapeMetrics(adminPort: gateway.adminPort).text
            if let path = ProcessInfo.processInfo.environment["GATEHOUSE_TEST_SCRAPE"] { try text.write(toFile: path, atomically: true, encoding: .utf8) }
            #expect(ExpositionFormat.problems(text).isEmpty, "\(ExpositionFormat.problems(text))")
            let families = try PrometheusClientParser.parse(text)
            #expect(families["gatehouse_requests"] == "counter", "prometheus_client names a counter family without _total")
            #expect(families["gatehouse_request_duration_seconds"] == "histogram")
            #expect(families["gatehouse_store_up"] == "gauge")
            #expect(families["process_cpu_seconds"] == "counter")
        }
    }
}

/// Polls `condition` for up to 5 s.
func waitUntil(_ condition: () async throws -> Bool) async throws {
    for _ in 0..<100 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("condition not met within 5 s")
}
