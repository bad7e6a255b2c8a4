import GatehouseTokens
import Yams

/// One tenant, `tenants/<id>.yaml` (§2). The file name is the tenant id.
public struct TenantConfiguration: Sendable {
    public enum SigningAlgorithm: String, Sendable, Hashable, CaseIterable {
        case es256 = "ES256"
        case edDSA = "EdDSA"
        case rs256 = "RS256"
        case hs256 = "HS256"

        public var isAsymmetric: Bool { self != .hs256 }
    }

    public struct Signup: Sendable, Hashable {
        public var enabled = false
        public var allowedEmailDomains: [String] = []
        public var defaultRoles: [String] = ["user"]
    }

    public struct Tokens: Sendable, Hashable {
        public var algorithm: SigningAlgorithm = .es256
        /// The HS256 secret, from the environment; never published or logged.
        public var secret: String?
        public var accessTTL: Duration = .seconds(15 * 60)
        public var refreshTTL: Duration = .seconds(30 * 86_400)
        public var clockSkew: Duration = .seconds(30)
    }

    public struct Lockout: Sendable, Hashable {
        public var maxFailures = 5
        public var window: Duration = .seconds(15 * 60)
    }

    public struct Session: Sendable, Hashable {
        public var idleTimeout: Duration = .seconds(12 * 3600)
        public var absoluteTimeout: Duration = .seconds(7 * 86_400)
    }

    public struct Branding: Sendable, Hashable {
        public var displayName: String
        public var logoURL: String?
        public var accentColor = "#0b5fff"
    }

    /// A header the gateway owns: stripped from every inbound request and filled from a claim.
    public struct IdentityHeader: Sendable, Hashable {
        public var name: String
        public var claim: AccessTokenClaim
    }

    public var id: String
    public var file: String
    public var hosts: [HostPattern]
    /// Line of `hosts` in the file, for messages about host conflicts.
    public var hostsLine = 1
    public var issuer: String
    public var audience: String
    public var signup = Signup()
    public var minimumPasswordLength = 10
    public var tokens = Tokens()
    public var lockout = Lockout()
    public var session = Session()
    public var branding: Branding
    /// Account e-mail (§11): verification and password reset.
    public var email = TenantEmailConfiguration()
    public var identityHeaders: [IdentityHeader]
    public var routes: [RouteConfiguration] = []

    public static let defaultIdentityHeaders = [
        IdentityHeader(name: "X-User-Id", claim: .sub),
        IdentityHeader(name: "X-User-Email", claim: .email),
        IdentityHeader(name: "X-User-Name", claim: .name),
        IdentityHeader(name: "X-User-Roles", claim: .roles),
        IdentityHeader(name: "X-Tenant-Id", claim: .tenant),
    ]


    static let allowedKeys = [
        "hosts", "issuer", "audience", "signup", "password", "tokens", "lockout", "session", "branding",
        "identity_headers", "routes", "email", "password_reset",
    ]

    /// Whether a file name stem can be a tenant id.
    public static func isValidID(_ id: String) -> Bool {
        guard let first = id.utf8.first, id.utf8.count <= 64 else { return false }
        let allowed: (UInt8) -> Bool = { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }
        return first != 0x2D && first != 0x5F && id.utf8.allSatisfy(allowed)
    }
}

