import GatehouseConfiguration

extension IdentityService {
    /// A request presenting more `gatehouse_session` cookies than this has no session: a page that tosses cookies
    /// at a browser must not make the gateway look up an unbounded number of them.
    public static let maximumSessionCookies = 4

    /// The one session among a request's `gatehouse_session` values (§7), from memory only: `.invalid` when none or
    /// more than one of them is a live session, `.unknown` when the store must be asked
    /// (``session(tenant:cookies:)``).
    ///
    /// Choosing "the first" or "the last" cookie would let a sibling subdomain toss its own session cookie in
    /// front of the user's and sign them in as someone else; with exactly one valid session there is no choice.
    public func cachedSession(tenant: TenantConfiguration, cookies: [String]) -> SessionCache.Lookup {
        guard !cookies.isEmpty, cookies.count <= Self.maximumSessionCookies else { return .invalid }
        var found: ActiveSession?
        var needsStore = false
        for cookie in cookies {
            switch cachedSession(tenant: tenant, cookie: cookie) {
            case .valid(let session):
                if let found, found.record.sid != session.record.sid { return .invalid }
                found = session
            case .invalid:
                continue
            case .unknown:
                needsStore = true
            }
        }
        if needsStore { return .unknown }
        return found.map { .valid($0) } ?? .invalid
    }

    /// The one session among a request's `gatehouse_session` values (§7), asking the store about those memory does
    /// not know, with the cookie that names it; nil when none or more than one is live.
    public func sessionCookie(tenant: TenantConfiguration, cookies: [String]) async throws -> (cookie: String, session: ActiveSession)? {
        guard !cookies.isEmpty, cookies.count <= Self.maximumSessionCookies else { return nil }
        var found: (cookie: String, session: ActiveSession)?
        for cookie in cookies {
            guard let session = try await session(tenant: tenant, cookie: cookie) else { continue }
            if let found, found.session.record.sid != session.record.sid { return nil }
            found = (cookie, session)
        }
        return found
    }

    /// ``sessionCookie(tenant:cookies:)`` without the cookie.
    public func session(tenant: TenantConfiguration, cookies: [String]) async throws -> ActiveSession? {
        try await sessionCookie(tenant: tenant, cookies: cookies)?.session
    }
}
