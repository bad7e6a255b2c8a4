import Foundation
import GatehouseConfiguration
@testable import GatehouseIdentity

/// A real SQLite store in a temporary folder, opened from real configuration files.
struct IdentityFixture {
    let root: URL
    let identity: IdentityService
    let tenant: TenantConfiguration

    /// Cheap argon2 parameters keep the tests fast; the default (OWASP) ones are measured in the benchmark.
    static func make(tenantExtra: String = "") throws -> IdentityFixture {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-identity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("config"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
        try """
            listen: 127.0.0.1:8080
            tenants: ../tenants
            password_hashing: {memory: 1MiB, iterations: 1}
            """.write(to: root.appendingPathComponent("config/gatehouse.yaml"), atomically: true, encoding: .utf8)
        try ("hosts: [acme.test]\nsignup: {enabled: true}\nroutes: [{path: /, upstream: \"http://127.0.0.1:1\"}]\n" + tenantExtra)
            .write(to: root.appendingPathComponent("tenants/acme.yaml"), atomically: true, encoding: .utf8)
        let loaded = try ConfigurationLoader.load(configPath: root.appendingPathComponent("config/gatehouse.yaml").path, environment: [:]).get()
        let identity = try IdentityBootstrap.open(loaded.gateway, hashingThreads: 2) { _ in }
        return IdentityFixture(root: root, identity: identity, tenant: loaded.tenants.tenants["acme"]!)
    }

    func close() async {
        try? await identity.shutdown()
        try? FileManager.default.removeItem(at: root)
    }
}
