import Foundation
import GatehouseTestSupport
import Testing

/// HTTP/1.1 connection behaviour through real sockets: pipelining, half-closed clients, `Connection: close` with a
/// large body, and graceful shutdown.
@Suite struct ConnectionHandlingTests {
    private static let tenants = [
        "acme": """
            hosts: [acme.test]
            routes:
              - {path: /big, upstream: "{{BIG}}", require: public}
              - {path: /slow, upstream: "{{SLOW}}", require: public}
              - {path: /private, upstream: "{{ECHO}}"}
              - {path: /, upstream: "{{ECHO}}", require: public}
            """
    ]
    private static let bigBody = 4 << 20

    private func withGateway(_ body: (TestGateway) async throws -> Void) async throws {
        try await TestGateway.with(
            gatewayExtra: testLimits, tenants: Self.tenants,
            scripted: ["BIG": .download(bytes: Self.bigBody), "SLOW": .delayed(.milliseconds(300))], body)
    }

    @Test func pipelinedRequestsAreAnsweredInOrderWhateverAnswersThem() async throws {
        try await withGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            // Proxied, refused by policy, slow upstream, with a body, a gateway endpoint that does not exist, proxied:
            // all in one write, so they reach the gateway while the first is still in flight.
            try connection.send(
                "GET /one HTTP/1.1\r\nHost: acme.test\r\n\r\n"
                    + "GET /private/two HTTP/1.1\r\nHost: acme.test\r\n\r\n"
                    + "GET /slow HTTP/1.1\r\nHost: acme.test\r\n\r\n"
                    + "POST /four HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 5\r\n\r\nhello"
                    + "GET /auth/nothing-here HTTP/1.1\r\nHost: acme.test\r\n\r\n"
                    + "GET /six HTTP/1.1\r\nHost: acme.test\r\n\r\n")
            let one = try connection.readResponse()
            #expect(one.json["path"] as? String == "/one")
            #expect(try connection.readResponse().status == 401)
            let slow = try connection.readResponse()
            #expect(slow.text == "delayed")
            let four = try connection.readResponse()

            #expect(four.json["path"] as? String == "/four")
            #expect(four.json["body_length"] as? Int == 5)
            #expect(try connection.readResponse().status == 404)
            #expect(try connection.readResponse().json["path"] as? String == "/six")
            // The connection is still good for more.
            try connection.send("GET /seven HTTP/1.1\r\nHost: acme.test\r\n\r\n")
            #expect(try connection.readResponse().json["path"] as? String == "/seven")
        }
    }

    @Test func http10KeepAliveIsAnsweredInKind() async throws {
        try await withGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            try connection.send("GET /one HTTP/1.0\r\nHost: acme.test\r\nConnection: keep-alive\r\n\r\n")
            let proxied = try connection.readResponse()
            #expect(proxied.status == 200)
            #expect(proxied.header("connection") == "keep-alive", "an HTTP/1.0 client closes unless told otherwise")
            try connection.send("GET /private HTTP/1.0\r\nHost: acme.test\r\nConnection: keep-alive\r\n\r\n")
            let refused = try connection.readResponse()
            #expect(refused.status == 401)
            #expect(refused.header("connection") == "keep-alive")
            try connection.send("GET /three HTTP/1.0\r\nHost: acme.test\r\n\r\n")
            let last = try connection.readResponse()
            #expect(last.json["path"] as? String == "/three")
            #expect(last.header("connection") == "close")
            #expect(connection.isClosedByPeer())
        }
    }

    @Test func aClientThatStopsSendingStillGetsItsAnswers() async throws {
        try await withGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            try connection.send("GET /slow HTTP/1.1\r\nHost: acme.test\r\n\r\nGET /after HTTP/1.1\r\nHost: acme.test\r\n\r\n")
            connection.finishSending()
            #expect(try connection.readResponse().text == "delayed")
            #expect(try connection.readResponse().json["path"] as? String == "/after")
            #expect(connection.isClosedByPeer(), "the gateway closes once the client's last request is answered")
        }
    }

    @Test func connectionCloseDeliversTheWholeBodyBeforeClosing() async throws {
        try await withGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            try connection.send("GET /big HTTP/1.1\r\nHost: acme.test\r\nConnection: close\r\n\r\n")
            // Read nothing for a while, so the end of the response is written while earlier bytes still wait.
            try await Task.sleep(for: .milliseconds(500))
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.header("connection") == "close")
            #expect(response.body.count == Self.bigBody)
            #expect(connection.isClosedByPeer())
        }
    }

    @Test func shutdownClosesIdleConnectionsAndFinishesRequestsInFlight() async throws {
        // The slow answer comes long after the shutdown starts, however busy the machine: on a loaded CI machine
        // the task that starts the shutdown has been seen to begin more than a second late.
        let gateway = try await TestGateway.start(
            gatewayExtra: "limits: {upstream_timeout: 10s}\n", tenants: Self.tenants,
            scripted: ["BIG": .download(bytes: 1), "SLOW": .delayed(.milliseconds(4000))])
        let idle = try RawConnection(port: gateway.port)
        try idle.send("GET /first HTTP/1.1\r\nHost: acme.test\r\n\r\n")
        #expect(try idle.readResponse().status == 200)
        let busy = try RawConnection(port: gateway.port)
        try busy.send("GET /slow HTTP/1.1\r\nHost: acme.test\r\n\r\n")
        try await Task.sleep(for: .milliseconds(100))

        let stopping = Task { await gateway.stop(gracePeriod: .seconds(10)) }
        let (idleClosed, answer, busyClosed) = try await offThread { (idle.isClosedByPeer(), try busy.readResponse(), busy.isClosedByPeer()) }
        #expect(idleClosed, "an idle keep-alive connection is closed at once")
        #expect(answer.text == "delayed", "the request in flight is answered")
        #expect(answer.header("connection") == "close")
        #expect(busyClosed)
        await stopping.value
    }
}
