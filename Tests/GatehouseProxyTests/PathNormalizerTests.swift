import Testing
@testable import GatehouseProxy

@Suite struct PathNormalizerTests {
    @Test(arguments: [
        ("/api/orders", "/api/orders"),
        ("/api/../admin", "/admin"),
        ("/api/%2e%2e/admin", "/admin"),
        ("/api/%2E%2E/admin", "/admin"),
        ("//api", "/api"),
        ("/api//x/", "/api/x/"),
        ("/api/./x", "/api/x"),
        ("/api/x/..", "/api/"),
        ("/%61pi", "/api"),
        ("/a%20b", "/a%20b"),
        ("/a%3fb", "/a%3Fb"),
        ("/", "/"),
    ])
    func normalises(raw: String, expected: String) throws {
        #expect(try PathNormalizer.normalize(Substring(raw)).get() == expected)
    }

    @Test(arguments: [
        ("/api%2Fadmin", PathNormalizer.Rejection.encodedSeparator),
        ("/api%2fadmin", .encodedSeparator),
        ("/api%5Cadmin", .encodedSeparator),
        ("/api\\admin", .encodedSeparator),
        ("/api/%00", .nulByte),
        ("/..", .climbsAboveRoot),
        ("/api/../../etc", .climbsAboveRoot),
        ("/%2e%2e/x", .climbsAboveRoot),
        ("/a%zz", .invalidPercentEncoding),
        ("/a%2", .invalidPercentEncoding),
        ("/caf\u{e9}", .invalidCharacter),
        ("api", .notAbsolute),
    ])
    func rejects(raw: String, rejection: PathNormalizer.Rejection) {
        #expect(throws: rejection) { try PathNormalizer.normalize(Substring(raw)).get() }
    }

    @Test func targetsSplitQueryAndAcceptAbsoluteForm() throws {
        #expect(try RequestTarget.parse("/api/x?a=1&b=/..").get() == RequestTarget(path: "/api/x", query: "a=1&b=/.."))
        #expect(try RequestTarget.parse("http://acme.test/api?q").get() == RequestTarget(path: "/api", query: "q"))
        #expect(try RequestTarget.parse("/x?").get().query == "")
        #expect(try RequestTarget.parse("/x").get().query == nil)
    }
}
