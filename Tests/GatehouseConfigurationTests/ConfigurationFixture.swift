import Foundation
@testable import GatehouseConfiguration

/// A throw-away config folder: `config/gatehouse.yaml` plus `tenants/*.yaml`.
struct ConfigurationFixture {
    let root: URL
    var configPath: String { root.appendingPathComponent("config/gatehouse.yaml").path }
    var tenantsPath: String { root.appendingPathComponent("tenants").path }

    init(gateway: String = "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\ntenants: ../tenants\n", tenants: [String: String]) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("config"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
        try gateway.write(toFile: configPath, atomically: true, encoding: .utf8)
        for (id, text) in tenants { try write(tenant: id, text) }
    }

    func write(tenant id: String, _ text: String) throws {
        try text.write(toFile: tenantsPath + "/\(id).yaml", atomically: true, encoding: .utf8)
    }

    func load(environment: [String: String] = [:]) -> Result<LoadedConfiguration, ConfigurationError> {
        ConfigurationLoader.load(configPath: configPath, environment: environment)
    }

    /// The diagnostics of a load that must fail, as `file-name:line: message` with the folder stripped.
    func problems(environment: [String: String] = [:]) -> [String] {
        switch load(environment: environment) {
        case .success: return []
        case .failure(let error):
            return error.diagnostics.map { "\(URL(fileURLWithPath: $0.file).lastPathComponent):\($0.line): \($0.message)" }
        }
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

let minimalTenant = """
    hosts: [acme.test]
    routes:
      - path: /api
        upstream: http://127.0.0.1:9001
    """
