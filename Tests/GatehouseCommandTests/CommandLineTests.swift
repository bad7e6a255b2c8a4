import Foundation
import GatehouseEcho
import GatehouseTestSupport
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct CommandLineTests {
    @Test func checkAcceptsTheBundledExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let result = try run(gatehouseBinary, ["check", "--config", root.appendingPathComponent("config/gatehouse.yaml").path])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("ok (1 tenant, 3 routes)"))
    }

    @Test func checkReportsEveryProblemWithFileAndLineAndExits1() throws {
        let gateway = try GatehouseProcess(gateway: "master_key: ${GATEHOUSE_CHECK_TEST_UNSET}\n", tenants: [
            "acme": "hosts: [acme.test]\ntokens:\n  access_ttl: 10 minutes\nroutes:\n  - {path: /auth/x, upstream: \"http://127.0.0.1:1\"}\n  - {path: /api, upstream: \"not a url\"}\n  - {path: /b, upstream: \"http://127.0.0.1:1\", strip_prefx: true}\n",
            "bravo": "hosts: [bravo.test, acme.test]\n",
            "wild": "hosts: [\"*.wild.test\"]\n",
        ])
        defer { gateway.stop() }
        let result = try run(gatehouseBinary, ["check", "--config", gateway.configPath])
        #expect(result.status == 1)
        #expect(result.error.contains("gatehouse.yaml:5: 'master_key': environment variable GATEHOUSE_CHECK_TEST_UNSET is not set"))

        // With the variable set, the tenant files are checked, every problem of every file at once.
        let environment = ["GATEHOUSE_CHECK_TEST_UNSET": ""]
        let full = try run(gatehouseBinary, ["check", "--config", gateway.configPath], environment: environment)
        #expect(full.status == 1)
        let text = full.error
        let tenants = gateway.tenantsPath
        for expected in [
            "\(tenants)/acme.yaml:3: 'tokens.access_ttl': '10 minutes' is not a duration",
            "\(tenants)/acme.yaml:5: route path '/auth/x' is under the reserved prefix /auth",
            "\(tenants)/acme.yaml:6: 'upstream': 'not a url' is not a URL (expected http://host:port)",
            "\(tenants)/acme.yaml:7: unknown key 'strip_prefx' in a route (did you mean 'strip_prefix'?)",
            "\(tenants)/wild.yaml:1: 'issuer' is required when the first host is a wildcard ('*.wild.test')",
        ] {
            #expect(text.contains(expected), "missing: \(expected)\n\(text)")
        }
        // acme is rejected, so bravo's claim on acme.test is only reported once acme is fixed.
        try gateway.writeTenant("acme", "hosts: [acme.test]\n")
        try gateway.writeTenant("wild", "hosts: [\"*.wild.test\"]\nissuer: https://wild.test\n")
        let second = try run(gatehouseBinary, ["check", "--config", gateway.configPath], environment: environment)
        #expect(second.status == 1)
        #expect(second.error.contains("\(tenants)/bravo.yaml:1: host 'acme.test' is already claimed by tenant 'acme'"))
    }

    @Test func serveRefusesABadConfigurationAndExits1() throws {
        let gateway = try GatehouseProcess(tenants: ["acme": "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"http://127.0.0.1:1\", require: sometimes}\n"])
        defer { gateway.stop() }
        let result = try run(gatehouseBinary, ["serve", "--config", gateway.configPath])
        #expect(result.status == 1)
        #expect(result.error.contains("acme.yaml:3: 'require' must be public, authenticated or {roles: [...]}, not 'sometimes'"))
    }

    @Test func sigtermDrainsRequestsInFlightAndExits0() async throws {
        let slow = try await ScriptedUpstream.start(.delayed(.milliseconds(800)))
        defer { slow.channel.close(promise: nil) }
        let gateway = try GatehouseProcess(tenants: [
            "acme": "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"http://127.0.0.1:\(slow.port)\", require: public}\n"
        ])
        defer { gateway.stop() }
        try gateway.start()
        let connection = try RawConnection(port: gateway.port)
        try connection.send("GET /slow HTTP/1.1\r\nHost: acme.test\r\n\r\n")
        try await Task.sleep(for: .milliseconds(200))
        gateway.signal(SIGTERM)
        let response = try connection.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "delayed")
        #expect(gateway.waitForExit(timeout: 10) == 0)
        #expect(throws: RawConnection.Closed.self, "no longer accepting") { _ = try RawConnection(port: gateway.port) }
    }

    @Test func sigtermWith200HTTP2StreamsInFlightFinishesThemAndExits0() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-drain-h2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (certificate, key) = try makeSelfSignedCertificate(for: "acme.test", in: folder)
        let slow = try await ScriptedUpstream.start(.delayed(.milliseconds(800)))
        defer { slow.channel.close(promise: nil) }
        let gateway = try GatehouseProcess(
            gateway: "tls:\n  certificate: \(certificate)\n  private_key: \(key)\n",
            tenants: ["acme": "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"http://127.0.0.1:\(slow.port)\", require: public}\n"])
        defer { gateway.stop() }
        try gateway.start()
        // Two connections of 100 streams each (the concurrency limit); SIGTERM once they are all open. The probe then
        // keeps its connections open, as a browser would: the drain must close them, not wait for the client.
        let report = try await HTTP2ProbeReport.run(
            port: gateway.port,
            ["--connections", "2", "--streams", "100", "--path", "/slow", "--sigterm", String(gateway.pid), "--sigterm-delay", "0.3",
             "--linger", "20"])
        #expect(report.statuses == ["200": 200], "every stream in flight finishes: \(report)")
        #expect(report.unanswered == 0 && report.reset_by_server.isEmpty, "\(report)")
        // One GOAWAY per connection, without an error, naming the last stream the client opened (100 client streams:
        // 1, 3, ..., 199): nothing it sent is refused.
        #expect(report.goaway.count == 2 && report.goaway.allSatisfy { $0.error == "NO_ERROR" && $0.last_stream_id == 199 }, "\(report)")
        #expect(report.closed_by_server == 2, "the drain closes both connections once their streams are done: \(report)")
        #expect((report.closed_after_linger_s ?? 99) < 5, "\(report)")
        #expect(gateway.waitForExit(timeout: 10) == 0)
    }

    @Test func sighupReloadsTenants() async throws {
        let echo = try await EchoServer.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        defer { echo.close(promise: nil) }
        let upstream = "http://127.0.0.1:\(echo.localAddress!.port!)"
        // No folder polling: only the signal can make the change take effect.
        let gateway = try GatehouseProcess(
            gateway: "watch_tenants: false\n",
            tenants: ["acme": "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"\(upstream)\", require: public}\n"])
        defer { gateway.stop() }
        try gateway.start()
        #expect(try request(port: gateway.port, "/x").status == 200)

        try gateway.writeTenant("acme", "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"\(upstream)\"}\n")
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try request(port: gateway.port, "/x").status == 200, "nothing reloads without the signal")
        gateway.signal(SIGHUP)
        #expect(await eventually { (try? request(port: gateway.port, "/x").status) == 401 })

        // A bad edit keeps the previous version and says why.
        try gateway.writeTenant("acme", "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"\(upstream)\", require: nobody}\n")
        gateway.signal(SIGHUP)
        #expect(await eventually { gateway.readLog().contains("acme.yaml:3: 'require' must be public, authenticated or {roles: [...]}, not 'nobody'") })
        #expect(try request(port: gateway.port, "/x").status == 401)
    }

    @Test func folderChangesReloadTenantsWithoutASignal() async throws {
        let echo = try await EchoServer.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        defer { echo.close(promise: nil) }
        let upstream = "http://127.0.0.1:\(echo.localAddress!.port!)"
        let gateway = try GatehouseProcess(
            tenants: ["acme": "hosts: [acme.test]\nroutes:\n  - {path: /, upstream: \"\(upstream)\", require: public}\n"])
        defer { gateway.stop() }
        try gateway.start()
        #expect(try request(port: gateway.port, "/", host: "bravo.test").status == 404)

        try gateway.writeTenant("bravo", "hosts: [bravo.test]\nroutes:\n  - {path: /, upstream: \"\(upstream)\", require: public}\n")
        #expect(await eventually { (try? request(port: gateway.port, "/", host: "bravo.test").status) == 200 })

        try gateway.writeTenant("bravo", "hosts: [bravo.test]\nroutes:\n  - {path: /, upstream: \"\(upstream)\", require: nobody}\n")
        #expect(await eventually { gateway.readLog().contains("bravo.yaml:3: 'require' must be public, authenticated or {roles: [...]}, not 'nobody'") })
        #expect(try request(port: gateway.port, "/", host: "bravo.test").status == 200, "the previous version keeps serving")
    }

    @Test func streamsAGibibyteEachWayInBoundedMemory() async throws {
        let gibibyte = 1 << 30
        let echo = try await EchoServer.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        let download = try await ScriptedUpstream.start(.download(bytes: gibibyte))
        defer {
            echo.close(promise: nil)
            download.channel.close(promise: nil)
        }
        let gateway = try GatehouseProcess(
            gateway: "limits:\n  max_body_bytes: 2GiB\n",
            tenants: [
                "acme": """
                hosts: [acme.test]
                routes:
                  - {path: /upload, upstream: "http://127.0.0.1:\(echo.localAddress!.port!)", require: public}
                  - {path: /download, upstream: "http://127.0.0.1:\(download.port)", require: public}
                """
            ])
        defer { gateway.stop() }
        try gateway.start()

        let upload = try RawConnection(port: gateway.port, receiveTimeout: 120)
        try upload.send("POST /upload HTTP/1.1\r\nHost: acme.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = [UInt8]("100000\r\n".utf8) + [UInt8](repeating: 0, count: 1 << 20) + [13, 10]
        for _ in 0..<1024 { try upload.send(chunk) }
        try upload.send("0\r\n\r\n")
        let uploaded = try upload.readResponse()
        #expect(uploaded.json["body_length"] as? Int == gibibyte)
        // sha256 of 1 GiB of zero bytes.
        #expect(uploaded.json["body_sha256"] as? String == "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14")

        let downloading = try RawConnection(port: gateway.port, receiveTimeout: 120)
        try downloading.send("GET /download HTTP/1.1\r\nHost: acme.test\r\n\r\n")
        #expect(downloading.discard(gibibyte + 64) >= gibibyte)

        let peak = gateway.peakResidentBytes()
        #expect(peak > 0 && peak < 100 * 1024 * 1024, "peak RSS \(peak / 1024 / 1024) MiB")
    }
}

/// Polls `condition` for up to `seconds`.
func eventually(seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return condition()
}
