import Foundation
import Testing
@testable import GatehouseIdentity

@Suite struct EmailUniquenessTests {
    @Test(arguments: StoreKind.allCases) func twoSpellingsAreOneAccount(_ kind: StoreKind) async throws {
        let fixture = try await IdentityFixture.make(kind)
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
}
