import GatehouseTestSupport
import Foundation
import GatehouseConfiguration
import GatehouseEcho
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import GatehouseServer

/// A gateway running in-process on loopback, with its config written to a temporary folder, in front of a
/// real echo upstream and the scripted upstreams a test needs.
final class TestGateway {
    let root: URL
    let server: GatewayServer
    let echo: Channel
    var upstreams: [ScriptedUpstream]
    let accessLog: NIOLockedValueBox<[UInt8]>
    var port: Int { server.publicAddress!.port! }
    var adminPort: Int { server.adminAddress!.port! }
    var echoPort: Int { echo.localAddress!.port! }
    var tenantsPath: String { root.appendingPathComponent("tenants").path }

    /// `tenants` texts may use `{{ECHO}}`, and `{{NAME}}` for each scripted upstream in `scripted`.
    static func start(
        gatewayExtra: String = "", tenants: [String: String], scripted: [String: UpstreamBehaviour] = [:],
        replacements extra: [String: String] = [:]
    ) async throws -> TestGateway {
        let group = MultiThreadedEventLoopGroup.singleton
        let echo = try await EchoServer.bind(host: "127.0.0.1", port: 0, group: group)
        var replacements = ["{{ECHO}}": "http://127.0.0.1:\(echo.localAddress!.port!)"].merging(extra) { $1 }
        var upstreams: [ScriptedUpstream] = []
        for (name, behaviour) in scripted {
            let upstream = try await ScriptedUpstream.start(behaviour)
            upstreams.append(upstream)
            replacements["{{\(name)}}"] = "http://127.0.0.1:\(upstream.port)"
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("config"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
        // Audit lines go to a file of the test's own (not the test output), unless the test says otherwise.
        let audit = gatewayExtra.contains("audit_log:") ? "" : "audit_log: ../audit.log\n"
        let gateway = "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ntenants: ../tenants\n" + audit + gatewayExtra
        try gateway.write(to: root.appendingPathComponent("config/gatehouse.yaml"), atomically: true, encoding: .utf8)
        for (id, text) in tenants {
            var text = text
            for (key, value) in replacements { text = text.replacingOccurrences(of: key, with: value) }
            try text.write(to: root.appendingPathComponent("tenants/\(id).yaml"), atomically: true, encoding: .utf8)
        }
        let loaded = try ConfigurationLoader.load(configPath: root.appendingPathComponent("config/gatehouse.yaml").path, environment: [:]).get()
        let accessLog = NIOLockedValueBox<[UInt8]>([])
        let server = try GatewayServer(
            configuration: loaded, environment: [:], group: group, logger: Logger(label: "test"),
            accessLogOutput: { bytes in accessLog.withLockedValue { $0 += bytes } })
        try await server.start()
        // What GatewayService runs next to the listeners.
        let synchronizer = server.synchronizer()
        let sync = Task {
            _ = try? await synchronizer.run()
        }
        let mail = Task {
            _ = try? await server.accountMail?.run()
        }
        return TestGateway(root: root, server: server, echo: echo, upstreams: upstreams, accessLog: accessLog, sync: sync, mail: mail)
    }

    /// Runs `body` against a started gateway and always stops it afterwards.
    static func with(
        gatewayExtra: String = "", tenants: [String: String] = ["acme": acmeTenant], scripted: [String: UpstreamBehaviour] = acmeUpstreams,
        replacements: [String: String] = [:], _ body: (TestGateway) async throws -> Void
    ) async throws {
        let gateway = try await start(gatewayExtra: gatewayExtra, tenants: tenants, scripted: scripted, replacements: replacements)
        do {
            try await body(gateway)
        } catch {
            await gateway.stop()
            throw error
        }
        await gateway.stop()
    }

    private let sync: Task<Void, Never>
    /// The account e-mail service, when the configuration has a transport.
    private let mail: Task<Void, Never>

    private init(
        root: URL, server: GatewayServer, echo: Channel, upstreams: [ScriptedUpstream], accessLog: NIOLockedValueBox<[UInt8]>, sync: Task<Void, Never>,
        mail: Task<Void, Never>
    ) {
        self.sync = sync
        self.mail = mail
        self.root = root
        self.server = server
        self.echo = echo
        self.upstreams = upstreams
        self.accessLog = accessLog
    }

    func writeTenant(_ id: String, _ text: String) throws {
        let text = text.replacingOccurrences(of: "{{ECHO}}", with: "http://127.0.0.1:\(echoPort)")
        try text.write(toFile: tenantsPath + "/\(id).yaml", atomically: true, encoding: .utf8)
    }

    /// Access-log lines written so far.
    func accessLogLines() -> [String] {
        server.flushAccessLog()
        return String(decoding: accessLog.withLockedValue { $0 }, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The audit-log lines written so far, parsed.
    func auditLines() -> [[String: Any]] {
        JSONLines.read(root.appendingPathComponent("audit.log").path)
    }

    /// Stops the account e-mail service alone, as a shutdown does.
    func stopMail() async {
        mail.cancel()
        await mail.value
    }

    func stop(gracePeriod: TimeAmount = .seconds(2)) async {
        sync.cancel()
        mail.cancel()
        await sync.value
        await mail.value
        await server.shutdown(gracePeriod: gracePeriod)
        try? await echo.close()
        for upstream in upstreams { await upstream.stop() }
        try? FileManager.default.removeItem(at: root)
    }
}
