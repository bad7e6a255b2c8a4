import Testing
@testable import GatehouseConfiguration

@Suite struct PostgresURLTests {
    @Test func aFullURLParses() throws {
        let url = try PostgresURL.parse(
            "postgres://gate%40house:p%40ss%3Aw0rd@db.internal:6432/identity?sslmode=verify-full&sslrootcert=certs/ca.pem", relativeTo: "/etc/gatehouse"
        ).get()
        #expect(url.username == "gate@house")
        #expect(url.password == "p@ss:w0rd")
        #expect(url.host == "db.internal")
        #expect(url.port == 6432)
        #expect(url.database == "identity")
        #expect(url.sslMode == .verifyFull)
        #expect(url.sslRootCertificatePath == "/etc/gatehouse/certs/ca.pem")
        #expect(url.description == "postgres://gate%40house:***@db.internal:6432/identity?sslmode=verify-full&sslrootcert=/etc/gatehouse/certs/ca.pem")
        let defaults = try PostgresURL.parse("postgresql://u@[::1]/db", relativeTo: "/").get()
        #expect(defaults.port == 5432 && defaults.host == "::1" && defaults.sslMode == .disable && defaults.password == nil)
        #expect(defaults.description == "postgres://u@[::1]:5432/db?sslmode=disable")
    }

    /// Each bad URL is refused with a reason, and no reason repeats the password (even one with an unescaped `?`
    /// or `@` that spills into other parts).
    @Test(arguments: [
        ("postgres://u:secret1@host/", "names no database"),
        ("postgres://u:secret1@host", "names no database"),
        ("postgres://:secret1@host/db", "names no user"),
        ("postgres://u:secret1@host:0/db", "port"),
        ("postgres://u:secret1@host:99999/db", "port"),
        ("postgres://u:secret1@host:54x2/db", "port"),
        ("postgres://u:secret1@/db", "host"),
        ("postgres://u:secret1@host/db?sslmode=prefer", "sslmode must be one of"),
        ("postgres://u:secret1@host/db?sslmode=", "without a value"),
        ("postgres://u:secret1@host/db?application_name=x", "unknown query parameter"),
        ("postgres://u:sec?ret1@host/db", "names no database"),
        ("postgres://u:secret1@host/db?sslrootcert=ca.pem", "sslrootcert needs sslmode"),
        ("postgres://u:%zzsecret1@host/db", "%-escape"),
        ("postgres://u:secret1@host/db#frag", "fragment"),
        ("mysql://u:secret1@host/db", "postgres://"),
    ])
    func badURLsAreRefusedWithoutThePassword(text: String, reason: String) {
        switch PostgresURL.parse(text, relativeTo: "/") {
        case .success(let url): Issue.record("accepted \(url)")
        case .failure(let error):
            #expect(error.description.contains(reason), "\(error)")
            #expect(!error.description.contains("secret1") && !error.description.contains("ret1"), "\(error)")
        }
    }

    @Test func aPostgresStoreNeedsAMasterKey() throws {
        let fixture = try ConfigurationFixture(gateway: "store: postgres://u:pw@127.0.0.1:5432/db\n", tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        guard case .failure(let error) = fixture.load() else {
            Issue.record("accepted a PostgreSQL store without master_key")
            return
        }
        #expect(error.description.contains("gatehouse.yaml:") && error.description.contains("'master_key' is required"), "\(error)")
        #expect(!error.description.contains(":pw@"))
        let bad = try ConfigurationFixture(gateway: "store: postgres://u:pw@127.0.0.1:99999/db\nmaster_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", tenants: ["acme": minimalTenant])
        defer { bad.remove() }
        guard case .failure(let portError) = bad.load() else {
            Issue.record("accepted port 99999")
            return
        }
        #expect(portError.description.contains("port") && !portError.description.contains("pw"), "\(portError)")
    }
}
