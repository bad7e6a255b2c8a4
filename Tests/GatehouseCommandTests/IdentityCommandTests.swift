import Foundation
import GatehouseTestSupport
import Testing

/// `gatehouse users` and `gatehouse keys` as an operator runs them, against the store of a running gateway.
@Suite(.serialized) struct IdentityCommandTests {
    let tenant = """
        hosts: [acme.test]
        password: {min_length: 10}
        signup: {enabled: true}
        routes:
          - {path: /admin, upstream: "http://127.0.0.1:1", require: {roles: [admin]}}
          - {path: /me, upstream: "http://127.0.0.1:1"}
        """

    func logIn(_ port: Int, _ email: String, _ password: String) async throws -> TestResponse {
        try await requestOffThread(
            port: port, "/auth/login", method: "POST", headers: [("Content-Type", "application/json")],
            body: #"{"email":"\#(email)","password":"\#(password)"}"#)
    }

    @Test func usersAreAddedImportedListedAndDisabled() async throws {
        let gateway = try GatehouseProcess(gateway: "password_hashing: {memory: 1MiB, iterations: 1}\n", tenants: ["acme": tenant])
        defer { gateway.stop() }
        try gateway.start()
        let config = ["--config", gateway.configPath, "--tenant", "acme"]

        let added = try run(gatehouseBinary, ["users", "add"] + config + ["--email", "Ops@Acme.test", "--name", "Ops", "--role", "admin"], input: "a long password\n")
        #expect(added.status == 0, "\(added.error)")
        let again = try run(gatehouseBinary, ["users", "add"] + config + ["--email", "ops@acme.test"], input: "a long password\n")
        #expect(again.status == 1 && again.error.contains("already exists"))
        let short = try run(gatehouseBinary, ["users", "add"] + config + ["--email", "s@acme.test"], input: "short\n")
        #expect(short.status == 1 && short.error.contains("at least 10 characters"))
        #expect(try await logIn(gateway.port, "ops@acme.test", "a long password").status == 200)

        // A FastAPI + passlib app's users: bcrypt hashes keep working, and are re-hashed on first login.
        let file = gateway.root.appendingPathComponent("users.jsonl").path
        try """
            {"email":"legacy@acme.test","name":"Legacy","roles":["user"],"password_hash":"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}
            {"email":"broken@acme.test","password_hash":"md5:abc"}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let imported = try run(gatehouseBinary, ["users", "import"] + config + [file])
        #expect(imported.status == 1, "a rejected line makes the import exit 1")
        #expect(imported.output.contains("imported 1 user"))
        #expect(imported.error.contains("\(file):2: 'password_hash' is not a bcrypt"))
        #expect(try await logIn(gateway.port, "legacy@acme.test", "U*U").status == 200)
        #expect(try await logIn(gateway.port, "legacy@acme.test", "U*V").status == 401)

        let signup = try await requestOffThread(
            port: gateway.port, "/auth/signup", method: "POST", host: "acme.test", headers: [("Content-Type", "application/json")],
            body: #"{"email":"self@acme.test","password":"a long password"}"#)
        #expect(signup.status == 201)
        let listed = try run(gatehouseBinary, ["users", "list"] + config)
        #expect(listed.status == 0)
        #expect(listed.output.contains("ops@acme.test\t") && listed.output.contains("\tadmin\tactive"))
        #expect(listed.output.contains("legacy@acme.test\t"))
        // Users the command line adds or imports are verified (§11); one who signed up is not, until the link.
        let lines = listed.output.split(separator: "\n")
        #expect(lines.first { $0.hasPrefix("ops@acme.test\t") }?.hasSuffix("\tverified") == true)
        #expect(lines.first { $0.hasPrefix("legacy@acme.test\t") }?.hasSuffix("\tverified") == true)
        #expect(lines.first { $0.hasPrefix("self@acme.test\t") }?.hasSuffix("\tunverified") == true)
        #expect(!listed.output.contains("$2b$") && !listed.output.contains("argon2"), "never a hash")

        let roles = try run(gatehouseBinary, ["users", "set-roles"] + config + ["--email", "legacy@acme.test", "--role", "admin", "--role", "billing"])
        #expect(roles.status == 0)
        // A role name that would read as two in X-User-Roles, or carries a blank or a control character: exit 1.
        for bad in ["user,admin", "has space", "tab\there", "", String(repeating: "r", count: 65)] {
            let refused = try run(gatehouseBinary, ["users", "set-roles"] + config + ["--email", "legacy@acme.test", "--role", bad])
            #expect(refused.status == 1, "\(bad.debugDescription)")
            #expect(refused.error.contains("is not a role name"), "\(refused.error)")
        }
        let withRoles = try await logIn(gateway.port, "legacy@acme.test", "U*U")
        let token = try #require(withRoles.json["access_token"] as? String)
        let payload = try #require(Data(base64Encoded: base64(token.split(separator: ".")[1])))
        #expect(String(decoding: payload, as: UTF8.self).contains(#""roles":["admin","billing"]"#))

        // Disabling revokes the live token within the gateway's sync period.
        let me = { try await requestOffThread(port: gateway.port, "/admin", headers: [("Authorization", "Bearer \(token)")]).status }
        #expect(try await me() == 502, "authorised, then the upstream (port 1) is down")
        #expect(try run(gatehouseBinary, ["users", "disable"] + config + ["--email", "legacy@acme.test"]).status == 0)
        var status = 502
        for _ in 0..<40 where status == 502 {
            try await Task.sleep(for: .milliseconds(100))
            status = try await me()
        }
        #expect(status == 401)
        #expect(try await logIn(gateway.port, "legacy@acme.test", "U*U").status == 401)

        let unknown = try run(gatehouseBinary, ["users", "list", "--config", gateway.configPath, "--tenant", "nope"])
        #expect(unknown.status == 1 && unknown.error.contains("no tenant 'nope'"))
    }

    @Test func keysRotateWithoutBreakingLiveTokens() async throws {
        let gateway = try GatehouseProcess(gateway: "password_hashing: {memory: 1MiB, iterations: 1}\n", tenants: ["acme": tenant])
        defer { gateway.stop() }
        try gateway.start()
        let config = ["--config", gateway.configPath, "--tenant", "acme"]
        #expect(try run(gatehouseBinary, ["users", "add"] + config + ["--email", "k@acme.test", "--role", "admin"], input: "a long password\n").status == 0)
        let login = try await logIn(gateway.port, "k@acme.test", "a long password")
        let oldToken = try #require(login.json["access_token"] as? String)

        let rotated = try run(gatehouseBinary, ["keys", "rotate"] + config)
        #expect(rotated.status == 0, "\(rotated.error)")
        let listed = try run(gatehouseBinary, ["keys", "list"] + config)
        let lines = listed.output.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.contains { $0.hasSuffix("\tactive") } && lines.contains { $0.contains("\tverifying until ") })

        // The gateway picks the new key up; the JWKS publishes both; the old token keeps working.
        var keys: [Any] = []
        for _ in 0..<80 where keys.count < 2 {
            try await Task.sleep(for: .milliseconds(100))
            keys = try await requestOffThread(port: gateway.port, "/.well-known/jwks.json").json["keys"] as? [Any] ?? []
        }
        #expect(keys.count == 2)
        let old = try await requestOffThread(port: gateway.port, "/admin", headers: [("Authorization", "Bearer \(oldToken)")])
        #expect(old.status == 502, "still authorised (then the upstream is down)")
        let fresh = try await logIn(gateway.port, "k@acme.test", "a long password")
        let newKid = String(rotated.output.split(separator: " ")[3].prefix(while: { $0 != ";" }))
        let header = try #require(Data(base64Encoded: base64((fresh.json["access_token"] as! String).split(separator: ".")[0])))
        #expect(String(decoding: header, as: UTF8.self).contains(newKid))
    }

    private func base64(_ part: Substring) -> String {
        var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return text
    }
}
