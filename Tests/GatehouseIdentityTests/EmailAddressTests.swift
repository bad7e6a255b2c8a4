import Foundation
import GatehouseConfiguration
import GRDB
import Testing
@testable import GatehouseIdentity

@Suite struct EmailAddressTests {
    @Test(arguments: [
        ("Kim@Example.COM", "kim@example.com"),
        ("\u{212A}im@example.com", "kim@example.com"),  // the Kelvin sign is K
        ("jose\u{301}@example.com", "jos\u{e9}@example.com"),  // NFD is NFC
        ("ｋｉｍ@example.com", "kim@example.com"),  // full-width letters
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("J\u{30C}o@example.com", "\u{1F0}o@example.com"),  // lower-casing then composing again: a fixed point
        ("cafe\u{301}@example.com", "caf\u{e9}@example.com"),
    ])
    func oneCanonicalFormPerAddress(text: String, canonical: String) {
        // Compared as bytes: `==` on String would call NFD and NFC equal.
        #expect(EmailAddress(text).map { Array($0.canonical.utf8) } == Array(canonical.utf8), "\(text.debugDescription)")
        #expect(Array(EmailAddress.canonicalize(canonical).utf8) == Array(canonical.utf8), "the canonical form is stable")
    }

    @Test(arguments: [
        "<sam@example.com>", "sam@example.com(x)", "kate@example.com;x", "x@example.com\\", "\"<svg/onload=alert(1)>\"@example.com",
        "a b@example.com", "a@b@example.com", ".a@example.com", "a.@example.com", "a..b@example.com", "a@example", "a@-example.com",
        "a@example-.com", "a@exa_mple.com", "a@[127.0.0.1]", "a@example..com", "@example.com", "a@", "", "a\u{0}b@example.com",
        "a\u{200B}b@example.com", "a@example.com\n", "a,b@example.com", "\u{FEFF}a@example.com",
        String(repeating: "a", count: 65) + "@example.com", "a@" + String(repeating: "b", count: 64) + ".com",
        // Invisible or misplaced scalars that would make a second account look like the first.
        "kim\u{34F}@example.com", "kim\u{FE0F}@example.com", "ki\u{3164}m@example.com", "kim\u{E0100}@example.com",
        ".\u{301}sam@example.com", "sam.\u{301}@example.com", "a.\u{301}.b@example.com", "x@a-\u{301}.com", "\u{301}a@example.com",
    ])
    func addressesAParserCouldReadAsAnotherAreRefused(text: String) {
        #expect(EmailAddress(text) == nil, "\(text.debugDescription)")
    }

    @Test func twoSpellingsAreOneAccount() async throws {
        let fixture = try IdentityFixture.make()
        defer { Task { await fixture.close() } }
        let squatter = try await fixture.identity.signUp(tenant: fixture.tenant, email: "\u{212A}im@acme.test", password: "a long password", name: nil)
        #expect(squatter.email == "kim@acme.test", "stored in canonical form")
        await #expect(throws: IdentityError.emailTaken) {
            try await fixture.identity.signUp(tenant: fixture.tenant, email: "kim@acme.test", password: "another password", name: nil)
        }
        _ = try await fixture.identity.signUp(tenant: fixture.tenant, email: "jose\u{301}@acme.test", password: "a long password", name: nil)
        await #expect(throws: IdentityError.emailTaken) {
            try await fixture.identity.signUp(tenant: fixture.tenant, email: "jos\u{e9}@acme.test", password: "a long password", name: nil)
        }
        await #expect(throws: IdentityError.invalidName) {
            try await fixture.identity.signUp(tenant: fixture.tenant, email: "nul@acme.test", password: "a long password", name: "Ann\u{0}Admin")
        }
    }

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
