import Foundation
import GatehouseConfiguration
import GatehouseTokens
import Testing
@testable import GatehouseIdentity

/// The store protocol's concurrency rules, each on every store: what SQLite gets from having one writer,
/// PostgreSQL must get from locks and constraints, with replicas racing.
@Suite struct StoreConformanceTests {
    /// Two presentations of one refresh token at once: exactly one is rotated, the other is reuse and ends the
    /// whole login (§5).
    @Test(arguments: StoreKind.allCases) func twoConcurrentRefreshesExactlyOneWins(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        let replica = try await fixture.replica()
        defer { Task { await replica.close(); await fixture.close() } }
        _ = try await fixture.identity.signUp(tenant: fixture.tenant, email: "twice@acme.test", password: "long enough pw", name: nil)
        for _ in 0..<5 {
            let grant = try await fixture.identity.logIn(tenant: fixture.tenant, email: "twice@acme.test", password: "long enough pw")
            async let first = Self.outcome { try await fixture.identity.refresh(tenant: fixture.tenant, refreshToken: grant.refreshToken) }
            async let second = Self.outcome { try await replica.identity.refresh(tenant: replica.tenant, refreshToken: grant.refreshToken) }
            let outcomes = await [first, second]
            #expect(outcomes.compactMap { $0 }.count == 1, "exactly one refresh wins")
            let winner = try #require(outcomes.compactMap { $0 }.first)
            // The loser presented a spent token: the winner's new refresh token is dead too.
            await #expect(throws: IdentityError.invalidRefreshToken) {
                try await fixture.identity.refresh(tenant: fixture.tenant, refreshToken: winner.refreshToken)
            }
        }
    }

    private static func outcome(_ body: () async throws -> TokenGrant) async -> TokenGrant? {
        try? await body()
    }

    /// Replicas creating a tenant's first key together: one is active, and every replica signs with it (§9).
    @Test(arguments: StoreKind.allCases) func replicasStartingTogetherShareOneActiveKey(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        var opened = [fixture]
        for _ in 0..<3 { opened.append(try await fixture.replica()) }
        let replicas = opened
        defer { Task { for replica in replicas.reversed() { await replica.close() } } }
        let kids = try await withThrowingTaskGroup(of: String.self) { group in
            for replica in replicas {
                group.addTask { try await replica.identity.keys.activeKey(for: replica.tenant).kid }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(kids.count == 1, "one active key, used by every replica: \(kids)")
        let stored = try await fixture.identity.store.signingKeys(tenant: "acme")
        #expect(stored.filter { $0.retiredAt == nil }.count == 1)
        // Direct activations racing: exactly one of those asking for "only if none" gets in once none is active.
        let raced = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let key = StoredSigningKey(tenant: "other", kid: "k\(index)", algorithm: "ES256", sealedPrivateKey: Data([1, 2, 3]), createdAt: 1)
                    return try await replicas[index % replicas.count].identity.store.activateSigningKey(
                        key, onlyIfNoneActive: true, previousVerifiesUntil: 100)
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(raced.filter { $0 }.count == 1)
        #expect(try await fixture.identity.store.signingKeys(tenant: "other").filter { $0.retiredAt == nil }.count == 1)
    }

    /// A rotation by one process (the CLI) is used by the others after their next key reload.
    @Test(arguments: StoreKind.allCases) func aRotationIsSeenByEveryReplica(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        let cli = try await fixture.replica()
        defer { Task { await cli.close(); await fixture.close() } }
        let before = try await fixture.identity.keys.activeKey(for: fixture.tenant).kid
        try await cli.identity.keys.setTenants([cli.tenant])
        let rotated = try await cli.identity.keys.rotate(cli.tenant)
        #expect(rotated != before)
        try await fixture.identity.keys.reload()
        #expect(try await fixture.identity.keys.activeKey(for: fixture.tenant).kid == rotated)
        let ring = fixture.identity.keys.directory.ring(for: "acme")
        #expect(ring.verificationKeys[before] != nil, "the old key still verifies")
    }

    /// The catch-up read: from 0 every live revocation, from a cursor at least everything after it, never an
    /// expired one.
    @Test(arguments: StoreKind.allCases) func catchUpReadsEveryLiveRevocation(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        defer { Task { await fixture.close() } }
        let store = fixture.identity.store
        let now = IdentityService.now()
        try await store.revokeToken(jti: "old", until: now - 10)
        try await store.revokeToken(jti: "a", until: now + 100)
        let first = try await store.revocations(after: 0, now: now)
        #expect(first.records.map(\.value) == ["a"])
        #expect(first.records.first?.recordedAtMilliseconds ?? 0 > (now - 5) * 1000)
        try await store.revokeToken(jti: "b", until: now + 100)
        let second = try await store.revocations(after: first.cursor, now: now)
        #expect(second.records.map(\.value).contains("b"))
        #expect(second.cursor >= first.cursor)
        let third = try await store.revocations(after: 0, now: now)
        #expect(Set(third.records.map(\.value)) == ["a", "b"])
    }

    /// Lockout counts failures across replicas (§9): 20 wrong passwords spread over two replicas at once check at
    /// most `max_failures` hashes; the rest are 429.
    @Test(arguments: StoreKind.allCases) func lockoutIsSharedByReplicas(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind, tenantExtra: "lockout: {max_failures: 4, window: 15m}\n")
        let other = try await fixture.replica()
        defer { Task { await other.close(); await fixture.close() } }
        _ = try await fixture.identity.signUp(tenant: fixture.tenant, email: "lock@acme.test", password: "long enough pw", name: nil)
        let results = await withTaskGroup(of: IdentityError?.self) { group in
            for index in 0..<20 {
                let replica = index % 2 == 0 ? fixture : other
                group.addTask {
                    do {
                        _ = try await replica.identity.logIn(tenant: replica.tenant, email: "lock@acme.test", password: "wrong password")
                        return nil
                    } catch let error as IdentityError {
                        return error
                    } catch {
                        return .unknownUser
                    }
                }
            }
            return await group.reduce(into: [IdentityError?]()) { $0.append($1) }
        }
        #expect(results.filter { $0 == .invalidCredentials }.count == 4)
        #expect(results.filter { if case .lockedOut = $0 { return true } else { return false } }.count == 16)
    }
}
