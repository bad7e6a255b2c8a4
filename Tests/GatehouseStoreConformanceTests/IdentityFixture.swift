import Foundation
import GatehouseConfiguration
import GatehousePostgresStore
import GatehouseSQLiteStore
import GatehouseTestSupport
import Logging
import Testing
@testable import GatehouseIdentity

/// The stores every conformance test runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// An identity service over a real store, opened from real configuration files: a SQLite file in a temporary
/// folder, or a fresh database on the tests' private PostgreSQL cluster.
struct IdentityFixture: Sendable {
    let root: URL
    let kind: StoreKind
    let identity: IdentityService
    let tenant: TenantConfiguration
    let configuration: GatewayConfiguration
    /// The PostgreSQL store's background work (its pool and listening connection), while the fixture is open.
    private let service: Task<Void, Never>?

    static let masterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

    /// Cheap argon2 parameters keep the tests fast; the default (OWASP) ones are measured in the benchmark.
    /// `gatewayExtra` adds lines to `gatehouse.yaml` (an `email:` transport), `tenantExtra` to the tenant file.
    static func make(_ kind: StoreKind, gatewayExtra: String = "", tenantExtra: String = "") async throws -> IdentityFixture {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-identity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("config"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
        var storeLine = ""
        if kind == .postgres {
            let server = try PostgresTestServer.shared()
            storeLine = "store: \(server.url(database: try server.createDatabase()))\nmaster_key: \(masterKey)\n"
        }
        try ("""
            listen: 127.0.0.1:8080
            tenants: ../tenants
            password_hashing: {memory: 1MiB, iterations: 1}
            audit_log: ../audit.log

            """ + storeLine + gatewayExtra).write(to: root.appendingPathComponent("config/gatehouse.yaml"), atomically: true, encoding: .utf8)
        try ("hosts: [acme.test]\nsignup: {enabled: true}\nroutes: [{path: /, upstream: \"http://127.0.0.1:1\"}]\n" + tenantExtra)
            .write(to: root.appendingPathComponent("tenants/acme.yaml"), atomically: true, encoding: .utf8)
        let loaded = try ConfigurationLoader.load(configPath: root.appendingPathComponent("config/gatehouse.yaml").path, environment: [:]).get()
        return try await open(loaded, root: root, kind: kind)
    }

    /// The audit-log lines written so far, parsed.
    func auditLines() -> [[String: Any]] {
        JSONLines.read(root.appendingPathComponent("audit.log").path)
    }

    /// Another process on the same store (a second replica, or the command line).
    func replica() async throws -> IdentityFixture {
        let loaded = try ConfigurationLoader.load(configPath: root.appendingPathComponent("config/gatehouse.yaml").path, environment: [:]).get()
        return try await Self.open(loaded, root: root, kind: kind, ownsFolder: false)
    }

    private let ownsFolder: Bool

    private static func open(_ loaded: LoadedConfiguration, root: URL, kind: StoreKind, ownsFolder: Bool = true) async throws -> IdentityFixture {
        let store: any IdentityStore
        var service: Task<Void, Never>?
        var dataDirectory: String?
        switch loaded.gateway.store {
        case .sqlite(let path):
            store = try SQLiteIdentityStore(path: path)
            dataDirectory = (path as NSString).deletingLastPathComponent
        case .postgres(let url):
            let postgres = try PostgresIdentityStore(url: url, logger: Logger(label: "test.store"))
            service = Task { await PostgresStoreService(store: postgres).run() }
            store = postgres
        }
        try await store.prepare()
        let identity = try IdentityBootstrap.open(loaded.gateway, store: store, dataDirectory: dataDirectory, hashingThreads: 2) { _ in }
        return IdentityFixture(
            root: root, kind: kind, identity: identity, tenant: loaded.tenants.tenants["acme"]!, configuration: loaded.gateway, service: service,
            ownsFolder: ownsFolder)
    }

    private init(
        root: URL, kind: StoreKind, identity: IdentityService, tenant: TenantConfiguration, configuration: GatewayConfiguration,
        service: Task<Void, Never>?, ownsFolder: Bool
    ) {
        self.root = root
        self.kind = kind
        self.identity = identity
        self.tenant = tenant
        self.configuration = configuration
        self.service = service
        self.ownsFolder = ownsFolder
    }

    func close() async {
        try? await identity.shutdown()
        service?.cancel()
        await service?.value
        if ownsFolder { try? FileManager.default.removeItem(at: root) }
    }
}
