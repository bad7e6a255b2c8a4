import CoreMetrics

/// Every series of §10, made through one swift-metrics factory: a process's ``MetricsRegistry``, or a factory
/// that discards everything when metrics are off.
///
/// Label values come only from configuration (tenant ids, route paths) and the fixed lists of this module; the
/// per-tenant and per-route series are made when a routing table is built (``tenant(_:)``, ``route(tenant:path:)``)
/// and kept on it, never looked up per request.
public final class GatewayMetrics: Sendable {
    /// The family names, in one place.
    public enum Family {
        public static let requests = "gatehouse_requests_total"
        public static let requestDuration = "gatehouse_request_duration_seconds"
        public static let upstreamDuration = "gatehouse_upstream_duration_seconds"
        public static let auth = "gatehouse_auth_total"
        public static let logins = "gatehouse_logins_total"
        public static let signups = "gatehouse_signups_total"
        public static let passwordHashQueue = "gatehouse_password_hash_queue"
        public static let tokenCacheLookups = "gatehouse_token_cache_lookups_total"
        public static let openConnections = "gatehouse_open_connections"
        public static let configReloads = "gatehouse_config_reloads_total"
        public static let storeUp = "gatehouse_store_up"
        public static let revocationLag = "gatehouse_revocation_lag_seconds"
        public static let buildInfo = "gatehouse_build_info"
    }

    /// The route label of the identity endpoints, and of a request no route matched.
    public static let endpointsRoute = "/auth"
    public static let unmatched = "none"

    /// nil when metrics are off.
    public let registry: MetricsRegistry?
    let factory: any MetricsFactory
    public let tokenCacheHits: Counter
    public let tokenCacheMisses: Counter
    public let publicConnections: Meter
    public let adminConnections: Meter
    public let reloadSuccesses: Counter
    public let reloadFailures: Counter
    public let storeUp: Gauge
    public let passwordHashQueue: Gauge
    /// From a revocation's commit to this replica applying it.
    public let revocationLag: Timer
    /// A request whose host is no tenant's: tenant and route `none`.
    public let unknownHost: RouteMetrics

    /// Metrics recorded into `registry`, served by the admin listener.
    public convenience init(registry: MetricsRegistry, version: String) {
        Self.describe(registry)
        self.init(registry: registry, factory: registry, version: version)
    }

    /// Metrics that go nowhere (`GATEHOUSE_METRICS=off`, for measuring what recording costs; or a test that does not look).
    public static func disabled() -> GatewayMetrics {
        GatewayMetrics(registry: nil, factory: NOOPMetricsHandler.instance, version: "")
    }

    /// A shared instance of ``disabled()``, the default of types built without a catalogue (in tests).
    public static let discarding = GatewayMetrics.disabled()

    private init(registry: MetricsRegistry?, factory: any MetricsFactory, version: String) {
        self.registry = registry
        self.factory = factory
        tokenCacheHits = Counter(label: Family.tokenCacheLookups, dimensions: [("result", "hit")], factory: factory)
        tokenCacheMisses = Counter(label: Family.tokenCacheLookups, dimensions: [("result", "miss")], factory: factory)
        publicConnections = Meter(label: Family.openConnections, dimensions: [("listener", "public")], factory: factory)
        adminConnections = Meter(label: Family.openConnections, dimensions: [("listener", "admin")], factory: factory)
        reloadSuccesses = Counter(label: Family.configReloads, dimensions: [("result", "success")], factory: factory)
        reloadFailures = Counter(label: Family.configReloads, dimensions: [("result", "failure")], factory: factory)
        storeUp = Gauge(label: Family.storeUp, factory: factory)
        passwordHashQueue = Gauge(label: Family.passwordHashQueue, factory: factory)
        revocationLag = Timer(label: Family.revocationLag, factory: factory)
        unknownHost = RouteMetrics(tenant: Self.unmatched, route: Self.unmatched, factory: factory)
        if registry != nil {
            Gauge(label: Family.buildInfo, dimensions: [("version", version)], factory: factory).record(1)
        }
    }

    /// The series of one tenant (auth results, logins, sign-ups, its endpoints and its unmatched paths).
    public func tenant(_ id: String) -> TenantMetrics { TenantMetrics(tenant: id, metrics: self) }

    /// The series of one configured route.
    public func route(tenant: String, path: String) -> RouteMetrics { RouteMetrics(tenant: tenant, route: path, factory: factory) }

