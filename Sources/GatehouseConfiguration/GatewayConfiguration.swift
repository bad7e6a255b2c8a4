import Foundation
import Yams

/// The process configuration, `config/gatehouse.yaml` (§2). Paths are resolved against the file's folder.
public struct GatewayConfiguration: Sendable {
    /// Where users' data lives.
    public enum StoreLocation: Sendable, Hashable {
        case sqlite(path: String)
        case postgres(PostgresURL)
    }

    /// Where audit lines go (`audit_log`); the events are in the store either way.
    public enum AuditLogDestination: Sendable, Hashable {
        case standardOutput
        /// Resolved against the configuration file's folder.
        case file(String)
        case off
    }

    public struct TLS: Sendable, Hashable {
        public var certificatePath: String
        public var privateKeyPath: String
    }

    public struct Limits: Sendable, Hashable {
        /// Proxied request bodies; larger gets 413.
        public var maxBodyBytes = 10 * 1024 * 1024
        /// Bodies of `/auth/*` requests; larger gets 413.
        public var authBodyBytes = 64 * 1024
        public var upstreamConnectTimeout: Duration = .seconds(5)
        /// Time allowed for the upstream's response head once the request is sent; then 504.
        public var upstreamTimeout: Duration = .seconds(30)
        /// The whole request head (request line and headers); larger gets 431. Gatehouse extension.
        public var maxHeaderBytes = 16 * 1024
        /// A request head must arrive within this time of its first byte; then 408. Gatehouse extension.
        public var requestHeadTimeout: Duration = .seconds(10)
        /// An idle keep-alive connection (client or upstream) is closed after this long. Gatehouse extension.
        public var idleTimeout: Duration = .seconds(60)
        /// A request body that sends nothing for this long ends its exchange (408 when no response has started) and
        /// its upstream connection is closed (§2, §6.9): a slow body must not hold an upstream connection forever.
        public var bodyTimeout: Duration = .seconds(30)

        public init() {}
    }

    /// argon2id parameters for new password hashes (`password_hashing:`). Gatehouse extension; the default is OWASP's.
    public struct PasswordHashing: Sendable, Hashable {
        public var memoryBytes = 19 * 1024 * 1024
        public var iterations = 2
        public var parallelism = 1

        public init() {}
    }

    /// The file this was read from.
    public var file: String
    public var listen = ListenAddress(host: "127.0.0.1", port: 8080)
    public var adminListen = ListenAddress(host: "127.0.0.1", port: 9090)
    /// Absolute or config-relative path of the tenants folder, already resolved.
    public var tenantsDirectory: String
    public var store: StoreLocation
    /// Base64 of 32 bytes, or nil when a key should be generated into the data folder.
    public var masterKey: String?
    public var tls: TLS?
    public var trustedProxies: [IPAddressRange] = []
    public var limits = Limits()
    public var passwordHashing = PasswordHashing()
    /// Whether one access-log line is written per request. Gatehouse extension.
    public var accessLog = true
    public var auditLog = AuditLogDestination.standardOutput
    /// Audit rows older than this are deleted by the periodic purge.
    public var auditRetention: Duration = .seconds(90 * 86_400)
    /// Whether the tenants folder is polled for changes (SIGHUP always reloads). Gatehouse extension.
    public var watchTenants = true
    /// How account e-mail leaves (§11); nil: e-mail features are off.
    public var email: EmailConfiguration?

    /// The scheme clients use to reach the public listener.
    public var publicScheme: String { tls == nil ? "http" : "https" }

    static let allowedKeys = [
        "listen", "admin_listen", "tenants", "store", "master_key", "tls", "trusted_proxies", "limits", "access_log",
        "audit_log", "audit_retention", "watch_tenants", "password_hashing", "email",
    ]

