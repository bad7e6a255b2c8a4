import GatehouseBrowser
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseProxy
import NIOHTTP1

/// Whether a request may go on, and where to (§3, §6): framing, host, tenant, target, reserved paths, route,
/// method, limits, `Expect`, authentication, the same-site rule of §7, policy and the login redirect. A pure
/// function of the request head and what the gateway knows: no I/O, no state, no metrics; the handler runs what it
/// decides. The one thing it cannot know by itself is a session cookie's session: it asks the handler's lookup
/// (memory), and when that cannot say, returns ``Decision/lookUpSession(tenant:cookies:)`` to be called again with
/// the store's answer.
struct RequestAdmission {
    /// What the gateway knows about the request's session cookie.
    enum SessionInput {
        /// Not known without asking the store.
        case needsStore
        /// The cookie's live session, or nil for none.
        case answered(ActiveSession?)
        /// The store could not say (503).
        case unavailable
    }

    /// A refusal, with what the access log and the metrics name it by.
    struct Rejection {
        var problem: ProblemResponse
        var tenant: Tenant?
        var route: Route?
        var path: String?
        /// How the request authenticated, when it got that far (counted in `gatehouse_auth_total`).
        var authentication: Authentication?
    }

    /// A request admitted to its route's upstream.
    struct Admission {
        var tenant: Tenant
        var route: Route
        var target: RequestTarget
        var framing: RequestFraming
        var authentication: Authentication
        var identityHeaders: [(String, String)]
        var isWebSocket: Bool
    }

    enum Decision {
        case reject(Rejection)
        /// One of the gateway's own endpoints (`/auth/`, `/.well-known/`).
        case endpoint(tenant: Tenant, target: RequestTarget, framing: RequestFraming)
        /// Look the session cookies up in the store, then decide again with the answer.
        case lookUpSession(tenant: Tenant, cookies: [String])
        case proxy(Admission)
    }

    let tenants: TenantDirectory
    let authorizer: RouteAuthorizer
    let limits: GatewayConfiguration.Limits
    let isHTTP2: Bool
    /// `https` when the client connection is TLS (the login redirect's cookie is `Secure`).
    let scheme: String

