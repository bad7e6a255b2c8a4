import Testing
import GatehouseTokens

@Suite struct BearerCredentialTests {
    @Test func bearerCredentialsAreParsedStrictly() {
        func parse(_ value: String?) -> String {
            switch BearerCredential.parse(authorization: value) {
            case .none: return "none"
            case .malformed: return "malformed"
            case .bearer(let token): return "token:" + token
            }
        }
        #expect(parse(nil) == "none")
        #expect(parse("Bearer abc.def.ghi") == "token:abc.def.ghi")
        #expect(parse("bEaReR   abc  ") == "token:abc", "the scheme is case-insensitive; blanks around the token go")
        #expect(parse("  Bearer abc") == "token:abc")
        #expect(parse("Basic dXNlcjpwYXNz") == "none", "another scheme is not a bearer credential")
        #expect(parse("Bearerabc") == "none")
        #expect(parse("Bearer") == "malformed")
        #expect(parse("Bearer    ") == "malformed")
        #expect(parse("Bearer a b") == "malformed", "a token has no blanks in it")
        #expect(parse("Bear") == "none")
        #expect(parse("") == "none")
    }
}
