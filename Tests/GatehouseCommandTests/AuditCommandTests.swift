import Foundation
import GatehouseTestSupport
import Testing

/// `gatehouse audit` and the events the other commands record (§8, §10), with the real binary.
@Suite struct AuditCommandTests {
    static let tenant = """
        hosts: [acme.test]
        signup: {enabled: true}
        routes:
          - {path: /, upstream: "http://127.0.0.1:1"}
        """

    @Test func commandsRecordTheirEventsAsTheCLIAndAuditPrintsThemNewestLast() async throws {
        let gateway = try GatehouseProcess(
            gateway: "password_hashing: {memory: 1MiB, iterations: 1}\naudit_log: ../audit.log\n", tenants: ["acme": Self.tenant])
        defer { gateway.stop() }
        try gateway.start()
        let config = ["--config", gateway.configPath, "--tenant", "acme"]
        #expect(try run(gatehouseBinary, ["users", "add"] + config + ["--email", "ops@acme.test", "--role", "admin"], input: "a long password\n").status == 0)
        #expect(try run(gatehouseBinary, ["users", "set-roles"] + config + ["--email", "ops@acme.test", "--role", "billing"]).status == 0)
        let file = gateway.root.appendingPathComponent("users.jsonl").path
        try #"{"email":"legacy@acme.test","password_hash":"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}"#.write(
            toFile: file, atomically: true, encoding: .utf8)
        #expect(try run(gatehouseBinary, ["users", "import"] + config + [file]).status == 0)
        #expect(try run(gatehouseBinary, ["keys", "rotate"] + config).status == 0)
        let login = try await requestOffThread(
            port: gateway.port, "/auth/login", method: "POST", headers: [("Content-Type", "application/json"), ("User-Agent", "curl/8")],
            body: #"{"email":"ops@acme.test","password":"a long password"}"#)
        #expect(login.status == 200)
        #expect(try run(gatehouseBinary, ["users", "disable"] + config + ["--email", "ops@acme.test"]).status == 0)

        let audit = try run(gatehouseBinary, ["audit"] + config)
        #expect(audit.status == 0, "\(audit.error)")
        let events = JSONLines.parse(audit.output)
        #expect(events.map { $0["event"] as? String } == ["user_added", "roles_changed", "users_imported", "key_rotated", "login", "user_disabled"])
        #expect(events.map { $0["actor"] as? String } == ["cli", "cli", "cli", "cli", "user", "cli"])
        #expect(events[1]["details"] as? [String: String] == ["roles": "billing", "previous": "admin"])
        #expect((events[2]["details"] as? [String: String])?["imported"] == "1")
        #expect((events[3]["details"] as? [String: String])?["kid"] != nil)
        #expect(events[4]["ip"] as? String == "127.0.0.1" && events[4]["user_agent"] as? String == "curl/8")
        #expect(events[0]["ip"] is NSNull, "a command has no client address")

        // The same events, in the same order, on the shared audit log: written by four processes.
        let logged = JSONLines.read(gateway.root.appendingPathComponent("audit.log").path)
        #expect(logged.map { $0["event"] as? String } == events.map { $0["event"] as? String })

        let filtered: [([String], [String])] = [
            (["--event", "user_added"], ["user_added"]),
            (["--email", "OPS@acme.test"], ["user_added", "roles_changed", "login", "user_disabled"]),
            (["--limit", "2"], ["login", "user_disabled"]),
            (["--since", "1h", "--event", "key_rotated"], ["key_rotated"]),
        ]
        for (arguments, expected) in filtered {
            let result = try run(gatehouseBinary, ["audit"] + config + arguments)
            #expect(result.status == 0)
            #expect(JSONLines.parse(result.output).map { $0["event"] as? String } == expected, "\(arguments)")
        }
        let bad: [([String], String)] = [
            (["--event", "nonsense"], "audit: --event 'nonsense' is not an audit event (one of: signup, signup_error"),
            (["--since", "yesterday"], "audit: --since 'yesterday' is not a duration"),
            (["--since", "0s"], "audit: --since '0s' is not a duration"),
            (["--limit", "0"], "audit: --limit must be from 1 to 100000, not 0"),
            (["--email", "not-an-address"], "audit: --email 'not-an-address' is not an email address"),
        ]
        for (arguments, message) in bad {
            let result = try run(gatehouseBinary, ["audit"] + config + arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.error.contains(message), "\(result.error)")
            #expect(result.output.isEmpty)
        }
        let unknown = try run(gatehouseBinary, ["audit", "--config", gateway.configPath, "--tenant", "nope"])
        #expect(unknown.status == 1 && unknown.error.contains("no tenant 'nope'"))
    }

    @Test func serveWritesAuditLinesToStandardOutputByDefault() async throws {
        let gateway = try GatehouseProcess(gateway: "password_hashing: {memory: 1MiB, iterations: 1}\n", tenants: ["acme": Self.tenant])
        defer { gateway.stop() }
        let output = gateway.root.appendingPathComponent("stdout.txt").path
        gateway.standardOutputPath = output
        try gateway.start()
        let signup = try await requestOffThread(
            port: gateway.port, "/auth/signup", method: "POST", headers: [("Content-Type", "application/json")],
            body: #"{"email":"ann@acme.test","password":"a long password"}"#)
        #expect(signup.status == 201)
        var lines: [[String: Any]] = []
        for _ in 0..<100 {
            lines = JSONLines.read(output).filter { $0["type"] as? String == "audit" }
            if !lines.isEmpty { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(lines.map { $0["event"] as? String } == ["signup"])
        #expect(lines.first?["email"] as? String == "ann@acme.test")
    }

    @Test func anAuditLogThatCannotBeWrittenStopsCheckAndServe() async throws {
        let missing = try GatehouseProcess(gateway: "audit_log: ../nowhere/audit.log\n", tenants: ["acme": Self.tenant])
        defer { missing.stop() }
        let check = try run(gatehouseBinary, ["check", "--config", missing.configPath])
        #expect(check.status == 1)
        #expect(check.error.contains("gatehouse.yaml:5: 'audit_log': the folder \(missing.root.path)/nowhere does not exist"), "\(check.error)")
        let serve = try run(gatehouseBinary, ["serve", "--config", missing.configPath])
        #expect(serve.status == 1 && serve.error.contains("'audit_log': the folder"))

        // A folder the check passes (root may write anywhere by permission) on a file system that takes no new file.
        let proc = try GatehouseProcess(gateway: "audit_log: /proc/gatehouse-audit.log\n", tenants: ["acme": Self.tenant])
        defer { proc.stop() }
        let refused = try run(gatehouseBinary, ["serve", "--config", proc.configPath])
        #expect(refused.status == 1)
        #expect(refused.error.contains("audit_log") && refused.error.contains("/proc/gatehouse-audit.log"), "\(refused.error)")
        #expect(refused.error.split(separator: "\n").count == 1, "one line: \(refused.error)")
    }
}
