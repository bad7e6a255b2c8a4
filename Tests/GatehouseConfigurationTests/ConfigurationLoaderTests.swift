import Testing
@testable import GatehouseConfiguration

@Suite struct ConfigurationLoaderTests {
    @Test func bundledExampleLoads() throws {
        // The repository's own example must always be valid.
        let path = #filePath.replacingOccurrences(of: "Tests/GatehouseConfigurationTests/ConfigurationLoaderTests.swift", with: "config/gatehouse.yaml")
        let loaded = try ConfigurationLoader.load(configPath: path, environment: [:]).get()
        let demo = try #require(loaded.tenants.tenants["demo"])
        #expect(demo.issuer == "http://localhost:8080")
        #expect(demo.routes.map(\.path) == ["/api/admin", "/api", "/"])
        #expect(demo.routes[2].requirement == .public)
    }

    @Test func defaultsFollowTheContract() throws {
        let fixture = try ConfigurationFixture(tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        let loaded = try fixture.load().get()
        let acme = try #require(loaded.tenants.tenants["acme"])
        #expect(acme.issuer == "http://acme.test:8080")
        #expect(acme.audience == "acme")
        #expect(acme.tokens.algorithm == .es256)
        #expect(acme.tokens.accessTTL == .seconds(900))
        #expect(acme.routes[0].requirement == .authenticated, "a route without require is authenticated")
        #expect(acme.routes[0].stripPrefix == false)
        #expect(acme.routes[0].forwardAuthorization == false)
        #expect(acme.identityHeaders.map(\.name) == ["X-User-Id", "X-User-Email", "X-User-Name", "X-User-Roles", "X-Tenant-Id"])
        #expect(loaded.gateway.limits.maxBodyBytes == 10_485_760)
        #expect(loaded.gateway.limits.upstreamTimeout == .seconds(30))
    }

    @Test func environmentVariablesAreSubstituted() throws {
        let gateway = """
            listen: ${LISTEN}
            admin_listen: ${ADMIN:-127.0.0.1:9191}
            limits:
              upstream_timeout: ${TIMEOUT:-45s}
            """
        let fixture = try ConfigurationFixture(gateway: gateway, tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        let loaded = try fixture.load(environment: ["LISTEN": "0.0.0.0:8443"]).get()
        #expect(loaded.gateway.listen == ListenAddress(host: "0.0.0.0", port: 8443))
        #expect(loaded.gateway.adminListen.port == 9191)
        #expect(loaded.gateway.limits.upstreamTimeout == .seconds(45))
    }

    @Test func missingEnvironmentVariableIsAnErrorWithItsLine() throws {
        let fixture = try ConfigurationFixture(gateway: "listen: 127.0.0.1:8080\nmaster_key: ${GATEHOUSE_TEST_KEY}\n", tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        #expect(
            fixture.problems() == [
                "gatehouse.yaml:2: 'master_key': environment variable GATEHOUSE_TEST_KEY is not set (write ${GATEHOUSE_TEST_KEY:-default} to make it optional)"
            ])
    }

    @Test func everyBadTenantInputIsReportedWithFileAndLine() throws {
        let tenant = """
            hosts: [acme.test]
            sigup:
              enabled: true
            tokens:
              access_ttl: 15 minutes
            routes:
              - path: /auth/login
                upstream: http://127.0.0.1:9001
              - path: /api
                upstream: ftp://127.0.0.1:9001
              - path: /web
                upstream: http://
            """
        let fixture = try ConfigurationFixture(tenants: ["acme": tenant])
        defer { fixture.remove() }
        let problems = fixture.problems()
        #expect(problems.contains("acme.yaml:2: unknown key 'sigup' in the tenant file (did you mean 'signup'?)"))
        #expect(problems.contains("acme.yaml:5: 'tokens.access_ttl': '15 minutes' is not a duration (write e.g. 500ms, 30s, 15m, 12h, 30d)"))
        #expect(problems.contains("acme.yaml:7: route path '/auth/login' is under the reserved prefix /auth, which the gateway serves itself"))
        #expect(problems.contains("acme.yaml:10: 'upstream': upstream scheme 'ftp' is not supported (use http://host:port)"))
        #expect(problems.contains("acme.yaml:12: 'upstream': upstream URL 'http://' has no valid host[:port]"))
        #expect(problems.count == 5, "\(problems)")
    }

    @Test func aHostClaimedByTwoTenantsIsRejected() throws {
        let fixture = try ConfigurationFixture(tenants: [
            "acme": minimalTenant,
            "bravo": "# bravo\nhosts: [bravo.test, ACME.test]\nroutes: []\n",
        ])
        defer { fixture.remove() }
        #expect(fixture.problems() == ["bravo.yaml:2: host 'acme.test' is already claimed by tenant 'acme'"])
    }

    @Test func aWildcardFirstHostNeedsAnIssuer() throws {
        let fixture = try ConfigurationFixture(tenants: ["acme": "hosts: [\"*.acme.test\"]\n"])
        defer { fixture.remove() }
        #expect(fixture.problems() == ["acme.yaml:1: 'issuer' is required when the first host is a wildcard ('*.acme.test')"])
    }

    @Test func badGatewayValuesAreAllReported() throws {
        let gateway = """
            listen: localhost
            admin_listen: 127.0.0.1:9090
            limts: {}
            trusted_proxies: [10.0.0.0/33, 192.168.0.0/16]
            limits:
              max_body_bytes: ten
              upstream_timeout: 0s
            store: mysql://x
            """
        let fixture = try ConfigurationFixture(gateway: gateway, tenants: [:])
        defer { fixture.remove() }
        #expect(
            fixture.problems() == [
                "gatehouse.yaml:3: unknown key 'limts' in the gateway configuration (did you mean 'limits'?)",
                "gatehouse.yaml:1: 'listen': 'localhost' is not host:port",
                "gatehouse.yaml:8: 'store' must be sqlite:PATH or postgres://user:pass@host:5432/db",
                "gatehouse.yaml:4: 'trusted_proxies': '10.0.0.0/33' is not an IP address or CIDR block",
                "gatehouse.yaml:6: 'limits.max_body_bytes': 'ten' is not a size in bytes (write e.g. 65536, 64KiB, 10MiB)",
                "gatehouse.yaml:7: 'limits.upstream_timeout' must be more than 0ms",
            ])
    }

    @Test func bodyTimeoutAndCaseInsensitiveRoutes() throws {
        let gateway = "listen: 127.0.0.1:8080\nlimits:\n  body_timeout: 5s\n"
        let tenant = """
            hosts: [acme.test]
            routes:
              - {path: /api/admin, upstream: "http://127.0.0.1:1", case_insensitive: true}
              - {path: /api, upstream: "http://127.0.0.1:1"}
            """
        let fixture = try ConfigurationFixture(gateway: gateway, tenants: ["acme": tenant])
        defer { fixture.remove() }
        let loaded = try fixture.load().get()
        #expect(loaded.gateway.limits.bodyTimeout == .seconds(5))
        let routes = try #require(loaded.tenants.tenants["acme"]).routes
        #expect(routes.map(\.caseInsensitive) == [true, false])

        let badGateway = try ConfigurationFixture(gateway: "listen: 127.0.0.1:8080\nlimits:\n  body_timeout: soon\n", tenants: [:])
        defer { badGateway.remove() }
        #expect(badGateway.problems().contains { $0.hasPrefix("gatehouse.yaml:3: 'limits.body_timeout'") }, "\(badGateway.problems())")
        let badTenant = try ConfigurationFixture(
            tenants: ["acme": "hosts: [acme.test]\nroutes:\n  - {path: /a, upstream: \"http://127.0.0.1:1\", case_insensitive: sometimes}\n"])
        defer { badTenant.remove() }
        #expect(badTenant.problems().contains { $0.hasPrefix("acme.yaml:3: 'case_insensitive'") }, "\(badTenant.problems())")
    }

    @Test func roleNamesFollowOneRule() throws {
        let tenant = "hosts: [acme.test]\nsignup:\n  default_roles: [user, \"has space\"]\nroutes:\n  - {path: /a, upstream: \"http://127.0.0.1:1\", require: {roles: [\"a,b\"]}}\n"
        let fixture = try ConfigurationFixture(tenants: ["acme": tenant])
        defer { fixture.remove() }
        let problems = fixture.problems()
        #expect(problems.contains { $0.hasPrefix("acme.yaml:3: 'signup.default_roles': \"has space\" is not a role name") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("acme.yaml:5: 'require.roles': \"a,b\" is not a role name") }, "\(problems)")
        #expect(RoleName.isValid("billing:read-only_2.0"))
        #expect(!RoleName.isValid("caf\u{e9}"))
    }

    @Test func routeRequirementsParse() throws {
        let tenant = """
            hosts: [acme.test]
            routes:
              - {path: /a, upstream: "http://127.0.0.1:1", require: public}
              - {path: /b/, upstream: "http://127.0.0.1:1", require: {roles: [admin, ops]}, methods: [GET, POST]}
              - {path: /c, upstream: "http://127.0.0.1:1", require: everyone}
              - {path: /a, upstream: "http://127.0.0.1:1"}
              - {path: /d, upstream: "http://127.0.0.1:1", methods: [get]}
            """
        let fixture = try ConfigurationFixture(tenants: ["acme": tenant])
        defer { fixture.remove() }
        #expect(
            fixture.problems() == [
                "acme.yaml:5: 'require' must be public, authenticated or {roles: [...]}, not 'everyone'",
                "acme.yaml:6: route path '/a' is already used by the route on line 3",
                "acme.yaml:7: 'methods': 'get' is not an HTTP method (upper case, e.g. GET, POST)",
            ])
        try fixture.write(tenant: "acme", String(tenant.split(separator: "\n").prefix(4).joined(separator: "\n")))
        let routes = try #require(try fixture.load().get().tenants.tenants["acme"]).routes
        #expect(routes[1].path == "/b")
        #expect(routes[1].requirement == .anyRole(["admin", "ops"]))
        #expect(routes[1].methods == ["GET", "POST"])
    }

