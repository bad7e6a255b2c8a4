import Foundation
import GatehouseConfiguration
import GatehouseTokens

/// A browser session just started: the cookie value to hand to the browser (known nowhere else) and the session.
public struct SessionGrant: Sendable {
    public var cookieValue: String
    public var session: ActiveSession
}

/// Browser sessions (§7): server-side, revocable, with an idle and an absolute lifetime from the tenant file.
extension IdentityService {
    /// Checks the password and starts a browser session.
    public func logInToSession(tenant: TenantConfiguration, email: String, password: String, context: AuditContext = .system) async throws
        -> SessionGrant
    {
        let user = try await verifiedUser(tenant: tenant, email: email, password: password, context: context)
        let grant = try await startSession(tenant: tenant, user: user, isLogin: true, context: context)
        do {
            try await confirmPasswordUnchanged(user, sid: grant.session.record.sid, tenant: tenant)
        } catch {
            sessions.remove(hash: grant.session.record.hash)
            throw error
        }
        return grant
    }

    /// Starts a session for a user whose password was just checked (`login` and `session_start` are recorded with
    /// it when `isLogin`; after a sign-up, `session_start` alone).
    public func startSession(tenant: TenantConfiguration, user: UserRecord, isLogin: Bool = false, context: AuditContext = .system) async throws
        -> SessionGrant
    {
        let now = Self.now()
        let cookie = Self.randomToken()
        let record = SessionRecord(
            hash: Self.hashToken(cookie), tenant: tenant.id, sid: UUID().uuidString.lowercased(), userID: user.id, createdAt: now,
            lastSeenAt: now, expiresAt: now + Int64(tenant.session.absoluteTimeout.components.seconds))
        // One time for both, so the trail (ordered by time) lists the login before the session it started.
        let time = AuditEvent.nowMilliseconds()
        var audit = [AuditEvent(.sessionStart, tenant: tenant.id, context: context, userID: user.id, email: user.email, sid: record.sid, time: time)]
        if isLogin {
            audit.insert(AuditEvent(.login, tenant: tenant.id, context: context, userID: user.id, email: user.email, sid: record.sid, time: time), at: 0)
        }
        try await store.insertSession(record, audit: audit)
        auditLog.write(audit)
        let session = ActiveSession(record: record, claims: Self.claims(of: record, user: user, tenant: tenant))
        sessions.insert(session, now: now)
        return SessionGrant(cookieValue: cookie, session: session)
    }

    /// The session a cookie names, from memory, without waiting: `.unknown` means ask ``session(tenant:cookie:)``.
    /// A use that should slide the stored idle timeout is written in the background.
    public func cachedSession(tenant: TenantConfiguration, cookie: String) -> SessionCache.Lookup {
        guard Self.isWellFormedToken(cookie) else { return .invalid }
        let hash = Self.hashToken(cookie)
        let (lookup, touch) = sessions.use(
            hash: hash, tenant: tenant.id, idleTimeout: Int64(tenant.session.idleTimeout.components.seconds), now: Self.now(), revocations: revocations)
        if touch, case .valid(let session) = lookup { recordUse(hash: hash, at: session.record.lastSeenAt) }
        return lookup
    }

    /// The session a cookie names, asking the store when memory does not know it; nil when there is none, or it
    /// expired, idled out or was revoked, or its user was disabled.
    public func session(tenant: TenantConfiguration, cookie: String) async throws -> ActiveSession? {
        switch cachedSession(tenant: tenant, cookie: cookie) {
        case .valid(let session): return session
        case .invalid: return nil
        case .unknown: break
        }
        let hash = Self.hashToken(cookie)
        let now = Self.now()
        guard var record = try await store.session(hash: hash, tenant: tenant.id), !revocations.isRevoked(login: record.sid),
            now < record.expiresAt, now - record.lastSeenAt <= Int64(tenant.session.idleTimeout.components.seconds),
            let user = try await store.user(tenant: tenant.id, id: record.userID), !user.disabled
        else {
            sessions.remove(hash: hash)
            return nil
        }
        if now - record.lastSeenAt >= SessionCache.touchInterval(idleTimeout: Int64(tenant.session.idleTimeout.components.seconds)) {
            record.lastSeenAt = now
            try await store.touchSession(hash: hash, lastSeenAt: now)
        }
        let session = ActiveSession(record: record, claims: Self.claims(of: record, user: user, tenant: tenant))
        sessions.insert(session, now: now)
        return session
    }

    /// Ends the session a cookie names, for every replica (its login is revoked through the store). Returns
    /// whether there was a live one.
    @discardableResult
    public func endSession(tenant: TenantConfiguration, cookie: String, context: AuditContext = .system) async throws -> Bool {
        guard Self.isWellFormedToken(cookie) else { return false }
        let hash = Self.hashToken(cookie)
        sessions.remove(hash: hash)
        guard let record = try await store.session(hash: hash, tenant: tenant.id) else { return false }
        // Every replica re-reads a cached session from the store within `freshness`, and the store says it is
        // revoked from now on, so the in-memory record only has to outlive the caches.
        let until = Self.now() + sessions.freshness + 300
        revocations.revoke(.login, record.sid, until: until)
        let audit = [AuditEvent(.sessionEnd, tenant: tenant.id, context: context, userID: record.userID, sid: record.sid)]
        try await store.revokeLogins([record.sid], until: until, audit: audit)
        auditLog.write(audit)
        return true
    }

    /// Forgets the tenant's sessions that can no longer be used.
    public func purgeSessions(tenant: TenantConfiguration) async throws -> Int {
        // Lockout failures outside the window count for nothing any more (those of addresses never tried again
        // would otherwise stay forever).
        _ = try await store.deleteLoginFailures(tenant: tenant.id, before: Self.now() - Int64(tenant.lockout.window.components.seconds))
        let now = Self.now()
        return try await store.deleteSessions(
            expiredBy: now, idleBefore: now - Int64(tenant.session.idleTimeout.components.seconds), tenant: tenant.id)
    }

    private func recordUse(hash: String, at time: Int64) {
        let store = self.store
        let logger = self.logger
        Task {
            do {
                try await store.touchSession(hash: hash, lastSeenAt: time)
            } catch {
                // The session stays valid; its stored idle time is a little behind and the next use retries.
                logger.warning("could not record a session's use", metadata: ["error": "\(error)"])
            }
        }
    }

    static func claims(of session: SessionRecord, user: UserRecord, tenant: TenantConfiguration) -> AccessTokenClaims {
        AccessTokenClaims(
            iss: tenant.issuer, aud: tenant.audience, sub: user.id, email: user.email, emailVerified: user.emailVerified, name: user.name, roles: user.roles, tenant: tenant.id,
            sid: session.sid, iat: session.createdAt, exp: session.expiresAt, jti: "")
    }

    /// Whether a presented value could be one of our random tokens (43 base64url characters): anything else is
    /// refused before it costs a hash or a store query.
    static func isWellFormedToken(_ value: String) -> Bool {
        value.utf8.count == 43
            && value.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F
            }
    }
}
