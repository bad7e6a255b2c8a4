import Foundation

/// Where users, logins, refresh tokens, revocations and signing keys live: SQLite (`GatehouseSQLiteStore`) for one
/// host, PostgreSQL (`GatehousePostgresStore`) for several replicas. Both pass the same conformance suite. Every
/// method is async and never blocks its caller's thread; times are seconds since 1970 so that both databases store
/// plain integers. A method that cannot reach the database throws ``IdentityStoreError/unavailable(_:)``.
public protocol IdentityStore: Sendable {
    /// Brings the schema up to date; called once before the store is used (replicas starting together may all
    /// call it: each migration is applied once).
    func prepare() async throws

    /// Hints that something may have changed in the store since the last look (another process's write, a
    /// revocation pushed by the database), for this replica's ``StoreSynchronizer``. One consumer.
    func changeSignals() -> AsyncStream<StoreSignal>

    /// Throws ``IdentityStoreError/emailTaken`` when the tenant already has this email, in any case.
    ///
    /// Every method that changes something takes the audit events (§10) that record the change and stores them in
    /// the same transaction: an event is on record exactly when its change is.
    func insertUser(_ user: UserRecord, audit: [AuditEvent]) async throws
    func user(tenant: String, email: String) async throws -> UserRecord?
    func user(tenant: String, id: String) async throws -> UserRecord?
    func users(tenant: String) async throws -> [UserRecord]
    /// Writes name, roles, password hash and the disabled flag of an existing user. Never `email_verified`, which
    /// only a used code sets (``completeAccountCode(_:now:completion:)``): a copy read before a verification must
    /// not undo it.
    func updateUser(_ user: UserRecord, audit: [AuditEvent]) async throws
    /// Replaces a user's password hash only if it is still `expected` (a re-hash at login must never undo a reset
    /// or a password change that committed meanwhile). Returns whether it did.
    func replacePasswordHash(tenant: String, userID: String, expected: String, replacement: String) async throws -> Bool

    /// Starts a login with its first refresh token.
    func insertLogin(_ login: LoginRecord, refreshToken: RefreshTokenRecord, audit: [AuditEvent]) async throws
    /// Spends a refresh token and stores its replacement, atomically. Presenting a spent token revokes its login
    /// (recording the revocation until `revokeUntil`, and the event `reuseAudit` makes of the spent token).
    func rotateRefreshToken(
        hash: String, tenant: String, replacement: @escaping @Sendable (RefreshTokenRecord) -> RefreshTokenRecord, now: Int64, revokeUntil: Int64,
        reuseAudit: @escaping @Sendable (RefreshTokenRecord) -> AuditEvent?
    ) async throws -> RefreshOutcome
    /// Revokes logins (their refresh tokens stop working) and records them for every replica's proxy path.
    func revokeLogins(_ sids: [String], until: Int64, audit: [AuditEvent]) async throws
    /// The user's live logins.
    func logins(tenant: String, userID: String) async throws -> [LoginRecord]
    func revokeToken(jti: String, until: Int64) async throws
    /// Revocations that still matter at `now` and were committed after the read that returned `cursor` (0: all of
    /// them). Never skips one: a revocation may be returned twice, but one committed late, with an earlier id than
    /// one already read, is still returned. Pass the batch's ``RevocationBatch/cursor`` to the next call.
    func revocations(after cursor: Int64, now: Int64) async throws -> RevocationBatch

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
    func insertSession(_ session: SessionRecord, audit: [AuditEvent]) async throws
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
    func activateSigningKey(_ key: StoredSigningKey, onlyIfNoneActive: Bool, previousVerifiesUntil: Int64, audit: [AuditEvent]) async throws -> Bool

    /// Stores a reset or verification request (§11), replacing the previous one of its address and purpose, and
    /// queues its message, atomically; unless a message for this address (any purpose) was queued less than
    /// `minimumInterval` seconds before `code.createdAt`, in which case nothing changes and it returns false. When
    /// that message was queued is kept apart from the request, so spending a request never lifts the limit.
    func issueAccountCode(_ code: AccountCodeRecord, mail: OutboxMessage, minimumInterval: Int64, audit: [AuditEvent]) async throws -> Bool
    /// The live request of this address and purpose if `codeHash` is its code. A wrong code counts as a failure,
    /// atomically across processes, and the `maximumFailures`th deletes the request (§11: five wrong codes spend it).
    /// Every wrong code (with or without a request, so the answer takes the same work whether the address has an
    /// account) also counts for the address and purpose over a day: after `dailyFailureLimit` of them no code is
    /// accepted for a day, whatever the request (links still work), so replacing requests cannot buy more guesses.
    func checkAccountCode(
        tenant: String, emailKey: String, purpose: AccountCodePurpose, codeHash: String, now: Int64, maximumFailures: Int, dailyFailureLimit: Int
    ) async throws -> AccountCodeCheck
    /// The live request whose link token hashes to `tokenHash`.
    func accountCode(tenant: String, purpose: AccountCodePurpose, tokenHash: String, now: Int64) async throws -> AccountCodeRecord?
    /// Spends `code` (both its code and its link) and applies `completion` to its user, in one transaction. Returns
    /// the logins it revoked, or nil when the request is no longer live (spent, replaced or expired meanwhile) or
    /// its user is gone or disabled: then nothing changes.
    func completeAccountCode(_ code: AccountCodeRecord, now: Int64, completion: AccountCodeCompletion) async throws -> [String]?
    /// Forgets requests that expired before `now`, and the send times and failure counts that no longer matter;
    /// returns how many requests.
    func deleteAccountCodes(expiredBy now: Int64) async throws -> Int