extension TenantConfiguration {
    /// Parses the text of one tenant file; problems go to `reader`.
    static func parse(id: String, text: String, reader: ConfigurationReader, gateway: GatewayConfiguration)
        -> TenantConfiguration?
    {
        guard let root = reader.document(text),
            let mapping = reader.mapping(root, context: "the tenant file", allowedKeys: allowedKeys)
        else { return nil }

        var hosts: [HostPattern] = []
        if let node = mapping["hosts"], let entries = reader.stringList(node, field: "hosts") {
            for (text, item) in entries {
                guard let pattern = HostPattern.parse(text) else {
                    reader.error(at: item, "'hosts': '\(text)' is not a host name or a *.wildcard of one label")
                    continue
                }
                if hosts.contains(pattern) {
                    reader.error(at: item, "'hosts': '\(text)' is listed twice")
                    continue
                }
                hosts.append(pattern)
            }
            if entries.isEmpty { reader.error(at: node, "'hosts' must list at least one host") }
        } else if mapping["hosts"] == nil {
            reader.error(line: mapping.line, "the tenant needs 'hosts': the Host names it answers on")
        }

        var tenant = TenantConfiguration(
            id: id, file: reader.file, hosts: hosts, issuer: "", audience: id,
            branding: Branding(displayName: id), identityHeaders: defaultIdentityHeaders
        )

        tenant.hostsLine = mapping["hosts"].map { ConfigurationReader.line(of: $0) } ?? mapping.line
        if let node = mapping["issuer"], let issuer = reader.string(node, field: "issuer") {
            if !(issuer.hasPrefix("https://") || issuer.hasPrefix("http://")) || issuer.contains(" ") {
                reader.error(at: node, "'issuer' must be an http:// or https:// URL, not '\(issuer)'")
            }
            tenant.issuer = issuer
        } else if let first = hosts.first {
            if case .exact(let host) = first {
                let defaultPort = gateway.tls == nil ? 80 : 443
                let port = gateway.listen.port == defaultPort ? "" : ":\(gateway.listen.port)"
                tenant.issuer = "\(gateway.publicScheme)://\(host)\(port)"
            } else {
                reader.error(at: mapping["hosts"], "'issuer' is required when the first host is a wildcard ('\(first)')")
            }
        }
        if let node = mapping["audience"], let audience = reader.string(node, field: "audience") {
            if audience.isEmpty { reader.error(at: node, "'audience' must not be empty") }
            tenant.audience = audience
        }
        if let node = mapping["signup"] { tenant.signup = signup(node, reader) }
        if let node = mapping["password"],
            let password = reader.mapping(node, context: "password", allowedKeys: ["min_length"]),
            let lengthNode = password["min_length"],
            let length = reader.integer(lengthNode, field: "password.min_length", range: 1...1024)
        {
            tenant.minimumPasswordLength = length
        }
        if let node = mapping["tokens"] { tenant.tokens = tokens(node, reader) }
        if let node = mapping["lockout"] { tenant.lockout = lockout(node, reader) }
        if let node = mapping["session"] { tenant.session = session(node, reader) }
        if let node = mapping["branding"] { tenant.branding = branding(node, reader, id: id) }
        tenant.email = TenantEmailConfiguration.parse(email: mapping["email"], passwordReset: mapping["password_reset"], reader, gateway: gateway)
        if let node = mapping["identity_headers"] { tenant.identityHeaders = identityHeaders(node, reader) }
        if let node = mapping["routes"] { tenant.routes = routes(node, reader, tenant: tenant) }
        return tenant
    }

    private static func signup(_ node: Node, _ reader: ConfigurationReader) -> Signup {
        var signup = Signup()
        guard let mapping = reader.mapping(node, context: "signup", allowedKeys: ["enabled", "allowed_email_domains", "default_roles"])
        else { return signup }
        if let node = mapping["enabled"], let value = reader.bool(node, field: "signup.enabled") { signup.enabled = value }
        if let node = mapping["allowed_email_domains"], let list = reader.stringList(node, field: "signup.allowed_email_domains") {
            signup.allowedEmailDomains = list.map { $0.value.lowercased() }
            for (domain, item) in list where HostPattern.parse(domain) == nil || domain.hasPrefix("*") {
                reader.error(at: item, "'signup.allowed_email_domains': '\(domain)' is not a domain name")
            }
        }
        if let node = mapping["default_roles"], let list = reader.stringList(node, field: "signup.default_roles") {
            signup.defaultRoles = roles(list, field: "signup.default_roles", reader)
        }
        return signup
    }

    static func roles(_ list: [(value: String, node: Node)], field: String, _ reader: ConfigurationReader) -> [String] {
        for (role, item) in list where !RoleName.isValid(role) {
            reader.error(at: item, "'\(field)': \(RoleName.problem(role))")
        }
        return list.map(\.value)
    }

