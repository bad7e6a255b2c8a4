import GatehouseConfiguration
import GatehouseMetrics

/// A tenant as the request path needs it: configuration plus pre-computed lookups.
public final class Tenant: Sendable {
    public let configuration: TenantConfiguration
    public let routes: RouteTable
    /// Lower-cased names of headers that only the gateway may set: the tenant's identity headers and
    /// `X-Identity-Assertion`. They are stripped from every inbound request, whatever the route.
    public let reservedHeaderNames: [String]
    /// Its series of §10 (its routes carry their own).
    public let metrics: TenantMetrics

    public var id: String { configuration.id }

    public init(_ configuration: TenantConfiguration, metrics: GatewayMetrics = .discarding) {
        self.configuration = configuration
        self.metrics = metrics.tenant(configuration.id)
        self.routes = RouteTable(configuration.routes, metrics: self.metrics)
        var names = configuration.identityHeaders.map { $0.name.lowercased() }
        names.append("x-identity-assertion")
        self.reservedHeaderNames = names
    }
}

/// Maps a request's Host to its tenant in constant time, whatever the number of tenants (§3).
public struct TenantDirectory: Sendable {
    private let exact: [String: Tenant]
    private let wildcard: [String: Tenant]
    public let tenants: [String: Tenant]
    /// The series of requests whose host is no tenant's.
    public let unknownHostMetrics: RouteMetrics

    /// - Parameter metrics: where the tenants' and routes' series are made; built once per routing table.
    public init(_ catalog: TenantCatalog, metrics: GatewayMetrics = .discarding) {
        self.init(tenants: Array(catalog.tenants.values), metrics: metrics)
    }

    public init(tenants configurations: [TenantConfiguration], metrics: GatewayMetrics = .discarding) {
        var exact: [String: Tenant] = [:]
        var wildcard: [String: Tenant] = [:]
        var tenants: [String: Tenant] = [:]
        for configuration in configurations {
            let tenant = Tenant(configuration, metrics: metrics)
            tenants[configuration.id] = tenant
            for host in configuration.hosts {
                switch host {
                case .exact(let name): exact[name] = tenant
                case .wildcard(let suffix): wildcard[suffix] = tenant
                }
            }
        }
        self.exact = exact
        self.wildcard = wildcard
        self.tenants = tenants
        self.unknownHostMetrics = metrics.unknownHost
    }

    public var count: Int { tenants.count }

    /// The tenant for a `Host` (or `:authority`) value: port stripped, lower-cased; an exact host wins over a wildcard.
    public func resolve(host header: String) -> Tenant? {
        guard let host = Self.normalizeHost(header) else { return nil }
        if let tenant = exact[host] { return tenant }
        // Bytes, like `normalizeHost`: a `Character` search would run grapheme breaking for every wildcard host.
        guard host.utf8.first != UInt8(ascii: "["), let dot = host.utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        return wildcard[String(host[host.utf8.index(after: dot)...])]
    }

    /// `Acme.Localhost:8080` becomes `acme.localhost`; `[::1]:80` becomes `[::1]`; a trailing dot is dropped.
    public static func normalizeHost(_ header: String) -> String? {
        // On the UTF-8 view throughout: `Character` operations would run grapheme breaking on every request.
        let bytes = header.utf8
        var end = bytes.endIndex
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            end = bytes.index(after: close)
        } else if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
            end = colon
        }
        var host = bytes[bytes.startIndex..<end]
        if host.last == UInt8(ascii: ".") { host = host.dropLast() }
        guard !host.isEmpty else { return nil }
        // Host names are ASCII; lower-case without Unicode case mapping, and without copying a host that is
        // lower-case already (nearly all are).
        var hasUpperCase = false
        for byte in host {
            guard byte >= 0x21 && byte <= 0x7E else { return nil }
            if byte >= 0x41 && byte <= 0x5A { hasUpperCase = true }
        }
        guard hasUpperCase else { return String(Substring(host)) }
        return String(unsafeUninitializedCapacity: host.count) { buffer in
            for (index, byte) in host.enumerated() { buffer[index] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
            return host.count
        }
    }
}
