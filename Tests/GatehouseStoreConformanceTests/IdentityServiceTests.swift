import Foundation
import GatehouseConfiguration
import GatehouseTokens
import Testing
@testable import GatehouseIdentity

@Suite struct IdentityServiceTests {
    /// The store's attempt reservations (§5): at most `limit` per window, across callers; a reservation whose
    /// password was never checked (the hashing queue was full) can be given back.
    @Test(arguments: StoreKind.allCases) func loginAttemptsAreReservedAtomicallyAndCanBeGivenBack(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let store = fixture.identity.store
        let results = try await withThrowingTaskGroup(of: LoginAttemptReservation.self) { group in
            for _ in 0..<20 {
                group.addTask { try await store.reserveLoginAttempt(tenant: "acme", emailKey: "a@acme.test", at: 1_000, windowStart: 900, limit: 3) }
            }
            return try await group.reduce(into: [LoginAttemptReservation]()) { $0.append($1) }
        }
        #expect(results.filter { if case .reserved = $0 { true } else { false } }.count == 3)
        #expect(Set(results.compactMap { if case .reserved(let failures) = $0 { failures } else { nil } }) == [1, 2, 3], "each saw its own place")
        #expect(results.filter { $0 == .full(oldest: 1_000) }.count == 17)
        try await store.releaseLoginAttempt(tenant: "acme", emailKey: "a@acme.test", at: 1_000)
        #expect(try await store.loginFailures(tenant: "acme", emailKey: "a@acme.test", since: 0).count == 2)
        #expect(try await store.reserveLoginAttempt(tenant: "acme", emailKey: "a@acme.test", at: 1_001, windowStart: 901, limit: 3) == .reserved(failures: 3))
        // A window that has moved on forgets the old failures.
        #expect(try await store.reserveLoginAttempt(tenant: "acme", emailKey: "a@acme.test", at: 2_000, windowStart: 1_500, limit: 3) == .reserved(failures: 1))
        #expect(try await store.loginFailures(tenant: "acme", emailKey: "a@acme.test", since: 0) == [2_000])
    }

