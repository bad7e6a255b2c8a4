/// One entry of a tenant's `routes` (§2).
public struct RouteConfiguration: Sendable, Hashable {
    /// Who may pass.
    public enum Requirement: Sendable, Hashable {
        /// Anyone; identity headers are still injected when a valid token is present.
        case `public`
        /// Any valid identity of the tenant.
        case authenticated
        /// A valid identity holding any one of these roles.
        case anyRole([String])
    }

    /// The normalized path prefix: starts with `/`, no trailing slash except for `/` itself.
    public var path: String
    /// Allowed methods, upper-case; nil allows every method.
    public var methods: [String]?
    public var upstream: UpstreamURL
    public var stripPrefix = false
    /// A route without `require` is `authenticated`: nothing is public unless a file says so.
    public var requirement: Requirement = .authenticated
    public var forwardAuthorization = false
    public var identityAssertion = false
    /// Match `path` without regard to ASCII case (§6.8), for upstreams that route case-insensitively (Express,
    /// IIS): `/api/ADMIN/x` then falls under `/api/admin`, not under a weaker `/api`.
    public var caseInsensitive = false
    /// Line of the route in its file, for messages about it.
    public var line: Int

    /// Paths the gateway serves itself on every tenant host.
    public static let reservedPrefixes = ["/auth", "/.well-known"]

    static let allowedKeys = [
        "path", "methods", "upstream", "strip_prefix", "require", "forward_authorization", "identity_assertion",
        "case_insensitive",
    ]

    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
}
