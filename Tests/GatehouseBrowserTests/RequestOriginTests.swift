import GatehouseBrowser
import Testing

@Suite struct RequestOriginTests {
    @Test func takesTheOriginAndFallsBackToTheReferer() {
        #expect(RequestOrigin.host(origin: "http://acme.test:8080", referer: nil) == "acme.test:8080")
        #expect(RequestOrigin.host(origin: "https://acme.test", referer: "https://evil.example/") == "acme.test")
        #expect(RequestOrigin.host(origin: nil, referer: "http://acme.test/app?x=1") == "acme.test")
        #expect(RequestOrigin.host(origin: "http://[::1]:8080", referer: nil) == "[::1]:8080")
    }

    @Test func namesNoHostForOpaqueOrMissingOrigins() {
        #expect(RequestOrigin.host(origin: nil, referer: nil) == nil)
        #expect(RequestOrigin.host(origin: "null", referer: "http://acme.test/") == nil)
        #expect(RequestOrigin.host(origin: "file:///etc/passwd", referer: nil) == nil)
        #expect(RequestOrigin.host(origin: "http://user:pw@acme.test", referer: nil) == nil)
    }
}
