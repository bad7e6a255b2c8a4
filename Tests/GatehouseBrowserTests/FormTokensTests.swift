import Crypto
import GatehouseBrowser
import Testing

@Suite struct FormTokensTests {
    let tokens = FormTokens(key: SymmetricKey(size: .bits256))

    @Test func acceptsTheTokenOfTheSameBindingAndTenantOnly() {
        let binding = FormTokens.newBinding()
        let token = tokens.token(binding: binding, tenant: "acme")
        #expect(tokens.isValid(token, binding: binding, tenant: "acme"))
        #expect(!tokens.isValid(token, binding: FormTokens.newBinding(), tenant: "acme"))
        #expect(!tokens.isValid(token, binding: binding, tenant: "globex"))
        #expect(!FormTokens(key: SymmetricKey(size: .bits256)).isValid(token, binding: binding, tenant: "acme"))
    }

    @Test(arguments: ["", "x", String(repeating: "A", count: 43), "not base64!", String(repeating: "-", count: 44)])
    func refusesMalformedTokens(_ token: String) {
        #expect(!tokens.isValid(token, binding: FormTokens.newBinding(), tenant: "acme"))
    }

    @Test func refusesBindingsItCannotHaveMade() {
        let token = tokens.token(binding: "short", tenant: "acme")
        #expect(!tokens.isValid(token, binding: "short", tenant: "acme"))
        #expect(FormTokens.isWellFormedBinding(FormTokens.newBinding()))
    }
}
