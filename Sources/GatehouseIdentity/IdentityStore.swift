import Foundation

/// Where users, logins, refresh tokens, revocations and signing keys live. SQLite (``SQLiteIdentityStore``) for one
/// gateway; PostgreSQL for several replicas. Every method is async and never blocks its caller's thread; times are
/// seconds since 1970 so that both databases store plain integers.
public protocol IdentityStore: Sendable {
    /// Throws ``IdentityStoreError/emailTaken`` when the tenant already has this email, in any case.
    func insertUser(_ user: UserRecord) async throws
    func user(tenant: String, email: String) async throws -> UserRecord?
    func user(tenant: String, id: String) async throws -> UserRecord?
    func users(tenant: String) async throws -> [UserRecord]
    /// Writes name, roles, password hash and the disabled flag of an existing user.
    func updateUser(_ user: UserRecord) async throws

    /// Starts a login with its first refresh token.
    func insertLogin(_ login: LoginRecord, refreshToken: RefreshTokenRecord) async throws
    /// Spends a refresh token and stores its replacement, atomically. Presenting a spent token revokes its login
    /// (recording the revocation until `revokeUntil`).
    func rotateRefreshToken(hash: String, tenant: String, replacement: @Sendable (RefreshTokenRecord) -> RefreshTokenRecord, now: Int64, revokeUntil: Int64)
        async throws -> RefreshOutcome
    /// Revokes logins (their refresh tokens stop working) and records them for every replica's proxy path.
    func revokeLogins(_ sids: [String], until: Int64) async throws
    /// The user's live logins.
    func logins(tenant: String, userID: String) async throws -> [LoginRecord]
    func revokeToken(jti: String, until: Int64) async throws
    /// Revocations recorded after `id` that still matter at `now`, in order.
    func revocations(after id: Int64, now: Int64) async throws -> [RevocationRecord]

    /// Reserves one password check for (tenant, emailKey) before it is made (§5): atomically, and across every
    /// process sharing the store, forgets failures older than `windowStart` and records this attempt as a failure
    /// unless `limit` are recorded already. A check that then succeeds clears them (``clearLoginFailures``); one
    /// that fails leaves its reservation standing. However many attempts arrive at once, at most `limit` are
    /// evaluated per window.
    func reserveLoginAttempt(tenant: String, emailKey: String, at: Int64, windowStart: Int64, limit: Int) async throws -> LoginAttemptReservation
    /// Gives back a reservation made at `at` whose password was never checked (the hashing queue was full), so a
    /// flood that fills the queue cannot lock users out.
    func releaseLoginAttempt(tenant: String, emailKey: String, at: Int64) async throws
    func loginFailures(tenant: String, emailKey: String, since: Int64) async throws -> [Int64]
    /// Forgets a tenant's failures recorded before `before` (the periodic purge); returns how many.
    func deleteLoginFailures(tenant: String, before: Int64) async throws -> Int
    /// Accounts the move to canonical addresses found sharing one address (migration v3).
    func emailConflicts() async throws -> [EmailConflict]
    func clearLoginFailures(tenant: String, emailKey: String) async throws

    /// Starts a browser session: its login and the session itself.
    func insertSession(_ session: SessionRecord) async throws
    /// The session with this hash at this tenant, unless its login was revoked.
    func session(hash: String, tenant: String) async throws -> SessionRecord?
    /// Slides the idle timeout: records a later use (never an earlier one; replicas race).
    func touchSession(hash: String, lastSeenAt: Int64) async throws
    /// Deletes sessions past their absolute end, or idle since before `idleBefore`; returns how many.
    func deleteSessions(expiredBy now: Int64, idleBefore: Int64, tenant: String) async throws -> Int

    func signingKeys(tenant: String) async throws -> [StoredSigningKey]
    func allSigningKeys() async throws -> [StoredSigningKey]
    /// Makes `key` the tenant's active key. When `onlyIfNoneActive`, does nothing if another replica got there
    /// first (returns false); otherwise retires the active key, which verifies until `previousVerifiesUntil`.
    func activateSigningKey(_ key: StoredSigningKey, onlyIfNoneActive: Bool, previousVerifiesUntil: Int64) async throws -> Bool
}

/// Users whose stored addresses became one address when the store moved to canonical addresses (§5): none of them
/// can log in with it until an operator removes or renames all but one.
public struct EmailConflict: Sendable, Equatable {
    public var tenant: String
    /// The canonical address they share.
    public var email: String
    public var userIDs: [String]

    /// One line for an operator: what collided and what to do.
    public var explanation: String {
        "tenant \(tenant): \(userIDs.count) accounts share the address \(email) once it is in canonical form (user ids "
            + userIDs.joined(separator: ", ") + "); none of them can log in until all but one are disabled and renamed"
    }
}

/// The store's answer to ``IdentityStore/reserveLoginAttempt(tenant:emailKey:at:windowStart:limit:)``.
public enum LoginAttemptReservation: Sendable, Equatable {
    /// The attempt may check the password.
    case reserved
    /// The window is full; the oldest failure in it is at `oldest` (for `Retry-After`).
    case full(oldest: Int64)
}