    private static func tokens(_ node: Node, _ reader: ConfigurationReader) -> Tokens {
        var tokens = Tokens()
        let keys = ["algorithm", "secret", "access_ttl", "refresh_ttl", "clock_skew"]
        guard let mapping = reader.mapping(node, context: "tokens", allowedKeys: keys) else { return tokens }
        if let node = mapping["algorithm"], let text = reader.string(node, field: "tokens.algorithm") {
            if let algorithm = SigningAlgorithm(rawValue: text) {
                tokens.algorithm = algorithm
            } else {
                reader.error(at: node, "'tokens.algorithm': '\(text)' is not one of ES256, EdDSA, RS256, HS256")
            }
        }
        if let node = mapping["secret"], let secret = reader.string(node, field: "tokens.secret", secret: true), !secret.isEmpty {
            tokens.secret = secret
            if secret.utf8.count < 32 {
                reader.error(at: node, "'tokens.secret' must be at least 32 bytes long")
            }
        }
        if tokens.algorithm == .hs256 && tokens.secret == nil {
            reader.error(at: mapping["algorithm"], "'tokens.algorithm: HS256' needs 'secret: ${SOME_ENV_VAR}'")
        }
        if tokens.algorithm != .hs256 && mapping["secret"] != nil {
            reader.error(at: mapping["secret"], "'tokens.secret' is only used with HS256")
        }
        if let node = mapping["access_ttl"], let value = reader.duration(node, field: "tokens.access_ttl") { tokens.accessTTL = value }
        if let node = mapping["refresh_ttl"], let value = reader.duration(node, field: "tokens.refresh_ttl") { tokens.refreshTTL = value }
        if let node = mapping["clock_skew"], let value = reader.duration(node, field: "tokens.clock_skew") { tokens.clockSkew = value }
        return tokens
    }

    private static func lockout(_ node: Node, _ reader: ConfigurationReader) -> Lockout {
        var lockout = Lockout()
        guard let mapping = reader.mapping(node, context: "lockout", allowedKeys: ["max_failures", "window"]) else { return lockout }
        if let node = mapping["max_failures"], let value = reader.integer(node, field: "lockout.max_failures", range: 1...1000) {
            lockout.maxFailures = value
        }
        if let node = mapping["window"], let value = reader.duration(node, field: "lockout.window") { lockout.window = value }
        return lockout
    }

    private static func session(_ node: Node, _ reader: ConfigurationReader) -> Session {
        var session = Session()
        guard let mapping = reader.mapping(node, context: "session", allowedKeys: ["idle_timeout", "absolute_timeout"]) else {
            return session
        }
        if let node = mapping["idle_timeout"], let value = reader.duration(node, field: "session.idle_timeout") {
            session.idleTimeout = value
        }
        if let node = mapping["absolute_timeout"], let value = reader.duration(node, field: "session.absolute_timeout") {
            session.absoluteTimeout = value
        }
        return session
    }

    private static func branding(_ node: Node, _ reader: ConfigurationReader, id: String) -> Branding {
        var branding = Branding(displayName: id)
        guard let mapping = reader.mapping(node, context: "branding", allowedKeys: ["display_name", "logo_url", "accent_color"]) else {
            return branding
        }
        if let node = mapping["display_name"], let value = reader.string(node, field: "branding.display_name") {
            branding.displayName = value
        }
        if let node = mapping["logo_url"], let value = reader.string(node, field: "branding.logo_url") {
            if value.hasPrefix("/") || value.hasPrefix("https://") || value.hasPrefix("http://") {
                branding.logoURL = value
            } else {
                reader.error(at: node, "'branding.logo_url' must be a path (/static/logo.svg) or an http(s) URL")
            }
        }
        if let node = mapping["accent_color"], let value = reader.string(node, field: "branding.accent_color") {
            let hex = value.dropFirst()
            if value.hasPrefix("#"), hex.count == 3 || hex.count == 6, hex.allSatisfy(\.isHexDigit) {
                branding.accentColor = value
            } else {
                reader.error(at: node, "'branding.accent_color' must be a #rgb or #rrggbb colour, not '\(value)'")
            }
        }
        return branding
    }

