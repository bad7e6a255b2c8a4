@testable import GatehouseBrowser
import GatehouseTestSupport
import Testing

@Suite struct BrowserCookieTests {
    @Test func findsTheNamedCookieAmongOthersAndAcrossHeaders() {
        #expect(BrowserCookie.value(named: "gatehouse_session", in: ["a=1; gatehouse_session=abc; b=2"]) == "abc")
        #expect(BrowserCookie.value(named: "gatehouse_session", in: ["a=1", "gatehouse_session=xyz"]) == "xyz")
        #expect(BrowserCookie.value(named: "gatehouse_session", in: ["gatehouse_session=\"q\""]) == "q")
        #expect(BrowserCookie.value(named: "gatehouse_session", in: ["my_gatehouse_session=1; gatehouse_sessionx=2"]) == nil)
        #expect(BrowserCookie.value(named: "gatehouse_session", in: []) == nil)
    }

    /// Several cookies of one name are all returned, in order (§7 picks the one live session among them); an empty
    /// value is a value (the input the cookie fuzz target first stopped at).
    @Test func everyValueOfANameIsFound() {
        #expect(BrowserCookie.values(named: "gatehouse_session", in: ["gatehouse_session=a; x=1; gatehouse_session=b", "gatehouse_session=c"]) == ["a", "b", "c"])
        #expect(BrowserCookie.values(named: "gatehouse_session", in: [" gatehouse_session=;;=;"]) == [""])
        #expect(BrowserCookie.values(named: "gatehouse_session", in: ["=;;"]).isEmpty)
    }

    @Test func sessionCookieHasEveryAttributeOfSection7() {
        let plain = BrowserCookie.setSession("v", maxAge: 600, secure: false)
        #expect(plain == "gatehouse_session=v; Path=/; Max-Age=600; HttpOnly; SameSite=Lax")
        #expect(BrowserCookie.setSession("v", maxAge: 600, secure: true).hasSuffix("; Secure"))
        #expect(BrowserCookie.clearSession(secure: false) == "gatehouse_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
        #expect(BrowserCookie.setFormBinding("b", secure: false) == "gatehouse_csrf=b; Path=/auth/; HttpOnly; SameSite=Lax")
    }

    @Test func cookieValuesOnBytesEqualTheOnesOnCharacters() {
        let pieces = [
            "gatehouse_session", "=", ";", " ", "\t", "\"", "a", "x=1", "gatehouse_session=v", "gatehouse_sessionX=1", "GATEHOUSE_SESSION=u",
            " gatehouse_session =w", "gatehouse_session=\"q\" ", "; ", ";;", "=v", "\"\"",
        ]
        var random = SeededGenerator(seed: 4)
        for _ in 0..<5000 {
            let header = (0..<random.below(9)).map { _ in random.pick(pieces) }.joined()
            let fast = BrowserCookie.asciiValues(named: "gatehouse_session", in: header)
            #expect(fast == BrowserCookie.characterValues(named: "gatehouse_session", in: header), "\(header.debugDescription)")
        }
        // Not plain ASCII: a combining mark after "=" makes one Character of both, and the character path decides.
        #expect(BrowserCookie.asciiValues(named: "gatehouse_session", in: "gatehouse_session=\u{301}x") == nil)
        #expect(BrowserCookie.values(named: "gatehouse_session", in: ["gatehouse_session=\u{301}x"]).isEmpty)
    }
}
