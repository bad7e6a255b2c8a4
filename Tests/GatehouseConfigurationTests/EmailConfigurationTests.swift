import Foundation
import GatehouseMail
import Testing

@testable import GatehouseConfiguration

@Suite struct EmailConfigurationTests {
    static let base = "listen: 127.0.0.1:8080\nadmin_listen: 127.0.0.1:9090\ntenants: ../tenants\n"
    static let smtp = base + "email:\n  smtp: smtp://mailer:${SMTP_PASSWORD}@127.0.0.1:2525\n  from: \"Gatehouse <no-reply@example.com>\"\n"

    @Test func withoutEmailEveryFeatureIsOff() throws {
        let fixture = try ConfigurationFixture(tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        let loaded = try fixture.load().get()
        #expect(loaded.gateway.email == nil)
        let tenant = try #require(loaded.tenants.tenants["acme"])
        #expect(!tenant.email.passwordResetEnabled && tenant.email.verification == .off && !tenant.email.sendsVerification)
    }

    @Test func anSMTPTransportIsParsedAndItsPasswordNeverPrinted() throws {
        let fixture = try ConfigurationFixture(gateway: Self.smtp, tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        let loaded = try fixture.load(environment: ["SMTP_PASSWORD": "s3cr%2Ft"]).get()
        let email = try #require(loaded.gateway.email)
        guard case .smtp(let url) = email.transport else { Issue.record("not smtp"); return }
        #expect(url.host == "127.0.0.1" && url.port == 2525 && url.security == .startTLSWhenOffered)
        #expect(url.username == "mailer" && url.password == "s3cr/t")
        #expect(url.description == "smtp://mailer:***@127.0.0.1:2525")
        #expect(email.from == "Gatehouse <no-reply@example.com>")
        // With a transport, password reset is on by default; verification stays off until a tenant asks for it.
        let tenant = try #require(loaded.tenants.tenants["acme"])
        #expect(tenant.email.passwordResetEnabled && tenant.email.verification == .off && tenant.email.hasTransport)
    }

    @Test func implicitTLSRequiredSTARTTLSAndAPrivateCA() throws {
        let directory = FileManager.default.temporaryDirectory.path
        let ca = directory + "/gatehouse-ca-\(UUID().uuidString).pem"
        try "-----BEGIN CERTIFICATE-----\n".write(toFile: ca, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: ca) }
        let implicit = try SMTPURL.parse("smtps://mail.example.com", relativeTo: directory).get()
        #expect(implicit.security == .implicitTLS && implicit.port == 465 && implicit.username == nil)
        let required = try SMTPURL.parse("smtp://u:p@mail.example.com?starttls=required&ca=\(ca)", relativeTo: directory).get()
        #expect(required.security == .startTLSRequired && required.port == 587 && required.certificateAuthorityPath == ca)
    }

    @Test func aTenantSetsItsSenderVerificationAndCodeLifetime() throws {
        let tenant = minimalTenant + """

            email:
              from: "Acme <no-reply@acme.test>"
              verification: required
              code_ttl: 30m
            password_reset: {enabled: false}
            """
        let fixture = try ConfigurationFixture(gateway: Self.base + "email:\n  webhook: http://127.0.0.1:8025/send\n  from: no-reply@example.com\n", tenants: ["acme": tenant])
        defer { fixture.remove() }
        let loaded = try fixture.load().get()
        #expect(loaded.gateway.email?.transport == .webhook("http://127.0.0.1:8025/send"))
        let acme = try #require(loaded.tenants.tenants["acme"])
        #expect(acme.email.from == "Acme <no-reply@acme.test>" && acme.email.verification == .required && acme.email.codeTTL == .seconds(1800))
        #expect(!acme.email.passwordResetEnabled && acme.email.sendsVerification)
    }

    @Test(arguments: [
        ("email:\n  from: a@b.test", "gatehouse.yaml:5: 'email' needs smtp: smtp://host:587 (or webhook: http://...) to say how mail leaves"),
        ("email:\n  smtp: smtp://127.0.0.1", "gatehouse.yaml:5: 'email' needs from: \"Name <no-reply@example.com>\", the sender of account e-mail"),
        ("email:\n  smtp: smtp://127.0.0.1\n  webhook: http://127.0.0.1/x\n  from: a@b.test", "gatehouse.yaml:6: 'email' takes smtp or webhook, not both"),
        ("email:\n  smtp: http://127.0.0.1\n  from: a@b.test", "gatehouse.yaml:5: 'email.smtp': must start with smtp:// or smtps://"),
        ("email:\n  smtp: smtp://u:hunter2@127.0.0.1:99999\n  from: a@b.test", "gatehouse.yaml:5: 'email.smtp': has a port outside 1-65535"),
        ("email:\n  smtp: smtp://:hunter2@127.0.0.1\n  from: a@b.test", "gatehouse.yaml:5: 'email.smtp': has a password without a user name"),
        ("email:\n  smtp: smtp://127.0.0.1?starttls=maybe\n  from: a@b.test", "gatehouse.yaml:5: 'email.smtp': starttls must be 'required', not 'maybe'"),
        ("email:\n  smtp: smtps://127.0.0.1?starttls=required\n  from: a@b.test",
            "gatehouse.yaml:5: 'email.smtp': starttls=required is for smtp://; smtps:// is TLS from the first byte"),
        ("email:\n  smtp: smtp://127.0.0.1?ca=../missing.pem\n  from: a@b.test", "gatehouse.yaml:5: 'email.smtp': ca: cannot read {ROOT}/missing.pem"),
        ("email:\n  smtp: smtp://127.0.0.1?tls=1\n  from: a@b.test", "gatehouse.yaml:5: 'email.smtp': has an unknown parameter 'tls' (known: starttls=required, ca=path)"),
        ("email:\n  webhook: ftp://127.0.0.1/x\n  from: a@b.test", "gatehouse.yaml:5: 'email.webhook' must be an http:// or https:// URL"),
        ("email:\n  smtp: smtp://127.0.0.1\n  from: \"Evil\\r\\nBcc: x@y.test <a@b.test>\"",
            "gatehouse.yaml:6: 'email.from': a display name must not contain control characters (write \"Name <no-reply@example.com>\")"),
        ("email:\n  smtp: smtp://127.0.0.1\n  from: not an address", "gatehouse.yaml:6: 'email.from': 'not an address' is not an e-mail address (write \"Name <no-reply@example.com>\")"),
        ("email:\n  smtp: smtp://127.0.0.1\n  from: a@b.test\n  form: typo", "gatehouse.yaml:7: unknown key 'form' in email"),
    ])
    func aBadProcessSettingIsReportedWithItsLine(_ lines: String, _ expected: String) throws {
        let fixture = try ConfigurationFixture(gateway: Self.base + lines + "\n", tenants: ["acme": minimalTenant])
        defer { fixture.remove() }
        let problems = fixture.problems()
        #expect(problems == [expected.replacingOccurrences(of: "{ROOT}", with: fixture.root.path)])
        #expect(!problems.joined().contains("hunter2"))
    }

    @Test(arguments: [
        (true, "email:\n  verification: sometimes", "acme.yaml:6: 'email.verification' must be off, optional or required, not 'sometimes'"),
        (true, "email:\n  code_ttl: 10s", "acme.yaml:6: 'email.code_ttl' must be more than 1m"),
        (true, "email:\n  code_ttl: 30d", "acme.yaml:6: 'email.code_ttl' must be at most 24h: a reset link is a password"),
        (true, "email:\n  from: a b@c.test", "acme.yaml:6: 'email.from': 'a b@c.test' is not an e-mail address (write \"Name <no-reply@example.com>\")"),
        (true, "password_reset: {enabled: maybe}", "acme.yaml:5: 'password_reset.enabled' must be true or false, not 'maybe'"),
        (true, "password_reset: {enable: true}", "acme.yaml:5: unknown key 'enable' in password_reset (did you mean 'enabled'?)"),
        (false, "email:\n  verification: required",
            "acme.yaml:6: 'email' needs the process's e-mail transport: add email: {smtp: ..., from: ...} to gatehouse.yaml"),
        (false, "password_reset: {enabled: true}",
            "acme.yaml:5: 'password_reset.enabled' needs the process's e-mail transport: add email: {smtp: ..., from: ...} to gatehouse.yaml"),
    ])
    func aBadTenantSettingIsReportedWithItsLine(_ withTransport: Bool, _ lines: String, _ expected: String) throws {
        let fixture = try ConfigurationFixture(gateway: withTransport ? Self.smtp : Self.base, tenants: ["acme": minimalTenant + "\n" + lines + "\n"])
        defer { fixture.remove() }
        #expect(fixture.problems(environment: ["SMTP_PASSWORD": "x"]) == [expected])
    }
}
