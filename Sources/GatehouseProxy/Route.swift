import GatehouseConfiguration
import GatehouseMetrics
import NIOHTTP1

/// A route ready for the request path: methods pre-parsed, the `Allow` header pre-rendered.
public struct Route: Sendable {
    public let configuration: RouteConfiguration
    /// nil allows every method.
    public let methods: Set<String>?
    /// Value of `Allow` for a 405 answer.
    public let allowHeader: String
    /// Its series of §10, made with the routing table.
    public let metrics: RouteMetrics

    public var path: String { configuration.path }
    public var upstream: UpstreamURL { configuration.upstream }
    public var requirement: RouteConfiguration.Requirement { configuration.requirement }

    /// - Parameter metrics: the route's series; by default they go nowhere.
    public init(_ configuration: RouteConfiguration, metrics: RouteMetrics? = nil) {
        self.configuration = configuration
        self.metrics = metrics ?? GatewayMetrics.discarding.route(tenant: "", path: configuration.path)
        if let names = configuration.methods {
            var methods = Set(names)
            // GET allows HEAD.
            if methods.contains("GET") { methods.insert("HEAD") }
            self.methods = methods
            let ordered = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
            self.allowHeader = ordered.filter { methods.contains($0) }.joined(separator: ", ")
        } else {
            self.methods = nil
            self.allowHeader = ""
        }
    }

    public func allows(_ method: HTTPMethod) -> Bool {
        methods?.contains(method.rawValue) ?? true
    }

    /// The path to send upstream: `strip_prefix` applied and the upstream's base path prepended.
    public func upstreamPath(for path: String) -> String {
        var forwarded = path
        if configuration.stripPrefix && configuration.path != "/" {
            forwarded = String(path.dropFirst(configuration.path.utf8.count))
            if forwarded.isEmpty || !forwarded.hasPrefix("/") { forwarded = "/" + forwarded }
        }
        let base = configuration.upstream.basePath
        return base.isEmpty ? forwarded : base + forwarded
    }
}

/// A tenant's routes; the longest prefix wins, on segment boundaries.
public struct RouteTable: Sendable {
    /// Longest path first, so the first match is the best.
    private let routes: [Route]

    public init(_ routes: [RouteConfiguration], metrics: TenantMetrics? = nil) {
        self.routes = routes.map { Route($0, metrics: metrics?.route($0.path)) }.sorted { $0.path.utf8.count > $1.path.utf8.count }
    }

    public func match(_ path: String) -> Route? {
        routes.first { RoutePath.isPrefix($0.path, of: path, ignoringASCIICase: $0.configuration.caseInsensitive) }
    }
}
