import GatehouseTestSupport
import Foundation
import GatehouseProxy
import Testing

/// The proxy path through real sockets: gateway on loopback, echo upstream, raw HTTP client.
@Suite(.serialized) struct ProxyEndToEndTests {
    @Test func forwardsAndRewritesHeaders() async throws {
        try await withAcmeGateway { gateway in
            let response = try request(
                port: gateway.port, "/hello?x=1&y=%2F", headers: [
                    ("X-User-Id", "forged"), ("x-user-roles", "admin"), ("X-Identity-Assertion", "forged"), ("Connection", "X-Secret"),
                    ("X-Secret", "hidden"), ("X-Forwarded-For", "6.6.6.6"), ("Authorization", "Bearer abc"), ("Cookie", "gatehouse_session=s1; theme=dark"),
                ])
            #expect(response.status == 200)
            #expect(response.json["path"] as? String == "/hello")
            #expect(response.json["query"] as? String == "x=1&y=%2F", "the query is forwarded unchanged")
            let seen = response.echoedHeaders
            for name in ["x-user-id", "x-user-roles", "x-identity-assertion", "x-secret", "connection", "authorization"] {
                #expect(seen[name] == nil, "\(name) must not reach the upstream")
            }
            #expect(seen["x-forwarded-for"] == "127.0.0.1", "an untrusted peer's X-Forwarded-For is replaced")
            #expect(seen["x-forwarded-proto"] == "http")
            #expect(seen["x-forwarded-host"] == "acme.test")
            #expect(seen["cookie"] == "theme=dark")
            #expect(seen["host"] == "acme.test")
            let requestID = try #require(response.header("x-request-id"))
            #expect(requestID.count == 32)
            #expect(seen["x-request-id"] == requestID)
        }
    }

