import GatehouseBrowser
import Testing

@Suite struct RedirectTargetTests {
    @Test(arguments: ["/", "/app", "/app/orders?id=7&x=%2F", "/a/b#frag", "/caf%C3%A9", "/search?q=a%20b"])
    func keepsRelativePathsOnThisTenant(_ path: String) {
        #expect(RedirectTarget.safe(path) == path)
    }

    @Test(arguments: [
        "//evil.example", "https://evil.example", "http://evil.example/x", "/\\evil.example", "\\\\evil.example",
        "javascript:alert(1)", "evil.example", "", " /app", "/\t/evil.example", "/%09/evil.example",
        "%2F%2Fevil.example", "/%2Fevil.example", "/%5Cevil.example", "%2f%2fevil.example", "/%252F%252Fevil.example",
        "/%25252F%25252Fevil.example", "%68ttps://evil.example", "/%0d%0aSet-Cookie:x=1", "/app%", "/%E0%A4%A",
        "/\u{0000}", "//", "///evil.example", "/app\\..\\..\\evil",
    ])
    func sendsEverythingElseToTheRoot(_ candidate: String) {
        #expect(RedirectTarget.safe(candidate) == "/")
    }

    @Test func refusesAbsentAndOverlongTargets() {
        #expect(RedirectTarget.safe(nil) == "/")
        #expect(RedirectTarget.safe("/" + String(repeating: "a", count: 3000)) == "/")
    }
}
