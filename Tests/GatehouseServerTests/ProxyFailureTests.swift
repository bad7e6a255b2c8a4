import GatehouseTestSupport
import Foundation
import Testing

/// What the client sees when the client, the network or the upstream misbehaves.
@Suite(.serialized) struct ProxyFailureTests {
    @Test func upstreamDownIs502() async throws {
        try await withAcmeGateway { gateway in
            let response = try request(port: gateway.port, "/down")
            #expect(response.status == 502)
            #expect(response.header("content-type") == "application/problem+json")
            #expect((response.json["detail"] as? String)?.contains("http://127.0.0.1:1") == true)
        }
    }

    @Test func upstreamThatNeverAnswersIs504() async throws {
        try await withAcmeGateway { gateway in
            let started = Date()
            let response = try request(port: gateway.port, "/silent")
            #expect(response.status == 504)
            #expect(Date().timeIntervalSince(started) < 5)
            #expect((response.json["detail"] as? String)?.contains("1s") == true)
        }
    }

    @Test(arguments: ["/cut", "/reset"])
    func upstreamEndingMidBodyEndsTheClientConnection(path: String) async throws {
        try await withAcmeGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            try connection.send("GET \(path) HTTP/1.1\r\nHost: acme.test\r\n\r\n")
            #expect(throws: RawConnection.Closed.self, "the client must not get a short body passed off as complete") {
                _ = try connection.readResponse()
            }
            // The gateway is still up.
            #expect(try request(port: gateway.port, "/after").status == 200)
        }
    }

    @Test func idleKeepAliveConnectionsAreClosed() async throws {
        try await TestGateway.with(gatewayExtra: testLimits + "  idle_timeout: 1s\n") { gateway in
            let connection = try RawConnection(port: gateway.port)
            try connection.send("GET / HTTP/1.1\r\nHost: acme.test\r\n\r\n")
            #expect(try connection.readResponse().status == 200)
            let started = Date()
            #expect(connection.isClosedByPeer())
            #expect(Date().timeIntervalSince(started) < 5, "closed by the idle timeout, not by the read timeout")
        }
    }

    @Test func aStalePooledConnectionIsRetriedOnceForIdempotentRequests() async throws {
        try await withAcmeGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            for _ in 0..<3 {
                try connection.send("GET /flaky HTTP/1.1\r\nHost: acme.test\r\n\r\n")
                let response = try connection.readResponse()
                #expect(response.status == 200)
                #expect(response.text == "first")
            }
            // The pooled connection is stale again, but a POST is not retried: it could have had effects. (Same client
            // connection, so the same event loop and the same pool.)
            try connection.send("POST /flaky HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 1\r\n\r\nx")
            #expect(try connection.readResponse().status == 502)
            try connection.send("POST /flaky HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 1\r\n\r\nx")
            #expect(try connection.readResponse().status == 200, "the stale connection was dropped, not pooled again")
        }
    }

    @Test func slowRequestHeadTimesOut() async throws {
        try await withAcmeGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            let started = ContinuousClock.now
            try connection.send("GET / HTTP/1.1\r\nHost: acme.test\r\n")
            var sends: [String] = []
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(400))
                let sent = (try? connection.send("X-Slow: 1\r\n")) != nil
                sends.append("\(ContinuousClock.now - started) \(sent)")
            }
            let response = try connection.readResponse()
            #expect(response.status == 408)
            let stateAfterResponse = connection.tcpState
            let closed = connection.isClosedByPeer()
            #expect(closed, "sends: \(sends), TCP state after the 408: \(stateAfterResponse), now: \(connection.tcpState), at \(ContinuousClock.now - started)")
        }
    }

    @Test func silentConnectionIsClosed() async throws {
        try await withAcmeGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            #expect(connection.isClosedByPeer(), "a connection that never sends a head is closed after the head timeout")
        }
    }

    @Test func oversizedHeadIs431() async throws {
        try await withAcmeGateway { gateway in
            let response = try request(port: gateway.port, "/", headers: [("X-Big", String(repeating: "b", count: 20 * 1024))])
            #expect(response.status == 431)
            #expect(response.header("content-type") == "application/problem+json")
        }
    }

    @Test func malformedRequestsGet400() async throws {
        try await withAcmeGateway { gateway in
            let garbage = try RawConnection(port: gateway.port)
            try garbage.send("NOT HTTP AT ALL\r\n\r\n")
            #expect(try garbage.readResponse().status == 400)
            let twoHosts = try request(port: gateway.port, "/", headers: [("Host", "other.test")])
            #expect(twoHosts.status == 400)
            let twoAuthorizations = try request(port: gateway.port, "/", headers: [("Authorization", "Bearer a"), ("Authorization", "Bearer b")])
            #expect(twoAuthorizations.status == 400)
            let badExpectation = try request(port: gateway.port, "/", headers: [("Expect", "the-unexpected")])
            #expect(badExpectation.status == 417)
        }
    }
}