    /// Queues messages that go with no other change.
    func enqueueMail(_ messages: [OutboxMessage]) async throws
    /// Claims up to `limit` messages due at `now` for `lease` seconds: until then no other process (or later call)
    /// claims them, so one message is sent by one replica at a time.
    func claimMail(now: Int64, lease: Int64, limit: Int) async throws -> [OutboxMessage]
    /// Removes a message that was sent, or is given up (with the audit events that say so).
    func finishMail(id: String, audit: [AuditEvent]) async throws
    /// Schedules another attempt at a message.
    func retryMail(id: String, attempts: Int, nextAttemptAt: Int64, lastError: String) async throws
    /// How many messages wait in the outbox.
    func pendingMailCount() async throws -> Int

    /// Records events whose change is already on record, or that change nothing (a refused sign-up, a wrong password).
    func insertAuditEvents(_ events: [AuditEvent]) async throws
    /// The newest `query.limit` events that match, oldest first (`gatehouse audit`).
    func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent]
    /// Deletes events older than `before` (milliseconds since 1970; `audit_retention`); returns how many.
    func deleteAuditEvents(before: Int64) async throws -> Int
}

/// The same calls without audit events, for changes nobody needs to read about (tests, imports that record one
/// event for the whole file).
extension IdentityStore {
    public func insertUser(_ user: UserRecord) async throws { try await insertUser(user, audit: []) }
    public func updateUser(_ user: UserRecord) async throws { try await updateUser(user, audit: []) }
    public func insertLogin(_ login: LoginRecord, refreshToken: RefreshTokenRecord) async throws {
        try await insertLogin(login, refreshToken: refreshToken, audit: [])
    }
    public func rotateRefreshToken(
        hash: String, tenant: String, replacement: @escaping @Sendable (RefreshTokenRecord) -> RefreshTokenRecord, now: Int64, revokeUntil: Int64
    ) async throws -> RefreshOutcome {
        try await rotateRefreshToken(hash: hash, tenant: tenant, replacement: replacement, now: now, revokeUntil: revokeUntil, reuseAudit: { _ in nil })
    }
    public func revokeLogins(_ sids: [String], until: Int64) async throws { try await revokeLogins(sids, until: until, audit: []) }
    public func insertSession(_ session: SessionRecord) async throws { try await insertSession(session, audit: []) }
    public func activateSigningKey(_ key: StoredSigningKey, onlyIfNoneActive: Bool, previousVerifiesUntil: Int64) async throws -> Bool {
        try await activateSigningKey(key, onlyIfNoneActive: onlyIfNoneActive, previousVerifiesUntil: previousVerifiesUntil, audit: [])
    }
}

/// A catch-up read of revocations and where the next one continues.
public struct RevocationBatch: Sendable, Equatable {
    public var records: [RevocationRecord]
    public var cursor: Int64

    public init(records: [RevocationRecord], cursor: Int64) {
        self.records = records
        self.cursor = cursor
    }
}

/// What a store tells its replica's synchroniser between catch-up reads.
public enum StoreSignal: Sendable, Equatable {
    /// Revocations the database pushed as they committed (PostgreSQL `NOTIFY`): apply them now, no query needed.
    case revoked([RevocationRecord])
    /// Something changed (another process wrote): read revocations now.
    case changed
    /// A tenant's signing keys changed (a rotation, or another replica's first key): reload them now.
    case keysChanged
    /// The connection that carries signals is lost: signals may be missed until ``reconnected``.
    case disconnected(reason: String)
    /// It is back: anything may have been missed meanwhile, so the replica reloads every live revocation before it
    /// calls itself in sync.
    case reconnected
}

/// Users whose stored addresses became one address when the store moved to canonical addresses (§5): none of them
/// can log in with it until an operator removes or renames all but one.
public struct EmailConflict: Sendable, Equatable {
    public var tenant: String
    /// The canonical address they share.
    public var email: String
    public var userIDs: [String]

    public init(tenant: String, email: String, userIDs: [String]) {
        self.tenant = tenant
        self.email = email
        self.userIDs = userIDs
    }

    /// One line for an operator: what collided and what to do.
    public var explanation: String {
        "tenant \(tenant): \(userIDs.count) accounts share the address \(email) once it is in canonical form (user ids "
            + userIDs.joined(separator: ", ") + "); none of them can log in until all but one are disabled and renamed"
    }
}

/// The store's answer to ``IdentityStore/reserveLoginAttempt(tenant:emailKey:at:windowStart:limit:)``.
public enum LoginAttemptReservation: Sendable, Equatable {
    /// The attempt may check the password; `failures` is how many the window holds with it, so the attempt that
    /// makes it `limit` knows, atomically, that a failure now locks the address (the `lockout` event).
    case reserved(failures: Int)
    /// The window is full; the oldest failure in it is at `oldest` (for `Retry-After`).
    case full(oldest: Int64)
}