    /// `session` answers for a tenant's session cookies, when asked (only for a request with no bearer token and a
    /// session cookie on a route that has matched).
    func decide(_ head: HTTPRequestHead, facts: RequestHeaderFacts, session: (Tenant, [String]) -> SessionInput) -> Decision {
        func reject(
            _ problem: ProblemResponse, _ tenant: Tenant? = nil, _ route: Route? = nil, _ path: String? = nil, _ authentication: Authentication? = nil
        ) -> Decision {
            .reject(Rejection(problem: problem, tenant: tenant, route: route, path: path, authentication: authentication))
        }
        // §6.6: one reading of the body's length, or none at all.
        let framing: RequestFraming
        switch RequestFraming.decide(facts, version: head.version) {
        case .success(let decided): framing = decided
        case .failure(let rejection): return reject(ProblemResponse(.badRequest, rejection.description, closeConnection: true))
        }
        guard facts.hostCount == 1, let host = facts.host else {
            return reject(ProblemResponse(.badRequest, facts.hostCount == 0 ? "The request has no Host header." : "The request has more than one Host header."))
        }
        guard let tenant = tenants.resolve(host: host) else {
            return reject(ProblemResponse(.notFound, "No tenant is configured for host '\(TenantDirectory.normalizeHost(host) ?? "(invalid)")'."))
        }
        if facts.authorizationCount > 1 {
            return reject(ProblemResponse(.badRequest, "The request has more than one Authorization header."), tenant)
        }
        let target: RequestTarget
        switch RequestTarget.parse(head.uri) {
        case .success(let parsed): target = parsed
        case .failure(let rejection): return reject(ProblemResponse(.badRequest, rejection.description), tenant)
        }
        if let reserved = RouteConfiguration.reservedPrefixes.first(where: { RoutePath.isPrefix($0, of: target.path) }) {
            guard let methods = AuthEndpoints.methods[target.path] else {
                return reject(
                    ProblemResponse(.notFound, "There is no gateway endpoint at '\(target.path)' (\(reserved) is reserved for the gateway)."), tenant, nil,
                    target.path)
            }
            guard methods.contains(head.method) else {
                let allow = methods.map(\.rawValue).joined(separator: ", ")
                return reject(ProblemResponse(.methodNotAllowed, "'\(target.path)' allows \(allow).", headers: [("Allow", allow)]), tenant, nil, target.path)
            }
            if let declared = facts.contentLength, declared > limits.authBodyBytes {
                return reject(
                    ProblemResponse(
                        .payloadTooLarge, "The request body is \(declared) bytes; the limit for gateway endpoints is \(limits.authBodyBytes) bytes.",
                        closeConnection: true), tenant, nil, target.path)
            }
            return .endpoint(tenant: tenant, target: target, framing: framing)
        }
        guard let route = tenant.routes.match(target.path) else {
            return reject(ProblemResponse(.notFound, "No route of tenant '\(tenant.id)' matches '\(target.path)'."), tenant, nil, target.path)
        }
        guard route.allows(head.method) else {
            return reject(
                ProblemResponse(.methodNotAllowed, "The route '\(route.path)' does not allow \(head.method.rawValue).", headers: [("Allow", route.allowHeader)]),
                tenant, route, target.path)
        }
        if let declared = facts.contentLength, declared > limits.maxBodyBytes {
            return reject(
                ProblemResponse(.payloadTooLarge, "The request body is \(declared) bytes; the limit is \(limits.maxBodyBytes) bytes.", closeConnection: true),
                tenant, route, target.path)
        }
        if facts.expect != nil, !facts.expectsContinue {
            return reject(ProblemResponse(.expectationFailed, "Only 'Expect: 100-continue' is supported."), tenant, route, target.path)
        }

        // §6.3: the bearer token, or failing that the session cookie.
        var authentication = authorizer.authenticate(authorization: facts.authorization, tenant: tenant)
        var presentedSessionCookie = false
        var bySession = false
        if case .anonymous = authentication, !facts.cookies.isEmpty,
            case let cookies = BrowserCookie.values(named: BrowserCookie.session, in: facts.cookies), !cookies.isEmpty
        {
            presentedSessionCookie = true
            switch session(tenant, cookies) {
            case .needsStore:
                return .lookUpSession(tenant: tenant, cookies: cookies)
            case .unavailable:
                return reject(
                    ProblemResponse(.serviceUnavailable, "The identity store is unavailable; try again shortly.", headers: [("Retry-After", "1")]), tenant,
                    route, target.path)
            case .answered(let found):
                if let found {
                    authentication = .valid(found.claims)
                    bySession = true
                }
            }
        }
        let isWebSocket = !isHTTP2 && head.method == .GET && facts.requestsWebSocket
        if bySession, BrowserRules.needsSameSiteOrigin(head.method) || isWebSocket, !Self.isFromTenantSite(facts, tenant: tenant, in: tenants) {
            let what = isWebSocket ? "A WebSocket upgrade" : "A \(head.method.rawValue)"
            return reject(
                ProblemResponse(.forbidden, "\(what) authenticated by the session cookie needs an Origin (or Referer) on one of the tenant's hosts."), tenant,
                route, target.path, authentication)
        }
        let identityHeaders: [(String, String)]
        switch authorizer.authorize(authentication, tenant: tenant, route: route) {
        case .allow(let headers): identityHeaders = headers
        case .deny(let problem):
            if problem.status == .unauthorized, facts.acceptsHTML, head.method == .GET || head.method == .HEAD {
                // A browser without a session goes to the login page, and comes back here afterwards.
                return reject(
                    BrowserRules.loginRedirect(target, clearingCookie: presentedSessionCookie, secure: scheme == "https"), tenant, route, target.path,
                    authentication)
            }
            return reject(problem, tenant, route, target.path, authentication)
        }
        if isWebSocket, framing.hasBody {
            return reject(ProblemResponse(.badRequest, "A WebSocket handshake has no body.", closeConnection: true), tenant, route, target.path, authentication)
        }
        return .proxy(
            Admission(
                tenant: tenant, route: route, target: target, framing: framing, authentication: authentication, identityHeaders: identityHeaders,
                isWebSocket: isWebSocket))
    }

    /// Whether `Origin` (or, lacking it, `Referer`) names one of this tenant's hosts (§7).
    static func isFromTenantSite(_ facts: RequestHeaderFacts, tenant: Tenant, in tenants: TenantDirectory) -> Bool {
        guard let host = RequestOrigin.host(origin: facts.origin, referer: facts.referer) else { return false }
        return tenants.resolve(host: host)?.id == tenant.id
    }
}
