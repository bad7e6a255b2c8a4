import GatehouseTestSupport
import Foundation
import Testing

/// The public listener's TLS + HTTP/2 path, the admin listener, and hot reload of tenants.
@Suite(.serialized) struct ListenerTests {
    @Test func adminListenerServesHealthAndReadinessOnly() async throws {
        try await TestGateway.with { gateway in
        let health = try request(port: gateway.adminPort, "/healthz", host: "localhost")
        #expect(health.status == 200)
        let ready = try request(port: gateway.adminPort, "/readyz", host: "localhost")
        #expect(ready.status == 200)
        #expect(ready.json["status"] as? String == "ready")
        #expect(try request(port: gateway.adminPort, "/", host: "localhost").status == 404)
        // The admin endpoints are not on the public listener: /healthz there is an ordinary proxied path.
        let proxied = try request(port: gateway.port, "/healthz")
        #expect(proxied.json["path"] as? String == "/healthz")
        }
    }

    @Test func tlsOffersHTTP2AndHTTP1ByALPN() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (certificate, key) = try makeSelfSignedCertificate(for: "acme.test", in: directory)
        try await TestGateway.with(gatewayExtra: "tls:\n  certificate: \(certificate)\n  private_key: \(key)\n") { gateway in
        let url = "https://acme.test:\(gateway.port)/h2/path?q=1"
        let resolve = "acme.test:\(gateway.port):127.0.0.1"
        let http2 = try run("/usr/bin/curl", ["-sk", "--http2", "--resolve", resolve, "-H", "X-User-Id: forged", "-w", "\\n%{http_version}", url])
        let lines = http2.output.split(separator: "\n")
        #expect(lines.last == "2", "negotiated HTTP/2")
        let echoed = try JSONSerialization.jsonObject(with: Data(lines.first!.utf8)) as? [String: Any]
        #expect(echoed?["path"] as? String == "/h2/path")
        let headers = echoed?["headers"] as? [String: String]
        #expect(headers?["x-user-id"] == nil)
        #expect(headers?["x-forwarded-proto"] == "https")
        #expect(headers?["host"] == "acme.test:\(gateway.port)", "the :authority becomes the upstream Host")

        let http1 = try run("/usr/bin/curl", ["-sk", "--http1.1", "--resolve", resolve, "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url])
        #expect(http1.output == "1.1 200")
        let missing = try run("/usr/bin/curl", ["-sk", "--http2", "--resolve", resolve, "-o", "/dev/null", "-w", "%{http_code}", "https://acme.test:\(gateway.port)/private"])
        #expect(missing.output == "401")

        // HTTP/2 bodies: with a content-length, and streamed from stdin without one (the stream delimits it); either
        // way the upstream request is framed by the gateway and carries the whole body.
        for arguments in [["--data-binary", "hello over h2"], ["-T", "-", "-X", "POST"]] {
            let posted = try run(
                "/usr/bin/curl", ["-sk", "--http2", "--resolve", resolve] + arguments + [url], input: arguments[0] == "-T" ? "hello over h2" : nil)
            let body = try JSONSerialization.jsonObject(with: Data(posted.output.utf8)) as? [String: Any]
            #expect(body?["body_length"] as? Int == 13, "\(arguments): \(posted.output)")
            #expect(body?["method"] as? String == "POST")
        }
        }
    }

    @Test func reloadSwapsTenantsAndKeepsThePreviousVersionOfABadFile() async throws {
        try await TestGateway.with { gateway in
        #expect(try request(port: gateway.port, "/", host: "new.test").status == 404)

        // A keep-alive connection opened before the reload keeps working after it.
        let connection = try RawConnection(port: gateway.port)
        try connection.send("GET /before HTTP/1.1\r\nHost: acme.test\r\n\r\n")
        #expect(try connection.readResponse().status == 200)

        try gateway.writeTenant("fresh", "hosts: [new.test]\nroutes:\n  - {path: /, upstream: \"{{ECHO}}\", require: public}\n")
        try gateway.writeTenant("acme", "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"{{ECHO}}\"}\n")
        let reload = gateway.server.reloadTenants()
        #expect(reload.diagnostics.isEmpty)
        #expect(reload.changed == ["acme", "fresh"])
        #expect(try request(port: gateway.port, "/", host: "new.test").status == 200)
        #expect(try request(port: gateway.port, "/", host: "acme.test").status == 401, "acme's new version is in force")
        try connection.send("GET /after HTTP/1.1\r\nHost: acme.test\r\n\r\n")
        #expect(try connection.readResponse().status == 401, "new requests on an old connection see the new version")

        try gateway.writeTenant("fresh", "hosts: [new.test]\nroutes:\n  - {path: /, upstream: \"ftp://nope\"}\n")
        let bad = gateway.server.reloadTenants()
        #expect(bad.diagnostics.map(\.description).contains { $0.hasSuffix("fresh.yaml:3: 'upstream': upstream scheme 'ftp' is not supported (use http://host:port)") })
        #expect(try request(port: gateway.port, "/", host: "new.test").status == 200, "the bad file's previous version keeps serving")
        }
    }
}

