@testable import GatehouseConfiguration
import NIOHTTP1
import Testing
@testable import GatehouseProxy

@Suite struct RoutingTests {
    private func route(_ path: String, methods: [String]? = nil, strip: Bool = false, base: String = "") -> RouteConfiguration {
        var route = RouteConfiguration(path: path, upstream: UpstreamURL(host: "127.0.0.1", port: 9001, basePath: base), line: 1)
        route.methods = methods
        route.stripPrefix = strip
        return route
    }

    @Test func longestPrefixWinsOnSegmentBoundaries() {
        let table = RouteTable([route("/"), route("/api"), route("/api/admin")])
        #expect(table.match("/api")?.path == "/api")
        #expect(table.match("/api/")?.path == "/api")
        #expect(table.match("/api/x")?.path == "/api")
        #expect(table.match("/apix")?.path == "/")
        #expect(table.match("/api/admin/users")?.path == "/api/admin")
        #expect(table.match("/api/administrator")?.path == "/api")
        #expect(RouteTable([route("/api")]).match("/other") == nil)
    }

    @Test func caseInsensitiveRoutesMatchAnyASCIICase() {
        var admin = route("/api/admin")
        admin.caseInsensitive = true
        let table = RouteTable([route("/"), route("/api"), admin])
        #expect(table.match("/api/ADMIN/x")?.path == "/api/admin")
        #expect(table.match("/API/Admin")?.path == "/api/admin")
        #expect(table.match("/api/ADMINx")?.path == "/api")
        #expect(table.match("/API/x")?.path == "/", "only the case-insensitive route widens")
        #expect(Route(admin).upstreamPath(for: "/API/ADMIN/x") == "/API/ADMIN/x", "the path goes upstream as sent")
        var stripped = admin
        stripped.stripPrefix = true
        #expect(Route(stripped).upstreamPath(for: "/Api/Admin/x") == "/x")
    }

    @Test func methodsAndAllowHeader() {
        let admin = Route(route("/api/admin", methods: ["POST", "GET"]))
        #expect(admin.allows(.GET))
        #expect(admin.allows(.HEAD), "GET allows HEAD")
        #expect(!admin.allows(.DELETE))
        #expect(admin.allowHeader == "GET, HEAD, POST")
        #expect(Route(route("/")).allows(.PATCH))
    }

    @Test func stripPrefixAndBasePath() {
        #expect(Route(route("/api", strip: true)).upstreamPath(for: "/api/orders") == "/orders")
        #expect(Route(route("/api", strip: true)).upstreamPath(for: "/api") == "/")
        #expect(Route(route("/api", strip: true)).upstreamPath(for: "/api/") == "/")
        #expect(Route(route("/api")).upstreamPath(for: "/api/orders") == "/api/orders")
        #expect(Route(route("/api", strip: true, base: "/v2")).upstreamPath(for: "/api/orders") == "/v2/orders")
        #expect(Route(route("/", strip: true)).upstreamPath(for: "/x") == "/x")
    }

    @Test func hostsResolveExactBeforeWildcard() throws {
        let fixtureTenants = [
            tenant("acme", hosts: [.exact("acme.test"), .wildcard(suffix: "acme.test")]),
            tenant("special", hosts: [.exact("vip.acme.test")]),
        ]
        let directory = TenantDirectory(tenants: fixtureTenants)
        #expect(directory.resolve(host: "acme.test")?.id == "acme")
        #expect(directory.resolve(host: "ACME.test:8080")?.id == "acme")
        #expect(directory.resolve(host: "eu.acme.test")?.id == "acme")
        #expect(directory.resolve(host: "vip.acme.test")?.id == "special", "an exact host wins over a wildcard")
        #expect(directory.resolve(host: "a.eu.acme.test") == nil, "a wildcard stands for one label")
        #expect(directory.resolve(host: "acme.test.")?.id == "acme")
        #expect(directory.resolve(host: "other.test") == nil)
        #expect(directory.resolve(host: "") == nil)
        #expect(TenantDirectory.normalizeHost("[::1]:8080") == "[::1]")
        #expect(TenantDirectory.normalizeHost("Acme.TEST.:443") == "acme.test")
        for invalid in ["bad host", "[::1", ":80", "é.test", ".", "tab\t.test"] {
            #expect(TenantDirectory.normalizeHost(invalid) == nil, "\(invalid)")
        }
    }

