import Foundation
import Testing

@testable import GatehouseConfiguration

@Suite struct AuditConfigurationTests {
    static let base = "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\ntenants: ../tenants\n"

    @Test func theDefaultsAreStandardOutputAndNinetyDays() throws {
        let fixture = try ConfigurationFixture(tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        let gateway = try fixture.load().get().gateway
        #expect(gateway.auditLog == .standardOutput)
        #expect(gateway.auditRetention == .seconds(90 * 86_400))
    }

    @Test func aFileIsResolvedAgainstTheConfigurationFolderAndOffIsOff() throws {
        let file = try ConfigurationFixture(gateway: Self.base + "audit_log: ../audit.jsonl\naudit_retention: 30d\n", tenants: ["acme": minimalTenant])
        defer { file.remove() }
        let gateway = try file.load().get().gateway
        #expect(gateway.auditLog == .file(file.root.appendingPathComponent("audit.jsonl").path))
        #expect(gateway.auditRetention == .seconds(30 * 86_400))
        let off = try ConfigurationFixture(gateway: Self.base + "audit_log: off\n", tenants: ["acme": minimalTenant])
        defer { off.remove() }
        #expect(try off.load().get().gateway.auditLog == .off)
    }

    @Test(arguments: [
        ("audit_log: ../missing/audit.log", "gatehouse.yaml:4: 'audit_log': the folder {ROOT}/missing does not exist"),
        ("audit_log: ../tenants/acme.yaml/audit.log", "gatehouse.yaml:4: 'audit_log': the folder {ROOT}/tenants/acme.yaml does not exist"),
        ("audit_log: ../tenants", "gatehouse.yaml:4: 'audit_log': {ROOT}/tenants is a folder; name a file in it"),
        ("audit_log: \"\"", "gatehouse.yaml:4: 'audit_log' must be stdout, off, or a file path"),
        ("audit_log: false", "gatehouse.yaml:4: 'audit_log': write off, stdout or a file path, not false"),
        ("audit_log: [stdout]", "gatehouse.yaml:4: 'audit_log' must be a single value, not a list or mapping"),
        ("audit_retention: 0s", "gatehouse.yaml:4: 'audit_retention' must be more than 1h"),
        ("audit_retention: 10m", "gatehouse.yaml:4: 'audit_retention' must be more than 1h"),
        ("audit_retention: forever", "gatehouse.yaml:4: 'audit_retention': 'forever' is not a duration (write e.g. 500ms, 30s, 15m, 12h, 30d)"),
        ("audit_retention: -5d", "gatehouse.yaml:4: 'audit_retention': '-5d' is not a duration (write e.g. 500ms, 30s, 15m, 12h, 30d)"),
    ])
    func aBadAuditSettingIsReportedWithItsLine(_ line: String, _ expected: String) throws {
        let fixture = try ConfigurationFixture(gateway: Self.base + line + "\n", tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        #expect(fixture.problems() == [expected.replacingOccurrences(of: "{ROOT}", with: fixture.root.path)])
    }

    @Test func aFolderThisUserCannotWriteIsReported() throws {
        // Root writes anywhere (serve's open then reports a read-only file system); the check is for everyone else.
        let fixture = try ConfigurationFixture(gateway: Self.base + "audit_log: ../locked/audit.log\n", tenants: ["acme": minimalTenant])
        defer {
            try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: fixture.root.appendingPathComponent("locked").path)
            fixture.remove()
        }
        let locked = fixture.root.appendingPathComponent("locked").path
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o500])
        if getuid() == 0 {
            #expect(fixture.problems().isEmpty, "root may write there")
        } else {
            #expect(fixture.problems() == ["gatehouse.yaml:4: 'audit_log': the folder \(locked) is not writable by this user"])
        }
    }
}