    private static func describe(_ registry: MetricsRegistry) {
        registry.describe(Family.requests, help: "Requests answered, by tenant, route (its configured path, /auth, or none), method and status code.")
        registry.describe(Family.requestDuration, help: "Time from a request's head to the end of its response, by tenant and route.")
        registry.describe(Family.upstreamDuration, help: "Time from sending a request upstream to the upstream's response head, by tenant and route.")
        registry.describe(Family.auth, help: "Authentication outcomes of proxied requests, by tenant and result.")
        registry.describe(Family.logins, help: "Login attempts, by tenant and result.")
        registry.describe(Family.signups, help: "Sign-up attempts, by tenant and result.")
        registry.describe(Family.passwordHashQueue, help: "Password hashes queued or running on the hashing pool.")
        registry.describe(Family.tokenCacheLookups, help: "Lookups of the verified-token cache, by result.")
        registry.describe(Family.openConnections, help: "Open client connections, by listener.")
        registry.describe(Family.configReloads, help: "Reloads of the tenants folder, by result (failure: a file was rejected).")
        registry.describe(Family.storeUp, help: "1 when this replica's view of the identity store is current, 0 while the store is unreachable.")
        registry.describe(
            Family.revocationLag, help: "Time from a revocation's commit to this replica applying it.",
            bounds: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        registry.describe(Family.buildInfo, help: "The running Gatehouse version; always 1.")
    }
}

/// One tenant's series.
public final class TenantMetrics: Sendable {
    public let tenant: String
    private let auth: [Counter]
    private let logins: [Counter]
    private let signups: [Counter]
    /// The identity endpoints (`/auth/*`, route label `/auth`).
    public let endpoints: RouteMetrics
    /// A path of this tenant that no route matches (route label `none`).
    public let unmatched: RouteMetrics
    private let metrics: GatewayMetrics

    init(tenant: String, metrics: GatewayMetrics) {
        self.tenant = tenant
        self.metrics = metrics
        let factory = metrics.factory
        auth = AuthResult.allCases.map {
            Counter(label: GatewayMetrics.Family.auth, dimensions: [("tenant", tenant), ("result", $0.label)], factory: factory)
        }
        logins = LoginResult.allCases.map {
            Counter(label: GatewayMetrics.Family.logins, dimensions: [("tenant", tenant), ("result", $0.label)], factory: factory)
        }
        signups = SignupResult.allCases.map {
            Counter(label: GatewayMetrics.Family.signups, dimensions: [("tenant", tenant), ("result", $0.label)], factory: factory)
        }
        endpoints = RouteMetrics(tenant: tenant, route: GatewayMetrics.endpointsRoute, factory: factory)
        unmatched = RouteMetrics(tenant: tenant, route: GatewayMetrics.unmatched, factory: factory)
    }

    /// The series of one of this tenant's routes.
    public func route(_ path: String) -> RouteMetrics { metrics.route(tenant: tenant, path: path) }

    public func count(_ result: AuthResult) { auth[result.rawValue].increment() }
    public func count(_ result: LoginResult) { logins[result.rawValue].increment() }
    public func count(_ result: SignupResult) { signups[result.rawValue].increment() }
}

/// `gatehouse_auth_total`'s `result`: one per proxied request that went through authentication.
public enum AuthResult: Int, CaseIterable, Sendable {
    case valid, anonymous, expired, invalidSignature, revoked, malformed, wrongIssuer, wrongAudience, unknownKey

    public var label: String {
        switch self {
        case .valid: "valid"
        case .anonymous: "anonymous"
        case .expired: "expired"
        case .invalidSignature: "invalid_signature"
        case .revoked: "revoked"
        case .malformed: "malformed"
        case .wrongIssuer: "wrong_issuer"
        case .wrongAudience: "wrong_audience"
        case .unknownKey: "unknown_key"
        }
    }
}

/// `gatehouse_logins_total`'s `result`.
public enum LoginResult: Int, CaseIterable, Sendable {
    /// `overloaded` is any 503: the hashing queue full, or the store unreachable.
    case success, invalidCredentials, locked, overloaded, unverified

    public var label: String {
        switch self {
        case .success: "success"
        case .invalidCredentials: "invalid_credentials"
        case .locked: "locked"
        case .overloaded: "overloaded"
        case .unverified: "unverified"
        }
    }
}

/// `gatehouse_signups_total`'s `result`.
public enum SignupResult: Int, CaseIterable, Sendable {
    /// `invalid`: a 422 (address, password or name refused); `forbidden`: sign-up closed or the domain not allowed;
    /// `email_taken`: a 409; `overloaded`: a 503.
    case success, invalid, forbidden, emailTaken, overloaded

    public var label: String {
        switch self {
        case .success: "success"
        case .invalid: "invalid"
        case .forbidden: "forbidden"
        case .emailTaken: "email_taken"
        case .overloaded: "overloaded"
        }
    }
}
