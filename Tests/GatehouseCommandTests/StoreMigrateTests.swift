import Foundation
import GatehouseEcho
import GatehouseTestSupport
import NIOCore
import NIOPosix
import Testing

/// `gatehouse store migrate` (§9): from the embedded store to PostgreSQL, and nothing a user holds stops working.
@Suite(.serialized) struct StoreMigrateTests {
    @Test func everythingIssuedBeforeTheMoveKeepsWorking() async throws {
        let server = try PostgresTestServer.shared()
        let database = try server.createDatabase()
        let url = server.url(database: database)
        let echo = try await EchoServer.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        defer { echo.close(promise: nil) }
        let tenant = ReplicaTests.tenant(echo: echo.localAddress!.port!)
        let hashing = "password_hashing: {memory: 1MiB, iterations: 1}\n"
        let gateway = try GatehouseProcess(gateway: hashing, tenants: ["acme": tenant])
        defer { gateway.stop() }
        try gateway.start()

        // What users hold before the move: a token pair, a browser session, and a password.
        #expect(try await ReplicaTests.json(gateway.port, "/auth/signup", #"{"email":"ann@acme.test","password":"a long password"}"#).status == 201)
        let login = try await ReplicaTests.json(gateway.port, "/auth/login", #"{"email":"ann@acme.test","password":"a long password"}"#)
        let access = try #require(login.json["access_token"] as? String)
        let refresh = try #require(login.json["refresh_token"] as? String)
        var browser = TestBrowser(port: gateway.port)
        _ = try await browser.open("/auth/signup")
        let signup = try await browser.submit("/auth/signup", [("name", "Bob"), ("email", "bob@acme.test"), ("password", "a long password"), ("rd", "/")])
        #expect(signup.status == 303)
        let added = try run(gatehouseBinary, ["users", "add", "--config", gateway.configPath, "--tenant", "acme", "--email", "cli@acme.test"], input: "a long password\n")
        #expect(added.status == 0)
        // A logged-out login stays revoked after the move.
        let gone = try await ReplicaTests.json(gateway.port, "/auth/login", #"{"email":"ann@acme.test","password":"a long password"}"#)
        let goneToken = try #require(gone.json["access_token"] as? String)
        #expect(try await ReplicaTests.json(gateway.port, "/auth/logout", "{}", token: goneToken).status == 204)
        gateway.signal(SIGTERM)
        #expect(gateway.waitForExit(timeout: 10) == 0)

        let migrated = try run(gatehouseBinary, ["store", "migrate", "--config", gateway.configPath, "--to", url])
        #expect(migrated.status == 0, "\(migrated.error)")
        #expect(migrated.output.contains("users: 3 rows copied, count checked"), "\(migrated.output)")
        #expect(migrated.output.contains("signing_keys: 1 row copied"))
        #expect(migrated.output.contains("audit_events: 7 rows copied"), "\(migrated.output)")
        #expect(migrated.output.contains("master_key"), "it says the master key must now be set")
        #expect(!migrated.output.contains(PostgresTestServer.password), "the URL is printed without its password")
        #expect(try server.sql("SELECT count(*) FROM users", database: database) == "3")

        // Into a database that holds Gatehouse data: refused, exit 1, nothing changed.
        let again = try run(gatehouseBinary, ["store", "migrate", "--config", gateway.configPath, "--to", url])
        #expect(again.status == 1)
        #expect(again.error.contains("already holds Gatehouse data"), "\(again.error)")
        #expect(try server.sql("SELECT count(*) FROM users", database: database) == "3")

        // Switch `store:` (and set the generated master key, which PostgreSQL needs in the file).
        let masterKey = try String(contentsOf: gateway.root.appendingPathComponent("data/master.key"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let config = try String(contentsOfFile: gateway.configPath, encoding: .utf8)
        try (config + "store: \(url)\nmaster_key: \(masterKey)\n").write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        let moved = GatehouseProcess(reusing: gateway)
        defer { moved.stop() }
        try moved.start()
        #expect(try await ReplicaTests.get(moved.port, "/api/x", token: access).status == 200, "the access token issued before")
        #expect(try await ReplicaTests.get(moved.port, "/api/x", token: goneToken).status == 401, "a revoked one stays revoked")
        let refreshed = try await ReplicaTests.json(moved.port, "/auth/refresh", #"{"refresh_token":"\#(refresh)"}"#)
        #expect(refreshed.status == 200, "the refresh token issued before: \(refreshed.text)")
        var movedBrowser = browser
        movedBrowser = TestBrowser(port: moved.port)
        movedBrowser.cookies = browser.cookies
        let page = try await movedBrowser.send("/api/x")
        #expect(page.status == 200, "the browser session started before")
        #expect(page.echoedHeaders["x-user-email"] == "bob@acme.test")
        for email in ["ann@acme.test", "cli@acme.test", "bob@acme.test"] {
            let again = try await ReplicaTests.json(moved.port, "/auth/login", #"{"email":"\#(email)","password":"a long password"}"#)
            #expect(again.status == 200, "\(email) logs in with the old password")
        }
        // The audit trail moved too, and new events follow the copied ones.
        let audit = try run(gatehouseBinary, ["audit", "--config", gateway.configPath, "--tenant", "acme", "--limit", "1000"])
        let events = JSONLines.parse(audit.output)
        #expect(
            events.map { $0["event"] as? String ?? "" } == [
                "signup", "login", "signup", "session_start", "user_added", "login", "logout", "login", "login", "login",
            ], "\(audit.output)")
    }

    @Test func aTargetThatCannotBeUsedIsRefused() async throws {
        let gateway = try GatehouseProcess(gateway: "", tenants: ["acme": ReplicaTests.tenant(echo: 1)])
        defer { gateway.stop() }
        let missing = try run(gatehouseBinary, ["store", "migrate", "--config", gateway.configPath, "--to", "postgres://u:p@127.0.0.1:1/db"])
        #expect(missing.status == 1, "no SQLite store yet")
        try gateway.start()
        gateway.signal(SIGTERM)
        _ = gateway.waitForExit(timeout: 10)
        let server = try PostgresTestServer.shared()
        let refused = try run(
            gatehouseBinary, ["store", "migrate", "--config", gateway.configPath, "--to", server.url(database: "absent_db", password: "nope-secret-11")])
        #expect(refused.status == 1)
        #expect(refused.error.contains("cannot use") && !refused.error.contains("nope-secret-11"), "\(refused.error)")
        let malformed = try run(gatehouseBinary, ["store", "migrate", "--config", gateway.configPath, "--to", "mysql://x"])
        #expect(malformed.status == 1 && malformed.error.contains("postgres://"), "\(malformed.error)")
    }
}