    private static func identityHeaders(_ node: Node, _ reader: ConfigurationReader) -> [IdentityHeader] {
        guard case .mapping(let mapping) = node else {
            reader.error(at: node, "'identity_headers' must map header names to claims, e.g. X-User-Id: sub")
            return defaultIdentityHeaders
        }
        var headers: [IdentityHeader] = []
        for (keyNode, value) in mapping {
            guard let name = reader.string(keyNode, field: "identity_headers"), let claim = reader.string(value, field: name) else {
                continue
            }
            if !HTTPToken.isValid(name) {
                reader.error(at: keyNode, "'identity_headers': '\(name)' is not a valid header name")
            } else if headers.contains(where: { $0.name.lowercased() == name.lowercased() }) {
                reader.error(at: keyNode, "'identity_headers': '\(name)' is listed twice")
            } else if ["authorization", "cookie", "host", "content-length", "transfer-encoding", "connection"].contains(name.lowercased()) {
                reader.error(at: keyNode, "'identity_headers': '\(name)' cannot be an identity header")
            }
            guard let known = AccessTokenClaim(rawValue: claim) else {
                let names = AccessTokenClaim.allCases.map(\.rawValue).joined(separator: ", ")
                reader.error(at: value, "'identity_headers': claim '\(claim)' is not one of \(names)")
                continue
            }
            headers.append(IdentityHeader(name: name, claim: known))
        }
        return headers
    }

    private static func routes(_ node: Node, _ reader: ConfigurationReader, tenant: TenantConfiguration) -> [RouteConfiguration] {
        guard case .sequence(let sequence) = node else {
            reader.error(at: node, "'routes' must be a list of routes")
            return []
        }
        var routes: [RouteConfiguration] = []
        var seenPaths: [String: Int] = [:]
        for item in sequence {
            guard let mapping = reader.mapping(item, context: "a route", allowedKeys: RouteConfiguration.allowedKeys) else { continue }
            guard let route = route(mapping, reader, tenant: tenant) else { continue }
            if let earlier = seenPaths[route.path] {
                reader.error(line: route.line, "route path '\(route.path)' is already used by the route on line \(earlier)")
                continue
            }
            seenPaths[route.path] = route.line
            routes.append(route)
        }
        return routes
    }

    private static func route(_ mapping: ConfigurationReader.Mapping, _ reader: ConfigurationReader, tenant: TenantConfiguration)
        -> RouteConfiguration?
    {
        var valid = true
        var path = "/"
        if let node = mapping["path"], let text = reader.string(node, field: "path") {
            if let normalized = RoutePath.normalize(text) {
                path = normalized
                if let reserved = RouteConfiguration.reservedPrefixes.first(where: { RoutePath.isPrefix($0, of: normalized) }) {
                    reader.error(at: node, "route path '\(text)' is under the reserved prefix \(reserved), which the gateway serves itself")
                    valid = false
                }
            } else {
                reader.error(at: node, "route path '\(text)' must start with / and contain no '..', '%', '?', '#', '\\' or spaces")
                valid = false
            }
        } else {
            reader.error(line: mapping.line, "a route needs 'path'")
            valid = false
        }
        var upstream: UpstreamURL?
        if let node = mapping["upstream"], let text = reader.string(node, field: "upstream") {
            switch UpstreamURL.parse(text) {
            case .success(let url): upstream = url
            case .failure(let failure): reader.error(at: node, "'upstream': \(failure)")
            }
        } else if mapping["upstream"] == nil {
            reader.error(line: mapping.line, "the route '\(path)' needs 'upstream: http://host:port'")
        }
        guard valid, let upstream else { return nil }

        var route = RouteConfiguration(path: path, upstream: upstream, line: mapping.line)
        if let node = mapping["methods"], let list = reader.stringList(node, field: "methods") {
            var methods: [String] = []
            for (method, item) in list {
                if RouteConfiguration.knownMethods.contains(method) {
                    if !methods.contains(method) { methods.append(method) }
                } else {
                    reader.error(at: item, "'methods': '\(method)' is not an HTTP method (upper case, e.g. GET, POST)")
                }
            }
            if list.isEmpty { reader.error(at: node, "'methods' must list at least one method (or be left out)") }
            route.methods = methods
        }
        if let node = mapping["strip_prefix"], let value = reader.bool(node, field: "strip_prefix") { route.stripPrefix = value }
        if let node = mapping["forward_authorization"], let value = reader.bool(node, field: "forward_authorization") {
            route.forwardAuthorization = value
        }
        if let node = mapping["identity_assertion"], let value = reader.bool(node, field: "identity_assertion") {
            route.identityAssertion = value
            if value && !tenant.tokens.algorithm.isAsymmetric {
                reader.error(at: node, "'identity_assertion' needs an asymmetric tokens.algorithm (ES256, EdDSA or RS256), not HS256")
            }
        }
        if let node = mapping["case_insensitive"], let value = reader.bool(node, field: "case_insensitive") { route.caseInsensitive = value }
        if let node = mapping["require"] { route.requirement = requirement(node, reader) ?? .authenticated }
        return route
    }

