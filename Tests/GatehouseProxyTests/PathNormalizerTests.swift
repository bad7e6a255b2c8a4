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
        ("/a.b/c", "/a.b/c"),
        ("/.well/x", "/.well/x"),
        ("/api/%2E/x", "/api/x"),
        ("/a%20b/c", "/a%20b/c"),
        ("/", "/"),
    ])
    func normalizes(raw: String, expected: String) throws {
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
        ("/api/admin;/x", .semicolon),
        ("/api/x/..;/admin/x", .semicolon),
        ("/api;jsessionid=1", .semicolon),
        ("/api/admin%3b/x", .semicolon),
        ("/api/admin%3B", .semicolon),
        ("/api/admin./x", .ambiguousSegmentEnd),
        ("/api/admin.", .ambiguousSegmentEnd),
        ("/api/admin%2e/x", .ambiguousSegmentEnd),
        ("/api/admin%20/x", .ambiguousSegmentEnd),
        ("/api/admin%09/x", .ambiguousSegmentEnd),
        ("/api/.../x", .ambiguousSegmentEnd),
        ("/api/x%20", .ambiguousSegmentEnd),
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

    /// The fast path (`isPlain`) must agree with the full pass on every path it takes: generated paths from an
    /// alphabet rich in the characters that matter, compared one by one.
    @Test func theFastPathAgreesWithTheFullPass() {
        let alphabet: [String] = ["/", "a", "Z", "0", "-", "_", "~", ".", "..", "%2e", "%2F", "%20", "%3b", ";", "%41", "%", "\\", " ", "\t", "é", ":", "@", "!"]
        var state: UInt64 = 0x5eed
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var fastPathHits = 0
        for _ in 0..<20_000 {
            var path = next() % 10 == 0 ? "" : "/"
            for _ in 0..<(next() % 12) { path += alphabet[next() % alphabet.count] }
            let fast = PathNormalizer.normalize(Substring(path))
            let full = PathNormalizer.normalizeFully(Substring(path))
            #expect(fast == full, "\(path.debugDescription)")
            if case .success(let value) = fast, value == path { fastPathHits += 1 }
        }
        #expect(fastPathHits > 1_000, "the generator exercises the fast path")
    }
}
