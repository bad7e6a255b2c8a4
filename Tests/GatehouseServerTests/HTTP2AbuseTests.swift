import Foundation
import GatehouseTestSupport
import Testing

/// Hostile HTTP/2 clients, seen through hyper-h2 (`scripts/h2-probe.py`), an HTTP/2 implementation that is not the
/// gateway's: a burst of streams past the concurrency limit with half of them reset (the "rapid reset" pattern), the
/// same within the limit, and a client's GOAWAY in the middle of its streams.
@Suite(.serialized) struct HTTP2AbuseTests {
    static let tenant = """
        hosts: [acme.test]
        routes:
          - {path: /slow, upstream: "{{SLOW}}", require: public}
          - {path: /, upstream: "{{ECHO}}", require: public}
        """

    /// A TLS gateway (HTTP/2 by ALPN) in front of the echo server and a slow upstream.
    static func withTLSGateway(_ body: (TestGateway) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-h2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (certificate, key) = try makeSelfSignedCertificate(for: "acme.test", in: folder)
        try await TestGateway.with(
            gatewayExtra: "tls:\n  certificate: \(certificate)\n  private_key: \(key)\n", tenants: ["acme": tenant],
            scripted: ["SLOW": .delayed(.milliseconds(300))], body)
    }

    /// The gateway still serves a well-behaved client on a new connection.
    static func expectServing(_ gateway: TestGateway) async throws {
        let report = try await HTTP2ProbeReport.run(port: gateway.port, ["--streams", "10", "--path", "/after"])
        #expect(report.statuses == ["200": 10], "a new connection is served: \(report)")
    }

    @Test func aThousandStreamsAtOnceHalfResetEndInAGoawayAndNothingElse() async throws {
        try await Self.withTLSGateway { gateway in
            // All at once, before the server's SETTINGS: past SETTINGS_MAX_CONCURRENT_STREAMS (100).
            let burst = try await HTTP2ProbeReport.run(port: gateway.port, ["--streams", "1000", "--reset-every", "2", "--path", "/slow"])
            #expect(burst.reset_by_client == 500)
            let errors = Set(burst.goaway.map(\.error))
            #expect(!errors.isEmpty && errors.isSubset(of: ["PROTOCOL_ERROR", "ENHANCE_YOUR_CALM"]), "a GOAWAY that says why: \(burst)")
            #expect(burst.statuses.keys.allSatisfy { $0 == "200" }, "no stream got an error status: \(burst)")
            try await Self.expectServing(gateway)
        }
    }

    @Test func aThousandStreamsWithinTheLimitHalfResetAreServedOrCalmedDown() async throws {
        try await Self.withTLSGateway { gateway in
            let paced = try await HTTP2ProbeReport.run(port: gateway.port, ["--streams", "1000", "--reset-every", "2", "--paced"])
            #expect(paced.statuses.keys.allSatisfy { $0 == "200" }, "\(paced)")
            if paced.goaway.isEmpty {
                #expect(paced.ended == 500 && paced.unanswered == 0 && paced.never_opened == 0, "\(paced)")
            } else {
                // So many resets are the rapid-reset attack: the connection is closed with a GOAWAY that says so.
                #expect(!paced.goaway.isEmpty && paced.goaway.allSatisfy { $0.error == "ENHANCE_YOUR_CALM" }, "\(paced)")
            }
            let polite = try await HTTP2ProbeReport.run(port: gateway.port, ["--streams", "1000", "--paced"])
            #expect(polite.statuses == ["200": 1000], "\(polite)")
            #expect(polite.goaway.isEmpty && polite.unanswered == 0)
            try await Self.expectServing(gateway)
        }
    }

    /// Header names reach the upstream head without `HTTPHeaders.add`'s ASCII check (the fast path builds them in one
    /// go), so the decoder must refuse a name that is not a lower-case token (RFC 9113 §8.2.1) before anything is
    /// built: swift-nio-http2's header validation does (a check of ours in admission caught nothing more, and went).
    @Test(arguments: ["x-\\xfcber:1", "X-Upper:1", "x bad:1", "x-nul\\x00:1", "x-user-id\\x00:forged"])
    func anInvalidHeaderNameOverHTTP2NeverGoesUpstream(_ header: String) async throws {
        try await Self.withTLSGateway { gateway in
            let report = try await HTTP2ProbeReport.run(port: gateway.port, ["--streams", "1", "--header", header])
            #expect(report.statuses["200"] == nil, "refused, not forwarded: \(report)")
            #expect(report.statuses["400"] == 1 || !report.reset_by_server.isEmpty, "400 from the gateway, or a reset by HTTP/2: \(report)")
            #expect(report.ended + report.reset_by_server.values.reduce(0, +) + report.goaway.count > 0, "an answer or a reset: \(report)")
            try await Self.expectServing(gateway)
        }
    }

    /// The streams of one connection share one timer for their upstream deadlines (``DeadlineTimerGroup``): each
    /// stream still gets its own 504 when its upstream is too slow, and the streams after them are served.
    @Test func everyStreamOfAConnectionGetsItsOwnUpstreamTimeout() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-h2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (certificate, key) = try makeSelfSignedCertificate(for: "acme.test", in: folder)
        try await TestGateway.with(
            gatewayExtra: "limits: {upstream_timeout: 1s}\ntls:\n  certificate: \(certificate)\n  private_key: \(key)\n",
            tenants: ["acme": Self.tenant], scripted: ["SLOW": .delayed(.seconds(4))]
        ) { gateway in
            let started = ContinuousClock.now
            let report = try await HTTP2ProbeReport.run(port: gateway.port, ["--streams", "40", "--path", "/slow"])
            #expect(report.statuses == ["504": 40], "\(report)")
            #expect(ContinuousClock.now - started < .seconds(4), "each at its own deadline, not the upstream's answer")
            try await Self.expectServing(gateway)
        }
    }

    @Test func aClientGoawayInTheMiddleOfItsStreamsLetsThemFinish() async throws {
        try await Self.withTLSGateway { gateway in
            let report = try await HTTP2ProbeReport.run(port: gateway.port, ["--streams", "50", "--goaway-after", "5", "--path", "/slow"])
            #expect(report.statuses == ["200": 50], "\(report)")
            #expect(report.unanswered == 0 && report.reset_by_server.isEmpty)
            try await Self.expectServing(gateway)
        }
    }
}
