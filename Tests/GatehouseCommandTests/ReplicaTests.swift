import Foundation
import GatehouseEcho
import GatehouseTestSupport
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several `gatehouse serve` processes on one PostgreSQL database (§9), as an operator runs them.
@Suite(.serialized) struct ReplicaTests {
    static let masterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

    static func tenant(echo: Int) -> String {
        """
        hosts: [acme.test]
        signup: {enabled: true}
        password: {min_length: 10}
        routes:
          - {path: /api, upstream: "http://127.0.0.1:\(echo)"}
          - {path: /, upstream: "http://127.0.0.1:\(echo)", require: public}
        """
    }

    static func gateway(_ url: String) -> String {
        "store: \(url)\nmaster_key: \(masterKey)\npassword_hashing: {memory: 1MiB, iterations: 1}\n"
    }

    static func json(_ port: Int, _ path: String, _ body: String, token: String? = nil) async throws -> TestResponse {
        var headers = [("Content-Type", "application/json")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        return try await requestOffThread(port: port, path, method: "POST", headers: headers, body: body)
    }

    static func get(_ port: Int, _ path: String, token: String? = nil) async throws -> TestResponse {
        try await requestOffThread(port: port, path, headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    /// Polls until `condition` holds; returns how long it took (nil if it never did within `limit`).
    static func within(_ limit: Duration, every step: Duration = .milliseconds(10), _ condition: () async throws -> Bool) async throws -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if try await condition() { return ContinuousClock.now - start }
            try await Task.sleep(for: step)
        }
        return nil
    }

    @Test func twoReplicasShareUsersLoginsRevocationsAndKeys() async throws {
        let server = try PostgresTestServer.shared()
        let url = server.url(database: try server.createDatabase())
        let echo = try await EchoServer.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        defer { echo.close(promise: nil) }
        let tenant = Self.tenant(echo: echo.localAddress!.port!)
        // Started together on an empty database: both become ready, the schema is migrated once.
        let a = try GatehouseProcess(gateway: Self.gateway(url), tenants: ["acme": tenant])
        let b = try GatehouseProcess(gateway: Self.gateway(url), tenants: ["acme": tenant])
        defer { a.stop(); b.stop() }
        try a.launch()
        try b.launch()
        try a.waitUntilListening()
        try b.waitUntilListening()
        // Each migration once (v1 the tables, v2 the audit events), however many replicas started together.
        let database = String(url.split(separator: "/").last!.split(separator: "?")[0])
        #expect(try server.sql("SELECT count(*) FROM gatehouse_schema_migrations", database: database) == "3")
        #expect(try server.sql("SELECT count(DISTINCT version) FROM gatehouse_schema_migrations", database: database) == "3")

        // Two sign-ups of one address on two replicas at once: exactly one 201.
        let signups = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, port) in [a.port, b.port, a.port, b.port].enumerated() {
                group.addTask {
                    try await Self.json(port, "/auth/signup", #"{"email":"\#(index % 2 == 0 ? "ann" : "ANN")@acme.test","password":"a long password"}"#).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(signups.filter { $0 == 201 }.count == 1, "\(signups)")
        #expect(signups.filter { $0 == 409 }.count == 3, "\(signups)")

        // Both replicas sign with the one active key, and each verifies the other's tokens.
        let onA = try await Self.json(a.port, "/auth/login", #"{"email":"ann@acme.test","password":"a long password"}"#)
        #expect(onA.status == 200)
        let token = try #require(onA.json["access_token"] as? String)
        let onB = try await Self.json(b.port, "/auth/login", #"{"email":"ann@acme.test","password":"a long password"}"#)
        let tokenB = try #require(onB.json["access_token"] as? String)
        #expect(try await Self.get(b.port, "/api/x", token: token).status == 200)
        #expect(try await Self.get(a.port, "/api/x", token: tokenB).status == 200)
        let jwksA = try await Self.get(a.port, "/.well-known/jwks.json").json["keys"] as? [[String: Any]]
        #expect(jwksA?.count == 1)

        // Logged out on B: A's proxy path refuses the token within 500 ms, without asking the database per request.
        #expect(try await Self.json(b.port, "/auth/logout", "{}", token: token).status == 204)
        let revoked = try await Self.within(.seconds(2)) { try await Self.get(a.port, "/api/x", token: token).status == 401 }
        #expect(revoked != nil && revoked! < .milliseconds(500), "A enforced B's logout after \(String(describing: revoked))")

        // `keys rotate` from the command line: within 5 s both replicas publish both keys and verify new tokens.
        let rotated = try run(gatehouseBinary, ["keys", "rotate", "--config", a.configPath, "--tenant", "acme"])
        #expect(rotated.status == 0, "\(rotated.error)")
        for port in [a.port, b.port] {
            let seen = try await Self.within(.seconds(5), every: .milliseconds(100)) {
                (try await Self.get(port, "/.well-known/jwks.json").json["keys"] as? [[String: Any]])?.count == 2
            }
            #expect(seen != nil, "replica on \(port) publishes both keys")
        }
        let fresh = try await Self.json(a.port, "/auth/login", #"{"email":"ann@acme.test","password":"a long password"}"#)
        let freshToken = try #require(fresh.json["access_token"] as? String)
        #expect(try await Self.get(b.port, "/api/x", token: freshToken).status == 200)

        // `users disable` from the command line: every replica refuses the user's tokens within 500 ms of its exit.
        let disabled = try run(gatehouseBinary, ["users", "disable", "--config", b.configPath, "--tenant", "acme", "--email", "ann@acme.test"])
        #expect(disabled.status == 0, "\(disabled.error)")
        for port in [a.port, b.port] {
            let refused = try await Self.within(.seconds(2)) { try await Self.get(port, "/api/x", token: freshToken).status == 401 }
            #expect(refused != nil && refused! < .milliseconds(500), "replica on \(port) after \(String(describing: refused))")
        }
        #expect(!a.readLog().contains(PostgresTestServer.password) && !b.readLog().contains(PostgresTestServer.password))
    }

    /// §9's outage: proxying with issued tokens goes on, store-backed endpoints are 503 with Retry-After,
    /// /readyz stays 200 and says the store is down, gatehouse_store_up is 0; within 5 s of the database's return
    /// everything works, without a restart. No committed sign-up is lost.
    @Test func theDatabaseGoesAwayAndComesBack() async throws {
        let server = try PostgresTestServer.start()
        defer { server.remove() }
        let url = server.url(database: try server.createDatabase())
        let echo = try await EchoServer.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        defer { echo.close(promise: nil) }
        let gateway = try GatehouseProcess(gateway: Self.gateway(url), tenants: ["acme": Self.tenant(echo: echo.localAddress!.port!)])
        defer { gateway.stop() }
        try gateway.start()
        // Sign-ups under way while the database stops: each answers 201 (committed) or 503, never a 500 or a hang.
        var committed: [String] = []
        _ = try await Self.json(gateway.port, "/auth/signup", #"{"email":"kept@acme.test","password":"a long password"}"#)
        let login = try await Self.json(gateway.port, "/auth/login", #"{"email":"kept@acme.test","password":"a long password"}"#)
        let token = try #require(login.json["access_token"] as? String)
        let port = gateway.port
        let load = Task {
            var statuses: [(String, Int)] = []
            for index in 0..<60 {
                let email = "load\(index)@acme.test"
                let started = ContinuousClock.now
                do {
                    let status = try await Self.json(port, "/auth/signup", #"{"email":"\#(email)","password":"a long password"}"#).status
                    statuses.append((email, status))
                } catch {
                    statuses.append(("\(email): \(error) after \(ContinuousClock.now - started)", -1))
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return statuses
        }
        // A browser session this replica has never seen (started by another, here written straight into the store).
        let database = String(url.split(separator: "/").last!.split(separator: "?")[0])
        let cookie = String(repeating: "c", count: 43)
        let now = Int(Date().timeIntervalSince1970)
        _ = try server.sql(
            """
            INSERT INTO logins (sid, tenant, user_id, created_at) SELECT 'outside-sid', 'acme', id, \(now) FROM users WHERE email_key = 'kept@acme.test';
            INSERT INTO sessions (hash, tenant, sid, user_id, created_at, last_seen_at, expires_at)
                SELECT encode(sha256(convert_to('\(cookie)', 'UTF8')), 'hex'), 'acme', 'outside-sid', id, \(now), \(now), \(now + 3600)
                FROM users WHERE email_key = 'kept@acme.test';
            """, database: database)
        try await Task.sleep(for: .milliseconds(300))
        server.stop()
        let statuses = await load.value
        #expect(statuses.allSatisfy { [201, 503].contains($0.1) }, "\(statuses.map(\.1)) \(statuses.filter { $0.1 == -1 }.map(\.0))")
        committed = statuses.filter { $0.1 == 201 }.map(\.0)
        #expect(statuses.contains { $0.1 == 503 }, "the outage was seen")

        #expect(try await Self.get(gateway.port, "/api/x", token: token).status == 200, "proxying goes on from memory")
        let refused = try await Self.json(gateway.port, "/auth/login", #"{"email":"kept@acme.test","password":"a long password"}"#)
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") != nil)
        #expect(refused.header("Content-Type")?.contains("json") == true)
        let uncached = try await requestOffThread(port: gateway.port, "/api/x", headers: [("Cookie", "gatehouse_session=\(cookie)")])
        #expect(uncached.status == 503, "a session cookie this replica has not cached cannot be checked: \(uncached.status)")
        #expect(uncached.header("Retry-After") != nil)
        let ready = try await requestOffThread(port: gateway.adminPort, "/readyz")
        #expect(ready.status == 200)
        #expect((ready.json["store"] as? String)?.hasPrefix("down") == true, "\(ready.text)")
        #expect(try await requestOffThread(port: gateway.adminPort, "/metrics").text.contains("gatehouse_store_up 0"))

        try server.restart()
        let back = try await Self.within(.seconds(5), every: .milliseconds(100)) {
            try await Self.json(gateway.port, "/auth/login", #"{"email":"kept@acme.test","password":"a long password"}"#).status == 200
        }
        #expect(back != nil, "logins work again within 5 s of the database's return")
        let up = try await Self.within(.seconds(3), every: .milliseconds(100)) {
            try await requestOffThread(port: gateway.adminPort, "/metrics").text.contains("gatehouse_store_up 1")
        }
        #expect(up != nil)
        for email in committed {
            let again = try await Self.json(gateway.port, "/auth/login", #"{"email":"\#(email)","password":"a long password"}"#)
            #expect(again.status == 200, "\(email) answered 201 and must still exist")
        }
        let cookieBack = try await requestOffThread(port: gateway.port, "/api/x", headers: [("Cookie", "gatehouse_session=\(cookie)")])
        #expect(cookieBack.status == 200, "the session works once the store is back")
        #expect(gateway.process.isRunning, "no crash")
    }

    /// A URL the server refuses: `check` passes (syntax only); `serve` exits 1 with one line naming the URL without
    /// its password.
    @Test func serveRefusesAStoreItCannotUse() async throws {
        let server = try PostgresTestServer.shared()
        let database = try server.createDatabase()
        let urls = [
            server.url(database: database, password: "wrong-pass-7f2a"),
            server.url(database: "missing_db"),
            server.url(database: database).replacingOccurrences(of: "sslmode=disable", with: "sslmode=require"),
            server.url(database: database, port: try PostgresTestServer.closedPort()),
        ]
        for url in urls {
            let gateway = try GatehouseProcess(gateway: Self.gateway(url), tenants: ["acme": Self.tenant(echo: 1)])
            defer { gateway.stop() }
            let checked = try run(gatehouseBinary, ["check", "--config", gateway.configPath])
            #expect(checked.status == 0, "\(checked.error)")
            let served = try run(gatehouseBinary, ["serve", "--config", gateway.configPath])
            #expect(served.status == 1)
            let lines = served.error.split(separator: "\n")
            #expect(lines.count == 1, "\(served.error)")
            #expect(served.error.contains("postgres://gatehouse:***@127.0.0.1:"), "\(served.error)")
            #expect(!served.error.contains("wrong-pass-7f2a") && !served.error.contains(PostgresTestServer.password), "\(served.error)")
        }
        // A malformed URL is `check`'s business: file:line.
        let bad = try GatehouseProcess(gateway: "store: postgres://user@host:99999/db\nmaster_key: \(Self.masterKey)\n", tenants: ["acme": Self.tenant(echo: 1)])
        defer { bad.stop() }
        let checked = try run(gatehouseBinary, ["check", "--config", bad.configPath])
        #expect(checked.status == 1)
        #expect(checked.error.contains("gatehouse.yaml:") && checked.error.contains("port"), "\(checked.error)")
    }
}
