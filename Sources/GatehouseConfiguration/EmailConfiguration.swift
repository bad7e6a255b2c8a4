import Foundation
import GatehouseMail
import Yams

/// The process's `email:` block (§2, §11): how account e-mail leaves, and the default sender.
public struct EmailConfiguration: Sendable, Hashable {
    public enum Transport: Sendable, Hashable {
        case smtp(SMTPURL)
        /// `POST` JSON `{tenant, kind, to, subject, text, html}` to this `http://` or `https://` URL.
        case webhook(String)
    }

    public var transport: Transport
    /// `Name <address>` or a bare address, as written; checked with ``MailAddress/parse(_:)``.
    public var from: String

    static let allowedKeys = ["smtp", "webhook", "from"]

    static func parse(_ node: Node, _ reader: ConfigurationReader, directory: String) -> EmailConfiguration? {
        guard let mapping = reader.mapping(node, context: "email", allowedKeys: allowedKeys) else { return nil }
        var transport: Transport?
        switch (mapping["smtp"], mapping["webhook"]) {
        case (let smtp?, nil):
            if let text = reader.string(smtp, field: "email.smtp", secret: true) {
                switch SMTPURL.parse(text, relativeTo: directory) {
                case .success(let url): transport = .smtp(url)
                case .failure(let error): reader.error(at: smtp, "'email.smtp': \(error)")
                }
            }
        case (nil, let webhook?):
            if let text = reader.string(webhook, field: "email.webhook", secret: true) {
                if let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host?.isEmpty == false {
                    transport = .webhook(text)
                } else {
                    reader.error(at: webhook, "'email.webhook' must be an http:// or https:// URL")
                }
            }
        case (.some, .some):
            reader.error(at: mapping["webhook"], "'email' takes smtp or webhook, not both")
        case (nil, nil):
            reader.error(line: mapping.line, "'email' needs smtp: smtp://host:587 (or webhook: http://...) to say how mail leaves")
        }
        var from: String?
        if let node = mapping["from"], let text = reader.string(node, field: "email.from") {
            from = checkedSender(text, node: node, field: "email.from", reader)
        } else if mapping["from"] == nil {
            reader.error(line: mapping.line, "'email' needs from: \"Name <no-reply@example.com>\", the sender of account e-mail")
        }
        guard let transport, let from else { return nil }
        return EmailConfiguration(transport: transport, from: from)
    }

    /// A sender that a message header can carry as is: a plain ASCII address, a name without control characters.
    static func checkedSender(_ text: String, node: Node, field: String, _ reader: ConfigurationReader) -> String? {
        do {
            _ = try MailAddress.parse(text)
            return text
        } catch {
            reader.error(at: node, "'\(field)': \(error) (write \"Name <no-reply@example.com>\")")
            return nil
        }
    }
}

/// `email.smtp`: `smtp://[user[:password]@]host[:port][?starttls=required][&ca=path]` (STARTTLS when offered, port
/// 587 by default) or `smtps://...` (TLS from the first byte, port 465). The password is kept out of
/// ``description`` and every parse error.
public struct SMTPURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var security: SMTPSecurity
    public var username: String?
    public var password: String?
    /// A PEM file of CAs trusted besides the system's, resolved against the configuration file's folder.
    public var certificateAuthorityPath: String?

    public var description: String {
        let scheme = security == .implicitTLS ? "smtps" : "smtp"
        var text = scheme + "://"
        if let username { text += username + (password == nil ? "" : ":***") + "@" }
        text += (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
        var query: [String] = []
        if security == .startTLSRequired { query.append("starttls=required") }
        if let certificateAuthorityPath { query.append("ca=" + certificateAuthorityPath) }
        return query.isEmpty ? text : text + "?" + query.joined(separator: "&")
    }

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Parses `text`; never repeats the password in an error.
    public static func parse(_ text: String, relativeTo directory: String) -> Result<SMTPURL, ParseError> {
        let implicitTLS: Bool
        if text.lowercased().hasPrefix("smtps://") {
            implicitTLS = true
        } else if text.lowercased().hasPrefix("smtp://") {
            implicitTLS = false
        } else {
            return .failure(ParseError("must start with smtp:// or smtps://"))
        }
        guard let components = URLComponents(string: text) else {
            return .failure(ParseError("is not a URL (percent-encode reserved characters in the user name and password)"))
        }
        guard let host = components.host, !host.isEmpty else { return .failure(ParseError("has no host")) }
        guard components.path.isEmpty || components.path == "/" else { return .failure(ParseError("must not have a path")) }
        let port = components.port ?? (implicitTLS ? 465 : 587)
        guard (1...65535).contains(port) else { return .failure(ParseError("has a port outside 1-65535")) }
        var url = SMTPURL(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: port,
            security: implicitTLS ? .implicitTLS : .startTLSWhenOffered, username: components.user?.removingPercentEncoding,
            password: components.password?.removingPercentEncoding, certificateAuthorityPath: nil)
        if url.username?.isEmpty == true { url.username = nil }
        if url.password != nil, url.username == nil { return .failure(ParseError("has a password without a user name")) }
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("starttls", "required"?):
                guard !implicitTLS else { return .failure(ParseError("starttls=required is for smtp://; smtps:// is TLS from the first byte")) }
                url.security = .startTLSRequired
            case ("starttls", let value):
                return .failure(ParseError("starttls must be 'required', not '\(value ?? "")'"))
            case ("ca", let path?) where !path.isEmpty:
                let resolved = FilePath.resolve(path, against: directory)
                guard FileManager.default.isReadableFile(atPath: resolved) else { return .failure(ParseError("ca: cannot read \(resolved)")) }
                url.certificateAuthorityPath = resolved
            case (let name, _):
                return .failure(ParseError("has an unknown parameter '\(name)' (known: starttls=required, ca=path)"))
            }
        }
        return .success(url)
    }
}