    private func tenant(_ id: String, hosts: [HostPattern]) -> TenantConfiguration {
        TenantConfiguration(
            id: id, file: "\(id).yaml", hosts: hosts, issuer: "http://\(id)", audience: id,
            branding: .init(displayName: id), identityHeaders: TenantConfiguration.defaultIdentityHeaders)
    }
}

@Suite struct ForwardingHeadersTests {
    private let untrusted = ClientConnectionInfo(peerAddress: "192.0.2.7", peerIsTrusted: false, scheme: "http")
    private let policy = ForwardingHeaders.RequestPolicy(
        reservedHeaderNames: ["x-user-id", "x-identity-assertion"], forwardAuthorization: false)

    /// The upstream request's headers, as ``UpstreamRequestPlan`` builds them.
    private func upstreamHeaders(
        _ incoming: HTTPHeaders, connection: ClientConnectionInfo, requestID: String, framing: RequestFraming = .none
    ) -> HTTPHeaders {
        let plan = UpstreamRequestPlan(method: .POST, uri: "/x", framing: framing, isWebSocketUpgrade: false, identityHeaders: [])
        return plan.makeHead(from: incoming, facts: RequestHeaderFacts(incoming), policy: policy, connection: connection, requestID: requestID).headers
    }

    @Test func readsTheBrowserHeadersOfSessionsInTheOnePass() {
        let facts = RequestHeaderFacts(HTTPHeaders([
            ("Host", "acme.test"), ("ACCEPT", "application/json, Text/HTML ;q=0.9"), ("Origin", "http://acme.test"),
            ("Referer", "http://acme.test/a"), ("Cookie", "a=1"), ("cookie", "gatehouse_session=s"),
        ]))
        #expect(facts.acceptsHTML)
        #expect(facts.origin == "http://acme.test")
        #expect(facts.referer == "http://acme.test/a")
        #expect(facts.cookies == ["a=1", "gatehouse_session=s"])
        for accept in ["application/json", "*/*", "text/htmlx", "application/xhtml+xml"] {
            #expect(!RequestHeaderFacts(HTTPHeaders([("Accept", accept)])).acceptsHTML, "\(accept)")
        }
        #expect(!RequestHeaderFacts(HTTPHeaders()).acceptsHTML)
    }