    @Test func hs256NeedsASecretAndCannotSignAssertions() throws {
        let tenant = """
            hosts: [acme.test]
            tokens: {algorithm: HS256, secret: "${ACME_SECRET}"}
            routes:
              - {path: /a, upstream: "http://127.0.0.1:1", identity_assertion: true}
            """
        let fixture = try ConfigurationFixture(tenants: ["acme": tenant])
        defer { fixture.remove() }
        let secret = String(repeating: "s", count: 40)
        #expect(
            fixture.problems(environment: ["ACME_SECRET": secret]) == [
                "acme.yaml:4: 'identity_assertion' needs an asymmetric tokens.algorithm (ES256, EdDSA or RS256), not HS256"
            ])
        #expect(!fixture.problems(environment: [:]).isEmpty)
        // The secret never appears in a message.
        #expect(!fixture.problems(environment: ["ACME_SECRET": "short-secret-value"]).joined().contains("short-secret-value"))
    }

    @Test func yamlSyntaxErrorsHaveALine() throws {
        let fixture = try ConfigurationFixture(tenants: ["acme": "hosts: [acme.test\nroutes: []\n"])
        defer { fixture.remove() }
        let problems = fixture.problems()
        #expect(problems.count == 1)
        #expect(problems[0].hasPrefix("acme.yaml:"))
        #expect(problems[0].contains("YAML syntax error"))
    }

    @Test func reloadKeepsThePreviousVersionOfABadFile() throws {
        let fixture = try ConfigurationFixture(tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        let loaded = try fixture.load().get()
        try fixture.write(tenant: "acme", minimalTenant + "\nbogus: 1\n")
        try fixture.write(tenant: "bravo", "hosts: [bravo.test]\n")
        let reload = TenantCatalog.load(gateway: loaded.gateway, environment: [:], previous: loaded.tenants)
        #expect(reload.diagnostics.map(\.message) == ["unknown key 'bogus' in the tenant file"])
        #expect(reload.catalog.tenants["acme"]?.routes.count == 1, "the previous acme is kept")
        #expect(reload.catalog.tenants["bravo"] != nil)
        #expect(reload.changed == ["bravo"])
    }

    @Test func tenThousandTenantsLoadAndResolve() throws {
        let fixture = try ConfigurationFixture(tenants: [:])
        defer { fixture.remove() }
        for index in 0..<10_000 {
            try fixture.write(tenant: "t\(index)", "hosts: [t\(index).test, \"*.t\(index).test\"]\nroutes:\n  - {path: /, upstream: \"http://127.0.0.1:1\", require: public}\n")
        }
        let loaded = try fixture.load().get()
        #expect(loaded.tenants.tenants.count == 10_000)
        #expect(loaded.tenants.tenants["t9999"]?.hosts == [.exact("t9999.test"), .wildcard(suffix: "t9999.test")])
    }
}