/// A tenant's `email:` and `password_reset:` (§2, §11).
public struct TenantEmailConfiguration: Sendable, Hashable {
    public enum Verification: String, Sendable, Hashable, CaseIterable {
        /// No verification message; addresses are never asked to prove themselves.
        case off
        /// A link and code are sent at sign-up; login works either way.
        case optional
        /// As `optional`, and login is refused with 403 until the address is verified.
        case required
    }

    /// The sender of this tenant's messages; nil: the process's `email.from`.
    public var from: String?
    public var verification = Verification.off
    /// How long a code and its link work.
    public var codeTTL: Duration = .seconds(15 * 60)
    /// `password_reset.enabled`; by default on when the process has an e-mail transport.
    public var passwordResetEnabled = false
    /// Whether the process can send mail at all (``GatewayConfiguration/email``).
    public var hasTransport = false

    public init() {}

    /// Whether sign-up sends a verification message.
    public var sendsVerification: Bool { hasTransport && verification != .off }

    static let allowedKeys = ["from", "verification", "code_ttl"]

    static func parse(email: Node?, passwordReset: Node?, _ reader: ConfigurationReader, gateway: GatewayConfiguration) -> TenantEmailConfiguration {
        var settings = TenantEmailConfiguration()
        settings.hasTransport = gateway.email != nil
        settings.passwordResetEnabled = settings.hasTransport
        let needsTransport = "needs the process's e-mail transport: add email: {smtp: ..., from: ...} to \(URL(fileURLWithPath: gateway.file).lastPathComponent)"
        if let node = email, !ConfigurationReader.isNull(node), let mapping = reader.mapping(node, context: "email", allowedKeys: allowedKeys) {
            if !settings.hasTransport { reader.error(at: node, "'email' \(needsTransport)") }
            if let node = mapping["from"], let text = reader.string(node, field: "email.from") {
                settings.from = EmailConfiguration.checkedSender(text, node: node, field: "email.from", reader)
            }
            if let node = mapping["verification"], let text = reader.string(node, field: "email.verification") {
                if let value = Verification(rawValue: text) {
                    settings.verification = value
                } else {
                    reader.error(at: node, "'email.verification' must be off, optional or required, not '\(text)'")
                }
            }
            if let node = mapping["code_ttl"], let value = reader.duration(node, field: "email.code_ttl", minimum: .seconds(60)) {
                if value > .seconds(86_400) {
                    reader.error(at: node, "'email.code_ttl' must be at most 24h: a reset link is a password")
                } else {
                    settings.codeTTL = value
                }
            }
        }
        if let node = passwordReset, let mapping = reader.mapping(node, context: "password_reset", allowedKeys: ["enabled"]),
            let enabledNode = mapping["enabled"], let enabled = reader.bool(enabledNode, field: "password_reset.enabled")
        {
            if enabled && !settings.hasTransport { reader.error(at: enabledNode, "'password_reset.enabled' \(needsTransport)") }
            settings.passwordResetEnabled = enabled && settings.hasTransport
        }
        return settings
    }
}