    @Test func stripsIdentityHopByHopAndConnectionNamedHeaders() {
        let incoming = HTTPHeaders([
            ("Host", "acme.test"), ("X-User-Id", "forged"), ("x-identity-assertion", "forged"), ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "s"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Authorization", "Bearer t"), ("Accept", "*/*"),
            ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "evil.test"), ("Forwarded", "for=6.6.6.6"), ("X-Request-Id", "abc"),
            ("Cookie", "a=1; gatehouse_session=secret; b=2"),
        ])
        let headers = upstreamHeaders(incoming, connection: untrusted, requestID: "rid")
        for name in ["x-user-id", "x-identity-assertion", "connection", "x-secret", "keep-alive", "te", "authorization", "forwarded"] {
            #expect(!headers.contains(name: name), "\(name) must not be forwarded")
        }
        #expect(headers["x-forwarded-for"] == ["192.0.2.7"])
        #expect(headers["x-forwarded-host"] == ["acme.test"])
        #expect(headers["x-forwarded-proto"] == ["http"])
        #expect(headers["x-request-id"] == ["rid"])
        #expect(headers["cookie"] == ["a=1; b=2"])
        #expect(headers["accept"] == ["*/*"])
        #expect(headers["host"] == ["acme.test"])
    }

    @Test func trustedProxiesExtendForwardedHeaders() {
        let trusted = ClientConnectionInfo(peerAddress: "10.0.0.2", peerIsTrusted: true, scheme: "http")
        let incoming = HTTPHeaders([("Host", "acme.test"), ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")])
        let headers = upstreamHeaders(incoming, connection: trusted, requestID: "r")
        #expect(headers["x-forwarded-for"] == ["203.0.113.9, 10.0.0.2"])
        #expect(headers["x-forwarded-proto"] == ["https"])
    }

    @Test func reservedAndConnectionNamedHeadersMatchInAnyCase() {
        let incoming = HTTPHeaders([
            ("Host", "acme.test"), ("X-USER-ID", "forged"), ("x-User-Id", "forged too"), ("Connection", " x-SECRET ,Upgrade"),
            ("x-secret", "s"), ("X-Secretive", "kept"), ("Transfer-Encoding", "gzip, Chunked"), ("X-Two", "2"), ("Connection", "x-two"),
        ])
        let headers = upstreamHeaders(incoming, connection: untrusted, requestID: "r", framing: .chunked)
        #expect(!headers.contains(name: "x-user-id"))
        #expect(!headers.contains(name: "x-secret"))
        #expect(!headers.contains(name: "x-two"), "every Connection header counts, not only the first")
        #expect(headers["x-secretive"] == ["kept"])
        // The client's framing headers never pass; the plan's framing is the only one.
        #expect(headers["transfer-encoding"] == ["chunked"])
        #expect(!headers.contains(name: "connection"))
    }

    @Test func responseHeadersLoseHopByHopOnes() {
        let incoming = HTTPHeaders([
            ("Content-Type", "text/plain"), ("Connection", "X-Internal"), ("x-internal", "1"), ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"), ("X-Request-Id", "upstream's"), ("Set-Cookie", "a=1"),
        ])
        let headers = ForwardingHeaders.clientResponseHeaders(from: incoming, requestID: "rid", keepUpgrade: false)
        #expect(headers.map(\.name) == ["Content-Type", "Set-Cookie", "X-Request-Id"])
        #expect(headers["x-request-id"] == ["rid"])
    }

    @Test func requestIDs() {
        #expect(ForwardingHeaders.isSaneRequestID("a1b2-c3_d4.e5:f6"))
        #expect(!ForwardingHeaders.isSaneRequestID(""))
        #expect(!ForwardingHeaders.isSaneRequestID("a b"))
        #expect(!ForwardingHeaders.isSaneRequestID("x\r\nSet-Cookie: a"))
        #expect(!ForwardingHeaders.isSaneRequestID(String(repeating: "a", count: 129)))
        var ids = RequestIDGenerator()
        let first = ids.next()
        let second = ids.next()
        #expect(first.utf8.count == 32 && second.utf8.count == 32)
        #expect(first != second)
        #expect(first.prefix(16) == second.prefix(16), "one random prefix per connection, then a counter")
        #expect(ForwardingHeaders.isSaneRequestID(first))
        var otherConnection = RequestIDGenerator()
        #expect(otherConnection.next().prefix(16) != first.prefix(16))
    }

    @Test func responseDropsHopByHop() {
        let incoming = HTTPHeaders([("Connection", "X-Up"), ("X-Up", "1"), ("Keep-Alive", "timeout=5"), ("Content-Type", "text/plain")])
        let headers = ForwardingHeaders.clientResponseHeaders(from: incoming, requestID: "r", keepUpgrade: false)
        #expect(headers.map(\.name) == ["Content-Type", "X-Request-Id"])
    }
}

@Suite struct KnownHeaderTests {
    @Test func everyKnownNameIsRecognisedInAnyCase() {
        for header in KnownHeader.allCases {
            #expect(KnownHeader(name: header.rawValue) == header)
            #expect(KnownHeader(name: header.rawValue.uppercased()) == header)
        }
        #expect(KnownHeader(name: "X-Forwarded-Fur") == nil)
        #expect(KnownHeader(name: "") == nil)
        #expect(KnownHeader(name: String(repeating: "x", count: 300)) == nil)
        // Case folding is ASCII only: a non-ASCII look-alike never matches.
        #expect(KnownHeader(name: "Hoſt") == nil)
    }

    @Test func tokenListsAreSplitOnCommasAndTrimmed() {
        #expect("keep-alive, Upgrade".listsToken("upgrade"))
        #expect(" UPGRADE ".listsToken("upgrade"))
        #expect(!"upgrades".listsToken("upgrade"))
        #expect(!"".listsToken("upgrade"))
        #expect(",,upgrade,".listsToken("upgrade"))
    }

    @Test func requestFactsGatherEverythingInOnePass() {
        let facts = RequestHeaderFacts(
            HTTPHeaders([
                ("host", "a.test"), ("HOST", "b.test"), ("Authorization", "Bearer x"), ("Content-Length", "12"),
                ("Expect", "100-Continue"), ("X-Request-Id", "rid"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ]))
        #expect(facts.hostCount == 2)
        #expect(facts.host == "a.test")
        #expect(facts.authorizationCount == 1)
        #expect(facts.contentLength == 12)
        #expect(facts.expectsContinue)
        #expect(facts.requestID == "rid")
        #expect(facts.requestsUpgrade)
        #expect(facts.requestsWebSocket)
        #expect(!facts.hasTransferEncoding)
        #expect(facts.contentLengthCount == 1)
        #expect(!RequestHeaderFacts(HTTPHeaders([("Upgrade", "websocket")])).requestsUpgrade)
        #expect(RequestHeaderFacts(HTTPHeaders([("Content-Length", "twelve")])).contentLength == nil)
    }
}
