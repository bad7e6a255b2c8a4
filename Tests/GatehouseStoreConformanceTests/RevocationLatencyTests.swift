import Foundation
import GatehouseConfiguration
import Testing
@testable import GatehouseIdentity

/// How fast a revocation reaches another replica, on every store. It measures time, so `scripts/test.sh` runs it
/// after the parallel suites, alone.
@Suite(.serialized) struct RevocationLatencyTests {
    /// A logout on one replica is enforced by another's proxy path (its revocation list, no store read) within
    /// 500 ms, through the store's change signals; a user disabled by the CLI too.
    @Test(arguments: StoreKind.allCases) func revocationsReachAnotherReplicaWithin500ms(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
        let other = try await fixture.replica()
        defer { Task { await other.close(); await fixture.close() } }
        _ = try await fixture.identity.signUp(tenant: fixture.tenant, email: "bye@acme.test", password: "long enough pw", name: nil)
        let cursor = try await other.identity.syncRevocations(after: 0)
        let synchronizer = StoreSynchronizer(identity: other.identity, cursor: cursor, tenants: { [] }, catchUpInterval: .seconds(5), logger: .init(label: "test"))
        let sync = Task { try? await synchronizer.run() }
        defer { sync.cancel() }
        try await Task.sleep(for: .milliseconds(200))
        for round in 0..<5 {
            let grant = try await fixture.identity.logIn(tenant: fixture.tenant, email: "bye@acme.test", password: "long enough pw")
            #expect(!other.identity.revocations.isRevoked(login: grant.claims.sid))
            let start = ContinuousClock.now
            if round == 4 {
                try await fixture.identity.setDisabled(tenant: fixture.tenant, email: "bye@acme.test", disabled: true)
            } else {
                try await fixture.identity.logOut(tenant: fixture.tenant, claims: grant.claims)
            }
            while !other.identity.revocations.isRevoked(login: grant.claims.sid), ContinuousClock.now - start < .seconds(2) {
                try await Task.sleep(for: .milliseconds(5))
            }
            let lag = ContinuousClock.now - start
            #expect(other.identity.revocations.isRevoked(login: grant.claims.sid))
            #expect(lag < .milliseconds(500), "seen after \(lag), not by the 5 s catch-up")
        }
        #expect(other.identity.health.isUp)
    }
}
