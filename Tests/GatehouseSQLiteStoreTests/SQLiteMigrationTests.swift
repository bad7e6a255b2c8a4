import Foundation
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseSQLiteStore
import GRDB
import Testing

@Suite struct SQLiteMigrationTests {
    /// A store from before canonical addresses, holding two spellings of one address: after the migration both are
    /// listed as a conflict and neither can log in; a lone legacy spelling is rewritten and keeps working.
    @Test func theMigrationSetsCollidingAccountsAside() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-v2-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try SQLiteIdentityStore(path: path)
            // Back to v2: the rows an older Gatehouse wrote (keys were only lower-cased then).
            let queue = try DatabaseQueue(path: path)
            try await queue.write { db in
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier LIKE 'v3:%'")
                try db.execute(sql: "DROP TABLE email_conflicts")
                for (id, email) in [("u1", "jos\u{e9}@acme.test"), ("u2", "jose\u{301}@acme.test"), ("u3", "Legacy@ACME.test")] {
                    try db.execute(
                        sql: """
                            INSERT INTO users (id, tenant, email, email_key, name, roles, password_hash, disabled, created_at)
                            VALUES (?, 'acme', ?, ?, '', '[]', 'x', 0, 0)
                            """, arguments: [id, email, email.lowercased()])
                }
            }
        }
        let store = try SQLiteIdentityStore(path: path)
        let conflicts = try await store.emailConflicts()
        #expect(conflicts == [EmailConflict(tenant: "acme", email: "jos\u{e9}@acme.test", userIDs: ["u1", "u2"])])
        #expect(try await store.user(tenant: "acme", email: "jos\u{e9}@acme.test") == nil, "neither account answers to the address")
        #expect(try await store.user(tenant: "acme", email: "jose\u{301}@acme.test") == nil)
        let users = try await store.users(tenant: "acme")
        let bothDisabled = users.filter { ["u1", "u2"].contains($0.id) }.allSatisfy { $0.disabled }
        #expect(bothDisabled, "both are disabled: no refresh, no session")
        // The address stays taken until the operator resolves the conflict.
        await #expect(throws: IdentityStoreError.emailTaken) {
            try await store.insertUser(
                UserRecord(tenant: "acme", email: "jos\u{e9}@acme.test", name: "", roles: [], passwordHash: "x", createdAt: 1))
        }
        #expect(try SQLiteIdentityStore.emailConflicts(readingFileAt: path) == conflicts, "gatehouse check reads them without migrating")
        let legacy = try await store.user(tenant: "acme", email: "legacy@acme.test")
        #expect(legacy?.id == "u3")
        #expect(legacy?.email == "legacy@acme.test")
        #expect(conflicts.first?.explanation.contains("u1, u2") == true)
    }
}