    /// A login with an address no account can have records no lockout row (a junk address must not grow the store),
    /// and the periodic purge forgets failures outside the window.
    @Test(arguments: StoreKind.allCases) func junkAddressesRecordNothingAndOldFailuresArePurged(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let store = fixture.identity.store
        let junk = "<" + String(repeating: "\u{FDFA}", count: 500) + "@acme.test>"
        for _ in 0..<3 {
            await #expect(throws: IdentityError.invalidCredentials) {
                try await fixture.identity.logIn(tenant: fixture.tenant, email: junk, password: "whatever it is")
            }
        }
        #expect(try await store.loginFailures(tenant: "acme", emailKey: EmailAddress.canonicalize(junk), since: 0).isEmpty)
        _ = try await store.reserveLoginAttempt(tenant: "acme", emailKey: "old@acme.test", at: 1_000, windowStart: 0, limit: 5)
        _ = try await fixture.identity.purgeSessions(tenant: fixture.tenant)
        #expect(try await store.loginFailures(tenant: "acme", emailKey: "old@acme.test", since: 0).isEmpty)
    }

    @Test(arguments: StoreKind.allCases) func concurrentSignupsOfOneEmailCreateExactlyOneUser(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        // Two replicas, so the race reaches the store's uniqueness rule and not only one process's check.
        let other = try await fixture.replica()
        defer { Task { await other.close() } }
        let results = await withTaskGroup(of: String.self) { group in
            for index in 0..<12 {
                let replica = index % 3 == 0 ? other : fixture
                group.addTask {
                    let email = index % 2 == 0 ? "race@acme.test" : "RACE@acme.test"
                    do {
                        _ = try await replica.identity.signUp(tenant: replica.tenant, email: email, password: "long enough pw", name: nil)
                        return "created"
                    } catch IdentityError.emailTaken {
                        return "taken"
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(results.filter { $0 == "created" }.count == 1)
        #expect(results.filter { $0 == "taken" }.count == 11, "every other one is told the address is taken: \(results)")
        #expect(try await fixture.identity.store.users(tenant: "acme").count == 1)
    }

    @Test(arguments: StoreKind.allCases) func signupValidatesItsInput(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind, tenantExtra: "password: {min_length: 10}\n")
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        await #expect(throws: IdentityError.invalidEmail) {
            try await identity.signUp(tenant: fixture.tenant, email: "no-at-sign", password: "long enough pw", name: nil)
        }
        await #expect(throws: IdentityError.passwordTooShort(minimum: 10)) {
            try await identity.signUp(tenant: fixture.tenant, email: "a@acme.test", password: "123456789", name: nil)
        }
        await #expect(throws: IdentityError.passwordTooLong) {
            try await identity.signUp(tenant: fixture.tenant, email: "a@acme.test", password: String(repeating: "x", count: 1025), name: nil)
        }
        var closed = fixture.tenant
        closed.signup.allowedEmailDomains = ["acme.test"]
        await #expect(throws: IdentityError.domainNotAllowed) {
            try await identity.signUp(tenant: closed, email: "a@evil.test", password: "long enough pw", name: nil)
        }
        closed.signup.enabled = false
        await #expect(throws: IdentityError.signupDisabled) {
            try await identity.signUp(tenant: closed, email: "a@acme.test", password: "long enough pw", name: nil)
        }
    }

    @Test(arguments: StoreKind.allCases) func refreshRotatesAndAReusedTokenRevokesTheWholeLogin(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        _ = try await identity.signUp(tenant: fixture.tenant, email: "r@acme.test", password: "long enough pw", name: "R")
        let first = try await identity.logIn(tenant: fixture.tenant, email: "R@ACME.test", password: "long enough pw")
        let second = try await identity.refresh(tenant: fixture.tenant, refreshToken: first.refreshToken)
        #expect(second.refreshToken != first.refreshToken)
        #expect(second.claims.sid == first.claims.sid)
        // The spent token again: refused, and the login (with the newer token) is gone.
        await #expect(throws: IdentityError.invalidRefreshToken) { try await identity.refresh(tenant: fixture.tenant, refreshToken: first.refreshToken) }
        await #expect(throws: IdentityError.invalidRefreshToken) { try await identity.refresh(tenant: fixture.tenant, refreshToken: second.refreshToken) }
        #expect(identity.revocations.isRevoked(tokenID: "-", login: first.claims.sid))
        await #expect(throws: IdentityError.invalidRefreshToken) { try await identity.refresh(tenant: fixture.tenant, refreshToken: "unknown") }
    }

    @Test(arguments: StoreKind.allCases) func lockoutStartsAfterMaxFailuresAndSkipsHashing(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind, tenantExtra: "lockout: {max_failures: 3, window: 15m}\n")
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        _ = try await identity.signUp(tenant: fixture.tenant, email: "l@acme.test", password: "long enough pw", name: nil)
        for _ in 0..<3 {
            await #expect(throws: IdentityError.invalidCredentials) {
                try await identity.logIn(tenant: fixture.tenant, email: "l@acme.test", password: "wrong password")
            }
        }
        do {
            _ = try await identity.logIn(tenant: fixture.tenant, email: "l@acme.test", password: "long enough pw")
            Issue.record("a locked-out account logged in")
        } catch IdentityError.lockedOut(let retryAfter) {
            #expect(retryAfter > 800 && retryAfter <= 900)
        }
    }

    @Test(arguments: StoreKind.allCases) func passwordChangeAndDisablingRevokeLogins(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        _ = try await identity.signUp(tenant: fixture.tenant, email: "p@acme.test", password: "long enough pw", name: nil)
        let phone = try await identity.logIn(tenant: fixture.tenant, email: "p@acme.test", password: "long enough pw")
        let laptop = try await identity.logIn(tenant: fixture.tenant, email: "p@acme.test", password: "long enough pw")
        try await identity.changePassword(tenant: fixture.tenant, claims: laptop.claims, current: "long enough pw", new: "another long pw")
        #expect(identity.revocations.isRevoked(tokenID: "-", login: phone.claims.sid))
        #expect(!identity.revocations.isRevoked(tokenID: "-", login: laptop.claims.sid))
        await #expect(throws: IdentityError.invalidCredentials) {
            try await identity.logIn(tenant: fixture.tenant, email: "p@acme.test", password: "long enough pw")
        }
        try await identity.setDisabled(tenant: fixture.tenant, email: "p@acme.test", disabled: true)
        #expect(identity.revocations.isRevoked(tokenID: "-", login: laptop.claims.sid))
        await #expect(throws: IdentityError.invalidCredentials) {
            try await identity.logIn(tenant: fixture.tenant, email: "p@acme.test", password: "another long pw")
        }
    }

    @Test(arguments: StoreKind.allCases) func keysAreCreatedOnceRotatedAndRetired(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let keys = fixture.identity.keys
        try await keys.setTenants([fixture.tenant])
        let first = try await keys.activeKey(for: fixture.tenant, now: 1000)
        #expect(try await keys.activeKey(for: fixture.tenant, now: 1001).kid == first.kid)
        let second = try await keys.rotate(fixture.tenant, now: 2000)
        let ring = keys.directory.ring(for: "acme")
        #expect(ring.signingKey?.kid == second)
        #expect(Set(ring.verificationKeys.keys) == [first.kid, second])
        // Once every token the old key signed has expired (access_ttl 15m + skew 30s), it leaves the ring.
        try await keys.reload(now: 2000 + 15 * 60 + 31)
        #expect(Set(keys.directory.ring(for: "acme").verificationKeys.keys) == [second])
        // Another process with the same store and master key sees the same keys.
        let stored = try await fixture.identity.store.signingKeys(tenant: "acme")
        #expect(stored.count == 2 && stored.allSatisfy { !$0.sealedPrivateKey.isEmpty })
    }
}