    /// `stdout`, `off`, or a file whose folder exists and is writable (a file that exists must be a writable file):
    /// found by `gatehouse check`, not at the first login.
    static func auditLogDestination(_ text: String, node: Node, directory: String, _ reader: ConfigurationReader) -> AuditLogDestination? {
        switch text {
        case "stdout": return .standardOutput
        case "off": return .off
        case "":
            reader.error(at: node, "'audit_log' must be stdout, off, or a file path")
            return nil
        case "false", "no", "true", "yes":
            // YAML's booleans, which would otherwise name a file called "false".
            reader.error(at: node, "'audit_log': write off, stdout or a file path, not \(text)")
            return nil
        default: break
        }
        let path = FilePath.resolve(text, against: directory)
        let folder = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue else {
                reader.error(at: node, "'audit_log': \(path) is a folder; name a file in it")
                return nil
            }
            guard FileManager.default.isWritableFile(atPath: path) else {
                reader.error(at: node, "'audit_log': \(path) is not writable by this user")
                return nil
            }
            return .file(path)
        }
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            reader.error(at: node, "'audit_log': the folder \(folder) does not exist")
            return nil
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            reader.error(at: node, "'audit_log': the folder \(folder) is not writable by this user")
            return nil
        }
        return .file(path)
    }

    /// Parses the text of `config/gatehouse.yaml`; problems go to `reader`.
    static func parse(text: String, reader: ConfigurationReader, directory: String) -> GatewayConfiguration? {
        guard let root = reader.document(text),
            let mapping = reader.mapping(root, context: "the gateway configuration", allowedKeys: allowedKeys)
        else { return nil }

        var configuration = GatewayConfiguration(
            file: reader.file,
            tenantsDirectory: FilePath.resolve("../tenants", against: directory),
            store: .sqlite(path: FilePath.resolve("../data/gatehouse.sqlite", against: directory))
        )
        if let node = mapping["listen"] { configuration.listen = listenAddress(node, field: "listen", reader) ?? configuration.listen }
        if let node = mapping["admin_listen"] {
            configuration.adminListen = listenAddress(node, field: "admin_listen", reader) ?? configuration.adminListen
        }
        if configuration.listen == configuration.adminListen && configuration.listen.port != 0 {
            reader.error(at: mapping["admin_listen"], "admin_listen must differ from listen: the admin endpoints are never served publicly")
        }
        if let node = mapping["tenants"], let path = reader.string(node, field: "tenants") {
            if path.isEmpty {
                reader.error(at: node, "'tenants' must name a folder")
            } else {
                configuration.tenantsDirectory = FilePath.resolve(path, against: directory)
            }
        }
        if let node = mapping["store"], let text = reader.string(node, field: "store", secret: true) {
            if text.hasPrefix("sqlite:") {
                let path = String(text.dropFirst("sqlite:".count))
                if path.isEmpty {
                    reader.error(at: node, "'store': sqlite: needs a file path, e.g. sqlite:../data/gatehouse.sqlite")
                } else {
                    configuration.store = .sqlite(path: FilePath.resolve(path, against: directory))
                }
            } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
                switch PostgresURL.parse(text, relativeTo: directory) {
                case .success(let url): configuration.store = .postgres(url)
                case .failure(let error): reader.error(at: node, "'store': the PostgreSQL URL \(error)")
                }
            } else {
                reader.error(at: node, "'store' must be sqlite:PATH or postgres://user:pass@host:5432/db")
            }
        }
        if let node = mapping["master_key"], let key = reader.string(node, field: "master_key", secret: true) {
            if key.isEmpty {
                configuration.masterKey = nil
            } else if Base64.decodedLength(key) != 32 {
                reader.error(at: node, "'master_key' must be base64 of exactly 32 bytes (e.g. the output of: openssl rand -base64 32)")
            } else {
                configuration.masterKey = key
            }
        }
        if let node = mapping["tls"], !ConfigurationReader.isNull(node) {
            configuration.tls = tls(node, reader, directory: directory)
        }
        if let node = mapping["trusted_proxies"], let entries = reader.stringList(node, field: "trusted_proxies") {
            for (text, item) in entries {
                if let range = IPAddressRange(text) {
                    configuration.trustedProxies.append(range)
                } else {
                    reader.error(at: item, "'trusted_proxies': '\(text)' is not an IP address or CIDR block")
                }
            }
        }
        if let node = mapping["limits"] { configuration.limits = limits(node, reader) }
        if let node = mapping["password_hashing"] { configuration.passwordHashing = passwordHashing(node, reader) }
        if let node = mapping["access_log"], let value = reader.bool(node, field: "access_log") { configuration.accessLog = value }
        if let node = mapping["audit_log"], let text = reader.string(node, field: "audit_log") {
            if let destination = auditLogDestination(text, node: node, directory: directory, reader) { configuration.auditLog = destination }
        }
        if let node = mapping["audit_retention"], let value = reader.duration(node, field: "audit_retention", minimum: .seconds(3600)) {
            configuration.auditRetention = value
        }
        if let node = mapping["watch_tenants"], let value = reader.bool(node, field: "watch_tenants") { configuration.watchTenants = value }
        if let node = mapping["email"], !ConfigurationReader.isNull(node) {
            configuration.email = EmailConfiguration.parse(node, reader, directory: directory)
        }
        if case .postgres = configuration.store, configuration.masterKey == nil {
            // A key generated into one machine's data folder would leave every other replica unable to open the
            // signing keys it seals.
            reader.error(
                at: mapping["master_key"] ?? mapping["store"],
                "'master_key' is required with a PostgreSQL store: every replica must seal and open keys with the same one (e.g. master_key: ${GATEHOUSE_MASTER_KEY})")
        }
        return configuration
    }

    private static func listenAddress(_ node: Node, field: String, _ reader: ConfigurationReader) -> ListenAddress? {
        guard let text = reader.string(node, field: field) else { return nil }
        guard let address = ListenAddress.parse(text) else {
            reader.error(at: node, "'\(field)': '\(text)' is not host:port")
            return nil
        }
        return address
    }

    private static func tls(_ node: Node, _ reader: ConfigurationReader, directory: String) -> TLS? {
        guard let mapping = reader.mapping(node, context: "tls", allowedKeys: ["certificate", "private_key"]) else { return nil }
        var paths: [String] = []
        for key in ["certificate", "private_key"] {
            guard let value = mapping[key] else {
                reader.error(line: mapping.line, "tls needs '\(key)'")
                continue
            }
            guard let path = reader.string(value, field: "tls.\(key)"), !path.isEmpty else { continue }
            let resolved = FilePath.resolve(path, against: directory)
            if !FilePath.isReadableFile(resolved) {
                reader.error(at: value, "tls.\(key): cannot read '\(path)'")
            }
            paths.append(resolved)
        }
        guard paths.count == 2 else { return nil }
        return TLS(certificatePath: paths[0], privateKeyPath: paths[1])
    }

    private static func limits(_ node: Node, _ reader: ConfigurationReader) -> Limits {
        var limits = Limits()
        let keys = [
            "max_body_bytes", "auth_body_bytes", "upstream_connect_timeout", "upstream_timeout",
            "max_header_bytes", "request_head_timeout", "idle_timeout", "body_timeout",
        ]
        guard let mapping = reader.mapping(node, context: "limits", allowedKeys: keys) else { return limits }
        func size(_ key: String, _ assign: (Int) -> Void) {
            if let node = mapping[key], let value = reader.byteCount(node, field: "limits.\(key)") { assign(value) }
        }
        func time(_ key: String, _ assign: (Duration) -> Void) {
            if let node = mapping[key], let value = reader.duration(node, field: "limits.\(key)") { assign(value) }
        }
        size("max_body_bytes") { limits.maxBodyBytes = $0 }
        size("auth_body_bytes") { limits.authBodyBytes = $0 }
        size("max_header_bytes") { limits.maxHeaderBytes = $0 }
        time("upstream_connect_timeout") { limits.upstreamConnectTimeout = $0 }
        time("upstream_timeout") { limits.upstreamTimeout = $0 }
        time("request_head_timeout") { limits.requestHeadTimeout = $0 }
        time("idle_timeout") { limits.idleTimeout = $0 }
        time("body_timeout") { limits.bodyTimeout = $0 }
        if limits.maxHeaderBytes < 1024 {
            reader.error(at: mapping["max_header_bytes"], "limits.max_header_bytes must be at least 1KiB")
        }
        return limits
    }

    private static func passwordHashing(_ node: Node, _ reader: ConfigurationReader) -> PasswordHashing {
        var hashing = PasswordHashing()
        guard let mapping = reader.mapping(node, context: "password_hashing", allowedKeys: ["memory", "iterations", "parallelism"]) else {
            return hashing
        }
        if let node = mapping["memory"], let value = reader.byteCount(node, field: "password_hashing.memory") {
            if value < 1024 * 1024 || value > 1024 * 1024 * 1024 {
                reader.error(at: node, "password_hashing.memory must be between 1MiB and 1GiB")
            }
            hashing.memoryBytes = value
        }
        if let node = mapping["iterations"], let value = reader.integer(node, field: "password_hashing.iterations", range: 1...100) {
            hashing.iterations = value
        }
        if let node = mapping["parallelism"], let value = reader.integer(node, field: "password_hashing.parallelism", range: 1...64) {
            hashing.parallelism = value
        }
        return hashing
    }
}