    private static func requirement(_ node: Node, _ reader: ConfigurationReader) -> RouteConfiguration.Requirement? {
        if case .scalar = node {
            switch reader.string(node, field: "require") {
            case "public": return .public
            case "authenticated": return .authenticated
            case let other?:
                reader.error(at: node, "'require' must be public, authenticated or {roles: [...]}, not '\(other)'")
                return nil
            case nil: return nil
            }
        }
        guard let mapping = reader.mapping(node, context: "require", allowedKeys: ["roles"]) else { return nil }
        guard let rolesNode = mapping["roles"], let list = reader.stringList(rolesNode, field: "require.roles") else {
            reader.error(line: mapping.line, "'require' needs 'roles: [...]'")
            return nil
        }
        if list.isEmpty {
            reader.error(at: rolesNode, "'require.roles' must name at least one role")
            return nil
        }
        return .anyRole(roles(list, field: "require.roles", reader))
    }
}

/// Route path prefixes as written in files.
public enum RoutePath {
    /// `/api/` becomes `/api`; nil for anything that is not a plain absolute path.
    public static func normalize(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return nil }
        let forbidden: Set<Character> = ["%", "?", "#", "\\", " ", "\t"]
        guard path.allSatisfy({ $0.isASCII && !forbidden.contains($0) && !$0.isWhitespace }) else { return nil }
        let segments = path.split(separator: "/")
        guard !segments.contains(where: { $0 == ".." || $0 == "." }) else { return nil }
        return "/" + segments.joined(separator: "/")
    }

    /// Whether `prefix` matches `path` on a segment boundary (`/api` matches `/api` and `/api/x`, not `/apix`).
    /// With `ignoringASCIICase`, `/api/admin` also matches `/API/Admin/x` (§6.8 `case_insensitive`).
    public static func isPrefix(_ prefix: String, of path: String, ignoringASCIICase: Bool = false) -> Bool {
        if prefix == "/" { return true }
        guard path.utf8.count >= prefix.utf8.count else { return false }
        // On contiguous bytes: this runs for every route of every request.
        var prefix = prefix
        var path = path
        return prefix.withUTF8 { prefixBytes in
            path.withUTF8 { pathBytes in
                for index in 0..<prefixBytes.count where pathBytes[index] != prefixBytes[index] {
                    guard ignoringASCIICase, Self.foldASCII(pathBytes[index]) == Self.foldASCII(prefixBytes[index]) else { return false }
                }
                return pathBytes.count == prefixBytes.count || pathBytes[prefixBytes.count] == UInt8(ascii: "/")
            }
        }
    }

    @inline(__always)
    private static func foldASCII(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}

/// RFC 9110 tokens (header names, methods).
enum HTTPToken {
    static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