    @Test func trustedProxiesAreDecidedByThePeerAddress() async throws {
        let headers = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "public.example")]
        try await TestGateway.with(gatewayExtra: "trusted_proxies: [127.0.0.0/8]\n") { gateway in
            let seen = try request(port: gateway.port, "/", headers: headers).echoedHeaders
            #expect(seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1", "a trusted peer's chain is extended")
            #expect(seen["x-forwarded-proto"] == "https")
            #expect(seen["x-forwarded-host"] == "public.example")
        }
        try await TestGateway.with(gatewayExtra: "trusted_proxies: [10.0.0.0/8, \"::1\"]\n") { gateway in
            let seen = try request(port: gateway.port, "/", headers: headers).echoedHeaders
            #expect(seen["x-forwarded-for"] == "127.0.0.1", "an untrusted peer's claims are replaced")
            #expect(seen["x-forwarded-proto"] == "http")
            #expect(seen["x-forwarded-host"] == "acme.test")
        }
    }

    @Test func keepsASaneRequestIDAndReplacesAnInsaneOne() async throws {
        try await withAcmeGateway { gateway in
            let sane = try request(port: gateway.port, "/", headers: [("X-Request-Id", "trace-123")])
            #expect(sane.header("x-request-id") == "trace-123")
            #expect(sane.echoedHeaders["x-request-id"] == "trace-123")
            let insane = try request(port: gateway.port, "/", headers: [("X-Request-Id", "has space and \u{7f}")])
            #expect(insane.header("x-request-id") != "has space and \u{7f}")
            #expect(insane.header("x-request-id")?.count == 32)
        }
    }

    @Test func stripPrefixForwardsTheRest() async throws {
        try await withAcmeGateway { gateway in
            let response = try request(port: gateway.port, "/api/orders?x=1")
            #expect(response.json["path"] as? String == "/orders")
            #expect(response.json["query"] as? String == "x=1")
        }
    }

    @Test func tenantResolution() async throws {
        try await withAcmeGateway { gateway in
            let unknown = try request(port: gateway.port, "/", host: "unknown.test")
            #expect(unknown.status == 404)
            #expect(unknown.header("content-type") == "application/problem+json")
            #expect(unknown.json["detail"] as? String == "No tenant is configured for host 'unknown.test'.")
            #expect(try request(port: gateway.port, "/", host: "ACME.Test:8080").status == 200)
            #expect(try request(port: gateway.port, "/", host: "eu.acme.test").status == 200)
            #expect(try request(port: gateway.port, "/", host: "a.eu.acme.test").status == 404)
            let noHost = try RawConnection(port: gateway.port)
            try noHost.send("GET / HTTP/1.1\r\n\r\n")
            #expect(try noHost.readResponse().status == 400)
        }
    }

    @Test func pathNormalizationIsUsedForMatchingAndForwarding() async throws {
        try await withAcmeGateway { gateway in
            let dotted = try request(port: gateway.port, "/api/../admin")
            #expect(dotted.status == 200)
            #expect(dotted.json["path"] as? String == "/admin", "resolved once, forwarded as matched (route /)")
            let encoded = try request(port: gateway.port, "/api/%2e%2e/admin")
            #expect(encoded.json["path"] as? String == "/admin")
            let doubled = try request(port: gateway.port, "//api/x")
            #expect(doubled.json["path"] as? String == "/x", "//api/x matches /api and strips its prefix")
            for bad in ["/api%2Fadmin", "/api/%00", "/api%5Cadmin", "/../etc/passwd", "/a%zz"] {
                let response = try request(port: gateway.port, bad)
                #expect(response.status == 400, "\(bad)")
                #expect(response.header("content-type") == "application/problem+json")
                #expect((response.json["detail"] as? String)?.isEmpty == false)
            }
        }
    }

    @Test func reservedPrefixesAreNeverForwarded() async throws {
        try await withAcmeGateway { gateway in
            let response = try request(port: gateway.port, "/auth/anything")
            #expect(response.status == 404)
            #expect(response.json["path"] == nil, "not an echo")
            #expect(try request(port: gateway.port, "/authors").status == 200, "only whole segments are reserved")
        }
    }

    @Test func methodsPolicyAndAllow() async throws {
        try await withAcmeGateway { gateway in
            let denied = try request(port: gateway.port, "/api/admin/users", method: "DELETE")
            #expect(denied.status == 405)
            #expect(denied.header("allow") == "GET, HEAD, POST")
            let unauthenticated = try request(port: gateway.port, "/private")
            #expect(unauthenticated.status == 401)
            #expect(unauthenticated.header("www-authenticate") == "Bearer realm=\"acme\"")
            #expect(try request(port: gateway.port, "/api/admin").status == 401, "roles without an identity is 401")
            let head = try request(port: gateway.port, "/", method: "HEAD")
            #expect(head.status == 200)
        }
    }

    @Test func bodiesAreForwardedIntactAndLimited() async throws {
        try await withAcmeGateway { gateway in
            let body = String(repeating: "abcdefgh", count: 4096)  // 32 KiB
            let posted = try request(port: gateway.port, "/upload", method: "POST", body: body)
            #expect(posted.json["body_length"] as? Int == 32768)
            #expect(posted.json["body_sha256"] as? String == "e513c95b28aa30782746ae9e78f89c8d97d6b5c66370f09ef1093ead47336607")

            let tooLarge = try request(port: gateway.port, "/upload", method: "POST", body: String(repeating: "x", count: 70_000))
            #expect(tooLarge.status == 413)
            #expect(tooLarge.header("content-type") == "application/problem+json")

            // Chunked: counted as it streams.
            let chunked = try RawConnection(port: gateway.port)
            try chunked.send("POST /upload HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\n\r\n")
            let piece = String(repeating: "y", count: 16384)
            for _ in 0..<5 { try? chunked.send(String(16384, radix: 16) + "\r\n" + piece + "\r\n") }
            try? chunked.send("0\r\n\r\n")
            #expect(try chunked.readResponse().status == 413)

            let smallChunked = try RawConnection(port: gateway.port)
            try smallChunked.send("POST /upload HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            let echoed = try smallChunked.readResponse()
            #expect(echoed.json["body_length"] as? Int == 11)
            #expect(echoed.json["body_sha256"] as? String == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
        }
    }

    @Test func expectContinue() async throws {
        try await withAcmeGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            try connection.send("POST /upload HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            let interim = try connection.readResponse()
            #expect(interim.status == 100)
            try connection.send("hello")
            let final = try connection.readResponse()
            #expect(final.status == 200)
            #expect(final.json["body_length"] as? Int == 5)
            #expect(final.echoedHeaders["expect"] == nil)

            let refused = try RawConnection(port: gateway.port)
            try refused.send("POST /private HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            #expect(try refused.readResponse().status == 401, "a refused request gets its answer instead of 100 Continue")
        }
    }

    @Test func keepAliveServesManyRequestsOnOneConnection() async throws {
        try await withAcmeGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            for index in 0..<20 {
                try connection.send("GET /n\(index) HTTP/1.1\r\nHost: acme.test\r\n\r\n")
                let response = try connection.readResponse()
                #expect(response.json["path"] as? String == "/n\(index)")
            }
            // Pipelined requests are answered in order.
            try connection.send("GET /p1 HTTP/1.1\r\nHost: acme.test\r\n\r\nGET /p2 HTTP/1.1\r\nHost: acme.test\r\n\r\n")
            #expect(try connection.readResponse().json["path"] as? String == "/p1")
            #expect(try connection.readResponse().json["path"] as? String == "/p2")
        }
    }

    @Test func hopByHopResponseHeadersAreDropped() async throws {
        try await withAcmeGateway { gateway in
            let response = try request(port: gateway.port, "/hop")
            #expect(response.status == 200)
            #expect(response.header("x-up") == nil)
            #expect(response.header("keep-alive") == nil)
            #expect(response.header("x-kept") == "yes")
            #expect(response.text == "ok")
        }
    }

    @Test func webSocketUpgradeIsTunnelledOnlyWhenPolicyAllows() async throws {
        try await withAcmeGateway { gateway in
            let connection = try RawConnection(port: gateway.port)
            try connection.send(
                "GET /ws HTTP/1.1\r\nHost: acme.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            let switched = try connection.readResponse()
            #expect(switched.status == 101)
            #expect(switched.header("upgrade") == "websocket")
            try connection.send("ping-through-the-tunnel")
            #expect(String(decoding: try connection.read(exactly: 23), as: UTF8.self) == "ping-through-the-tunnel")
            try connection.send("second")
            #expect(String(decoding: try connection.read(exactly: 6), as: UTF8.self) == "second")

            let refused = try RawConnection(port: gateway.port)
            try refused.send("GET /ws-private HTTP/1.1\r\nHost: acme.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            #expect(try refused.readResponse().status == 401)
        }
    }

    @Test func accessLogHasOneLinePerRequestAndNoSecrets() async throws {
        try await withAcmeGateway { gateway in
            _ = try request(
                port: gateway.port, "/logged?token=query-secret",
                headers: [("Authorization", "Bearer very-secret-token"), ("Cookie", "gatehouse_session=cookie-secret"), ("X-Request-Id", "log-check-1")])
            let lines = gateway.accessLogLines().filter { $0.contains("log-check-1") }
            #expect(lines.count == 1)
            let line = try #require(lines.first)
            let entry = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(entry["tenant"] as? String == "acme")
            #expect(entry["route"] as? String == "/")
            #expect(entry["status"] as? Int == 200)
            #expect(entry["path"] as? String == "/logged")
            #expect(entry["upstream_ms"] is Double)
            #expect(entry["total_ms"] is Double)
            for secret in ["very-secret-token", "cookie-secret", "query-secret"] { #expect(!line.contains(secret)) }
        }
    }

    @Test func aValidTraceparentIsForwardedAndAnInvalidOneReplacedAndBothAreLogged() async throws {
        try await withAcmeGateway { gateway in
            let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            let kept = try request(port: gateway.port, "/t1", headers: [("traceparent", valid), ("tracestate", "vendor=x"), ("X-Request-Id", "trace-1")])
            #expect(kept.echoedHeaders["traceparent"] == valid)
            #expect(kept.echoedHeaders["tracestate"] == "vendor=x")
            var forwarded: [String: String] = ["trace-1": "4bf92f3577b34da6a3ce929d0e0e4736"]
            for (index, headers) in [
                [("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), ("tracestate", "vendor=x")],
                [("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")],
                [("traceparent", valid), ("traceparent", valid)],
                [("traceparent", valid + "-extra")],
                [],
            ].enumerated() {
                let id = "trace-replaced-\(index)"
                let replaced = try request(port: gateway.port, "/t2", headers: headers + [("X-Request-Id", id)])
                let traceparent = try #require(replaced.echoedHeaders["traceparent"])
                #expect(TraceContext(clientValue: traceparent) != nil)
                #expect(!traceparent.contains("4bf92f3577b34da6a3ce929d0e0e4736") && !traceparent.contains("4BF92F"))
                #expect(replaced.echoedHeaders["tracestate"] == nil, "the state of the refused trace is dropped")
                forwarded[id] = String(traceparent.dropFirst(3).prefix(32))
            }
            // The trace id the upstream saw is the one in the access log.
            let lines = gateway.accessLogLines()
            for (id, traceID) in forwarded {
                let line = try #require(lines.first { $0.contains("\"request_id\":\"\(id)\"") })
                let entry = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(entry["trace_id"] as? String == traceID, "\(id)")
            }
            // A rejected request has a trace id in its line too.
            #expect(try request(port: gateway.port, "/a;b", headers: [("X-Request-Id", "trace-rejected"), ("traceparent", valid)]).status == 400)
            // The answer is written before its line is logged.
            try await waitUntil { gateway.accessLogLines().contains { $0.contains("trace-rejected") } }
            let rejected = try #require(gateway.accessLogLines().first { $0.contains("trace-rejected") })
            #expect(rejected.contains("\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""))
        }
    }
}
