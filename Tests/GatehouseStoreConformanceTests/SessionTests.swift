import Foundation
import GatehouseTokens
import Testing
@testable import GatehouseIdentity

@Suite struct SessionTests {
    /// A signed-up user and a session stored directly with the given times, so lifetimes are tested without waiting.
    static func storedSession(
        _ fixture: IdentityFixture, createdAgo: Int64 = 0, lastSeenAgo: Int64 = 0, expiresIn: Int64 = 3600
    ) async throws -> (cookie: String, user: UserRecord) {
        let user = try await fixture.identity.signUp(tenant: fixture.tenant, email: "ann@acme.test", password: "long enough pw", name: "Ann")
        let cookie = IdentityService.randomToken()
        let now = IdentityService.now()
        try await fixture.identity.store.insertSession(
            SessionRecord(
                hash: IdentityService.hashToken(cookie), tenant: "acme", sid: UUID().uuidString.lowercased(), userID: user.id,
                createdAt: now - createdAgo, lastSeenAt: now - lastSeenAgo, expiresAt: now + expiresIn))
        return (cookie, user)
    }

    @Test(arguments: StoreKind.allCases) func aLoginStartsASessionThatCarriesTheUsersIdentity(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        let user = try await identity.signUp(tenant: fixture.tenant, email: "Ann@acme.test", password: "long enough pw", name: "Ann")
        let grant = try await identity.logInToSession(tenant: fixture.tenant, email: "ann@acme.test", password: "long enough pw")
        guard case .valid(let cached) = identity.cachedSession(tenant: fixture.tenant, cookie: grant.cookieValue) else {
            Issue.record("a new session is not in memory")
            return
        }
        #expect(cached.claims.sub == user.id)
        #expect(cached.claims.email == "ann@acme.test")
        #expect(cached.claims.roles == ["user"])
        #expect(cached.claims.tenant == "acme")
        #expect(cached.record.expiresAt - cached.record.createdAt == 7 * 86_400)
        // Only the hash is stored.
        #expect(try await identity.store.session(hash: grant.cookieValue, tenant: "acme") == nil)
        #expect(try await identity.store.session(hash: IdentityService.hashToken(grant.cookieValue), tenant: "acme") != nil)
        await #expect(throws: IdentityError.invalidCredentials) {
            try await identity.logInToSession(tenant: fixture.tenant, email: "ann@acme.test", password: "wrong password")
        }
    }

    @Test(arguments: StoreKind.allCases) func aReplicaThatNeverSawTheSessionFindsItInTheStore(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let (cookie, user) = try await Self.storedSession(fixture)
        #expect(fixture.identity.cachedSession(tenant: fixture.tenant, cookie: cookie).isUnknown)
        let session = try await fixture.identity.session(tenant: fixture.tenant, cookie: cookie)
        #expect(session?.claims.sub == user.id)
        #expect(fixture.identity.cachedSession(tenant: fixture.tenant, cookie: cookie).isValid)
    }

    @Test(arguments: StoreKind.allCases) func forgedMalformedAndForeignCookiesAreNoSession(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let (cookie, _) = try await Self.storedSession(fixture)
        let identity = fixture.identity
        #expect(try await identity.session(tenant: fixture.tenant, cookie: IdentityService.randomToken()) == nil)
        #expect(try await identity.session(tenant: fixture.tenant, cookie: "short") == nil)
        #expect(try await identity.session(tenant: fixture.tenant, cookie: String(cookie.dropLast()) + "!") == nil)
        var other = fixture.tenant
        other.id = "globex"
        #expect(try await identity.session(tenant: other, cookie: cookie) == nil)
        // Nor once it is in memory, having been used at its own tenant.
        #expect(try await identity.session(tenant: fixture.tenant, cookie: cookie) != nil)
        #expect(try await identity.session(tenant: other, cookie: cookie) == nil)
        #expect(!identity.cachedSession(tenant: other, cookie: cookie).isValid)
    }

    @Test(arguments: StoreKind.allCases) func anIdleSessionEnds(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind, tenantExtra: "session: {idle_timeout: 10m, absolute_timeout: 7d}\n")
        defer { Task { await fixture.close() } }
        let (cookie, _) = try await Self.storedSession(fixture, createdAgo: 3600, lastSeenAgo: 601)
        #expect(try await fixture.identity.session(tenant: fixture.tenant, cookie: cookie) == nil)
    }

    @Test(arguments: StoreKind.allCases) func aSessionPastItsAbsoluteEndEndsHoweverActive(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let (cookie, _) = try await Self.storedSession(fixture, createdAgo: 7 * 86_400, lastSeenAgo: 0, expiresIn: 0)
        #expect(try await fixture.identity.session(tenant: fixture.tenant, cookie: cookie) == nil)
    }

    @Test(arguments: StoreKind.allCases) func useSlidesTheStoredIdleTimeout(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let (cookie, _) = try await Self.storedSession(fixture, createdAgo: 600, lastSeenAgo: 300)
        let hash = IdentityService.hashToken(cookie)
        let before = IdentityService.now()
        _ = try await fixture.identity.session(tenant: fixture.tenant, cookie: cookie)
        let stored = try await fixture.identity.store.session(hash: hash, tenant: "acme")
        #expect(try #require(stored).lastSeenAt >= before)
    }

    @Test(arguments: StoreKind.allCases) func endingASessionRevokesItForEveryReplica(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        let (cookie, _) = try await Self.storedSession(fixture)
        #expect(try await identity.session(tenant: fixture.tenant, cookie: cookie) != nil)
        #expect(try await identity.endSession(tenant: fixture.tenant, cookie: cookie))
        #expect(!identity.cachedSession(tenant: fixture.tenant, cookie: cookie).isValid)
        // A replica whose memory knows nothing of the revocation still finds the session ended in the store.
        identity.revocations.purge(now: Int64.max)
        #expect(try await identity.session(tenant: fixture.tenant, cookie: cookie) == nil)
        #expect(try await !identity.endSession(tenant: fixture.tenant, cookie: cookie))
    }

    @Test(arguments: StoreKind.allCases) func aCachedSessionIsDroppedOnceItsLoginIsRevokedElsewhere(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        let (cookie, _) = try await Self.storedSession(fixture)
        let session = try #require(try await identity.session(tenant: fixture.tenant, cookie: cookie))
        // Another replica revokes it; this one learns through the revocation sync.
        try await identity.store.revokeLogins([session.record.sid], until: IdentityService.now() + 600)
        _ = try await identity.syncRevocations(after: 0)
        #expect(!identity.cachedSession(tenant: fixture.tenant, cookie: cookie).isValid)
    }

    @Test(arguments: StoreKind.allCases) func disablingTheUserOrChangingThePasswordEndsTheirSessions(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        let (cookie, _) = try await Self.storedSession(fixture)
        let grant = try await identity.logIn(tenant: fixture.tenant, email: "ann@acme.test", password: "long enough pw")
        try await identity.changePassword(tenant: fixture.tenant, claims: grant.claims, current: "long enough pw", new: "another long pw")
        #expect(try await identity.session(tenant: fixture.tenant, cookie: cookie) == nil)

        let second = try await identity.logInToSession(tenant: fixture.tenant, email: "ann@acme.test", password: "another long pw")
        try await identity.setDisabled(tenant: fixture.tenant, email: "ann@acme.test", disabled: true)
        #expect(try await identity.session(tenant: fixture.tenant, cookie: second.cookieValue) == nil)
    }

    @Test(arguments: StoreKind.allCases) func purgeForgetsSessionsThatCanNoLongerBeUsed(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind, tenantExtra: "session: {idle_timeout: 10m}\n")
        defer { Task { await fixture.close() } }
        _ = try await Self.storedSession(fixture, createdAgo: 3600, lastSeenAgo: 1200)
        #expect(try await fixture.identity.purgeSessions(tenant: fixture.tenant) == 1)
        #expect(try await fixture.identity.purgeSessions(tenant: fixture.tenant) == 0)
    }
}

extension SessionCache.Lookup {
    var isValid: Bool {
        if case .valid = self { return true }
        return false
    }

    var isUnknown: Bool {
        if case .unknown = self { return true }
        return false
    }
}
