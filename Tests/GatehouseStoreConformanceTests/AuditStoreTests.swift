import Foundation
import GatehouseConfiguration
import Testing
@testable import GatehouseIdentity

/// Audit events (§10) on every store: stored in the transaction of their change and only with it, queried by
/// tenant, address, kind and time, newest last, and purged past the retention.
@Suite struct AuditStoreTests {
    static let request = AuditContext.request(ip: "192.0.2.7", userAgent: "test-agent/1", requestID: "req-1", traceID: "4bf92f3577b34da6a3ce929d0e0e4736")

    @Test(arguments: StoreKind.allCases) func anEventIsStoredWithItsChangeAndNeverWithoutIt(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let store = fixture.identity.store
        let user = try await fixture.identity.signUp(tenant: fixture.tenant, email: "Ann@Acme.test", password: "long enough pw", name: nil, context: Self.request)
        await #expect(throws: IdentityError.emailTaken) {
            try await fixture.identity.signUp(tenant: fixture.tenant, email: "ann@acme.test", password: "long enough pw", name: nil, context: Self.request)
        }
        // A change that fails takes its event with it.
        let duplicate = UserRecord(tenant: "acme", email: "ann@acme.test", name: "", roles: [], passwordHash: "x", createdAt: 1)
        let orphan = AuditEvent(.userAdded, tenant: "acme", context: .cli, userID: duplicate.id, email: duplicate.email)
        await #expect(throws: IdentityStoreError.emailTaken) { try await store.insertUser(duplicate, audit: [orphan]) }
        await #expect(throws: IdentityStoreError.notFound) {
            try await store.updateUser(UserRecord(tenant: "acme", email: "nobody@acme.test", name: "", roles: [], passwordHash: "x", createdAt: 1), audit: [orphan])
        }
        let events = try await store.auditEvents(AuditQuery(tenant: "acme"))
        #expect(events.map(\.event) == [.signup, .signupError])
        let signup = try #require(events.first)
        #expect(signup.userID == user.id)
        #expect(signup.email == "ann@acme.test")
        #expect(signup.ip == "192.0.2.7")
        #expect(signup.userAgent == "test-agent/1")
        #expect(signup.requestID == "req-1")
        #expect(signup.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(signup.actor == .user)
        #expect(events[1].error == "email_taken")
        // And the audit log has the same two lines.
        let lines = fixture.auditLines()
        #expect(lines.map { $0["event"] as? String } == ["signup", "signup_error"])
        #expect(lines.allSatisfy { $0["type"] as? String == "audit" && $0["tenant"] as? String == "acme" })
    }

    @Test(arguments: StoreKind.allCases) func reuseIsRecordedInTheTransactionThatRevokesTheLogin(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let user = try await fixture.identity.signUp(tenant: fixture.tenant, email: "bob@acme.test", password: "long enough pw", name: nil)
        let grant = try await fixture.identity.logIn(tenant: fixture.tenant, email: "bob@acme.test", password: "long enough pw", context: Self.request)
        _ = try await fixture.identity.refresh(tenant: fixture.tenant, refreshToken: grant.refreshToken, context: Self.request)
        await #expect(throws: IdentityError.invalidRefreshToken) {
            try await fixture.identity.refresh(tenant: fixture.tenant, refreshToken: grant.refreshToken, context: Self.request)
        }
        let reuse = try #require(try await fixture.identity.store.auditEvents(AuditQuery(tenant: "acme", event: .refreshReuse)).first)
        #expect(reuse.sid == grant.claims.sid)
        #expect(reuse.userID == user.id)
        let login = try #require(try await fixture.identity.store.auditEvents(AuditQuery(tenant: "acme", event: .login)).first)
        #expect(login.sid == grant.claims.sid)
        #expect(fixture.auditLines().contains { $0["event"] as? String == "refresh_reuse" && $0["sid"] as? String == grant.claims.sid })
    }

    @Test(arguments: StoreKind.allCases) func queriesFilterAndKeepTheNewestAndThePurgeForgetsTheOld(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let store = fixture.identity.store
        let now = AuditEvent.nowMilliseconds()
        var events: [AuditEvent] = []
        for index in 0..<10 {
            let email = index % 2 == 0 ? "even@acme.test" : "odd@acme.test"
            events.append(
                AuditEvent(
                    index % 3 == 0 ? .loginError : .login, tenant: "acme", context: .cli, email: email, error: index % 3 == 0 ? "locked" : nil,
                    details: ["index": String(index), "quote": "a\"b\\c\n"], time: now - Int64(10 - index) * 3_600_000))
        }
        events.append(AuditEvent(.login, tenant: "globex", context: .cli, email: "even@acme.test", time: now))
        try await store.insertAuditEvents(events)

        let all = try await store.auditEvents(AuditQuery(tenant: "acme", limit: 100))
        #expect(all.map { $0.details?["index"] } == (0..<10).map(String.init), "oldest first, only this tenant")
        #expect(all.first?.details?["quote"] == "a\"b\\c\n")
        let newest = try await store.auditEvents(AuditQuery(tenant: "acme", limit: 3))
        #expect(newest.map { $0.details?["index"] } == ["7", "8", "9"], "the newest three, oldest of them first")
        let even = try await store.auditEvents(AuditQuery(tenant: "acme", email: "EVEN@acme.test"))
        #expect(even.map { $0.details?["index"] } == ["0", "2", "4", "6", "8"])
        let errors = try await store.auditEvents(AuditQuery(tenant: "acme", event: .loginError))
        #expect(errors.map { $0.details?["index"] } == ["0", "3", "6", "9"])
        let recent = try await store.auditEvents(AuditQuery(tenant: "acme", since: now - 2 * 3_600_000 - 1000))
        #expect(recent.map { $0.details?["index"] } == ["8", "9"])

        // The periodic purge with a retention of 5 hours: the five older events go.
        let synchronizer = StoreSynchronizer(
            identity: fixture.identity, cursor: 0, tenants: { [] }, purgeInterval: .milliseconds(50), auditRetention: .seconds(5 * 3600) + .seconds(60),
            logger: .init(label: "test"))
        let sync = Task { try? await synchronizer.run() }
        defer { sync.cancel() }
        var left: [AuditEvent] = []
        for _ in 0..<100 {
            left = try await store.auditEvents(AuditQuery(tenant: "acme"))
            if left.count == 5 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(left.map { $0.details?["index"] } == ["5", "6", "7", "8", "9"])
        #expect(try await store.deleteAuditEvents(before: now + 1) == 6, "the rest, and globex's")
    }

    /// Wrong passwords racing on one address: one `lockout`, from the attempt whose reservation filled the window;
    /// the attempts refused after it store one `login_error locked` between them (they cost nothing).
    @Test(arguments: StoreKind.allCases) func concurrentFailuresLockOnceAndAFloodAtALockedAddressStoresOneEvent(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind, tenantExtra: "lockout: {max_failures: 3, window: 15m}\n")
        defer { Task { await fixture.close() } }
        _ = try await fixture.identity.signUp(tenant: fixture.tenant, email: "eve@acme.test", password: "long enough pw", name: nil)
        let identity = fixture.identity
        let tenant = fixture.tenant
        let outcomes = await withTaskGroup(of: String.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    do {
                        _ = try await identity.logIn(tenant: tenant, email: "eve@acme.test", password: "wrong password!", context: Self.request)
                        return "success"
                    } catch IdentityError.lockedOut {
                        return "locked"
                    } catch {
                        return "invalid"
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == "invalid" }.count == 3)
        #expect(outcomes.filter { $0 == "locked" }.count == 9)
        let events = try await identity.store.auditEvents(AuditQuery(tenant: "acme", email: "eve@acme.test"))
        #expect(events.filter { $0.event == .lockout }.count == 1)
        #expect(events.filter { $0.event == .loginError && $0.error == "invalid_credentials" }.count == 3)
        #expect(events.filter { $0.event == .loginError && $0.error == "locked" }.count == 1, "nine refusals, one stored")
    }
}
