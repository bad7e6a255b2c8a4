import GatehouseProxy
import NIOHTTP1
import Testing

@Suite struct TraceContextTests {
    static let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test(arguments: [
        valid, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
        // A later version may carry more fields after a dash (§3.2.4).
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
    ])
    func aValidTraceparentIsKept(_ value: String) {
        let context = TraceContext(clientValue: value)
        #expect(context?.traceparent == value)
        #expect(context?.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
    }

    @Test(arguments: [
        "", "00", "garbage", Self.valid + " ",
        // Versions: ff is forbidden, non-hex, upper case, one digit.
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // Lengths of each field.
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b77-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
        // Non-hex and upper-case hex in the ids and flags.
        "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bX-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é1",
        // All-zero ids.
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // Separators.
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        // Extra fields: never in version 00; in a later version only after a dash.
        Self.valid + "-extra", Self.valid + "-", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
    ])
    func aMalformedTraceparentIsNotKept(_ value: String) {
        #expect(TraceContext(clientValue: value) == nil, "\(value)")
    }

    @Test func aRequestKeepsItsOneValidTraceparentAndGetsANewOneOtherwise() {
        var generator = TraceContextGenerator()
        func context(_ values: [String]) -> TraceContext {
            TraceContext.of(RequestHeaderFacts(HTTPHeaders(values.map { ("traceparent", $0) })), generator: &generator)
        }
        #expect(context([Self.valid]) == TraceContext(clientValue: Self.valid))
        for values in [[], ["nonsense"], [Self.valid, Self.valid], [Self.valid, "nonsense"]] {
            let replaced = context(values)
            #expect(!replaced.isFromClient)
            #expect(replaced.traceparent != Self.valid)
        }
    }

    @Test func generatedContextsAreValidAndDistinct() {
        var generator = TraceContextGenerator()
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let context = generator.next()
            #expect(TraceContext(clientValue: context.traceparent) != nil, "\(context.traceparent)")
            #expect(context.traceparent.hasPrefix("00-") && context.traceparent.hasSuffix("-00"))
            seen.insert(String(context.traceID))
        }
        #expect(seen.count == 10_000)
        // Every connection (or HTTP/2 stream) has a generator of its own: they never repeat each other.
        var others = (0..<100).map { _ in TraceContextGenerator() }
        let firsts = Set((0..<100).map { String(others[$0].next().traceID) })
        #expect(firsts.count == 100)
        #expect(firsts.isDisjoint(with: seen))
    }

    @Test func theUpstreamGetsTheContextAndTheClientsStateOnlyWithItsOwnTrace() {
        let plan = UpstreamRequestPlan(method: .GET, uri: "/", framing: .none, isWebSocketUpgrade: false, identityHeaders: [])
        let policy = ForwardingHeaders.RequestPolicy(reservedHeaderNames: [], forwardAuthorization: false)
        let connection = ClientConnectionInfo(peerAddress: "192.0.2.1", peerIsTrusted: false, scheme: "http")
        let incoming = HTTPHeaders([("Host", "a.test"), ("traceparent", Self.valid), ("TraceParent", "x"), ("tracestate", "vendor=1")])
        let facts = RequestHeaderFacts(incoming)
        let kept = TraceContext(clientValue: Self.valid)!
        let keptHead = plan.makeHead(from: incoming, facts: facts, policy: policy, connection: connection, requestID: "r", trace: kept)
        #expect(keptHead.headers["traceparent"] == [Self.valid])
        #expect(keptHead.headers["tracestate"] == ["vendor=1"])
        var generator = TraceContextGenerator()
        let fresh = generator.next()
        let freshHead = plan.makeHead(from: incoming, facts: facts, policy: policy, connection: connection, requestID: "r", trace: fresh)
        #expect(freshHead.headers["traceparent"] == [fresh.traceparent])
        #expect(freshHead.headers["tracestate"].isEmpty, "another trace's state does not travel with a new trace")
    }
}
