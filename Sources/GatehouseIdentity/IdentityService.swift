import CoreMetrics
import Crypto
import Foundation
import GatehouseConfiguration
import GatehouseTokens
import Logging
import Synchronization

/// Why an identity operation was refused; the server maps each case to its status and body (§4).
public enum IdentityError: Error, Equatable, Sendable {
    case invalidEmail
    case passwordTooShort(minimum: Int)
    case passwordTooLong
    case emailTaken
    case signupDisabled
    case domainNotAllowed
    /// Unknown email, wrong password or disabled user: deliberately one case.
    case invalidCredentials
    case lockedOut(retryAfter: Int)
    case invalidRefreshToken
    case overloaded
    case unknownUser
    /// A role name outside `[A-Za-z0-9_.:-]{1,64}` (§5).
    case invalidRole(String)
    /// A display name with a control character, or too long.
    case invalidName
    /// A reset or verification code or link that is wrong, spent, replaced or expired (§11).
    case invalidAccountCode
    /// A code that is not 8 digits.
    case malformedCode
    /// The tenant has `password_reset.enabled: false`, or the process no e-mail transport.
    case passwordResetDisabled
    /// The right password, but the tenant requires a verified address and this one is not (§11).
    case emailUnverified
}

/// The token response of §4.
public struct TokenGrant: Sendable, Equatable {
    public var accessToken: String
    public var expiresIn: Int
    public var refreshToken: String
    public var claims: AccessTokenClaims
}

/// Sign-up, login, refresh, logout and password change for every tenant, on top of a store, the hashing pool
/// and the tenants' keys. Revocations are applied to this process's ``RevocationList`` at once and recorded in
/// the store for other replicas.
public final class IdentityService: Sendable {
    public static let maximumPasswordBytes = 1024

    public let store: any IdentityStore
    public let keys: SigningKeyManager
    public let revocations: RevocationList
    /// Browser sessions used recently by this process.
    public let sessions: SessionCache
    /// Whether this replica's view of the store is current (``StoreSynchronizer`` keeps it).
    public let health = StoreHealth()
    /// The key of the HTML forms' CSRF tokens, derived from the master key so every replica accepts every other's forms.
    public let formTokenKey: SymmetricKey
    private let hasher: PasswordHasher
    private let pool: HashingPool
    /// A hash of a random password, verified when the email is unknown so that answer costs the same time.
    private let decoyHash: String

    /// For failures of background work no request waits for (a session's idle-time update).
    let logger: Logger
    /// `gatehouse_revocation_lag_seconds`: from a revocation's commit (its `recorded_at_ms`) to this process applying it.
    private let revocationLag: CoreMetrics.Timer?
    /// Where audit lines go once their events are stored (`audit_log`).
    public let auditLog: AuditLog
    /// Account e-mail (§11): sender, keys, templates and the queue of requests.
    public let accountMail: AccountMail
    private let refusalThrottle = AuditThrottle()

    /// Password hashes queued or running now.
    public var passwordHashQueueDepth: Int { pool.depth }

    public init(
        store: any IdentityStore, keys: SigningKeyManager, revocations: RevocationList, hasher: PasswordHasher, pool: HashingPool,
        sessions: SessionCache = SessionCache(), formTokenKey: SymmetricKey = SymmetricKey(size: .bits256),
        revocationLag: CoreMetrics.Timer? = nil, auditLog: AuditLog = .off, accountMail: AccountMail = .off(),
        logger: Logger = Logger(label: "gatehouse.identity")
    ) {
        self.accountMail = accountMail
        self.logger = logger
        self.auditLog = auditLog
        self.revocationLag = revocationLag
        self.store = store
        self.keys = keys
        self.revocations = revocations
        self.sessions = sessions
        self.formTokenKey = formTokenKey
        self.hasher = hasher
        self.pool = pool
        self.decoyHash = hasher.hash(UUID().uuidString)
    }

    // MARK: Sign-up and login

    public func signUp(tenant: TenantConfiguration, email: String, password: String, name: String?, context: AuditContext = .system) async throws
        -> UserRecord
    {
        do {
            let user = try await createAccount(tenant: tenant, email: email, password: password, name: name, context: context)
            if tenant.email.sendsVerification && accountMail.defaultFrom != nil {
                do {
                    try await issueAccountCode(.verify, tenant: tenant, user: user, context: context)
                } catch {
                    // The account exists; the user can ask for the message again.
                    logger.error(
                        "the verification message of a new account could not be queued",
                        metadata: ["tenant": "\(tenant.id)", "error": "\(IdentityStoreError.reason(of: error))"])
                }
            }
            return user
        } catch let error as IdentityError {
            await recordRefusedSignup(error, tenant: tenant, email: email, context: context)
            throw error
        } catch IdentityStoreError.emailTaken {
            await recordRefusedSignup(.emailTaken, tenant: tenant, email: email, context: context)
            throw IdentityStoreError.emailTaken
        }
    }

    private func recordRefusedSignup(_ error: IdentityError, tenant: TenantConfiguration, email: String, context: AuditContext) async {
        // A full hashing queue is load, not a security event.
        if case .overloaded = error { return }
        // The address as typed only if it is one: a password pasted into the email field must not reach the trail.
        await recordRefusal(
            AuditEvent(.signupError, tenant: tenant.id, context: context, email: EmailAddress(email)?.canonical, error: Self.auditReason(error)))
    }

    private func createAccount(tenant: TenantConfiguration, email: String, password: String, name: String?, context: AuditContext) async throws
        -> UserRecord
    {
        guard tenant.signup.enabled else { throw IdentityError.signupDisabled }
        guard let address = EmailAddress(email) else { throw IdentityError.invalidEmail }
        try Self.checkName(name ?? "")
        try Self.checkPassword(password, tenant: tenant)
        if !tenant.signup.allowedEmailDomains.isEmpty,
            !tenant.signup.allowedEmailDomains.contains(where: { EmailAddress.canonicalize($0) == address.domain })
        {
            throw IdentityError.domainNotAllowed
        }
        if try await store.user(tenant: tenant.id, email: address.canonical) != nil { throw IdentityError.emailTaken }
        let hash = try await hashOnPool(password)
        let user = UserRecord(
            tenant: tenant.id, email: address.canonical, name: name ?? "", roles: tenant.signup.defaultRoles, passwordHash: hash,
            createdAt: Self.now())
        try await insert(user, audit: [AuditEvent(.signup, tenant: tenant.id, context: context, userID: user.id, email: user.email)])
        return user
    }

    /// Refuses a role name outside §5's alphabet, the same check the tenant parser makes.
    public static func checkRoles(_ roles: [String]) throws {
        if let bad = roles.first(where: { !RoleName.isValid($0) }) { throw IdentityError.invalidRole(bad) }
    }

    /// Refuses a display name with a control character (a NUL would cut it in some stores, a newline would forge
    /// a header line), or longer than 256 bytes.
    public static func checkName(_ name: String) throws {
        guard name.utf8.count <= 256, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw IdentityError.invalidName
        }
    }

    /// Adds a user regardless of the signup settings (the `users add` command).
    public func addUser(tenant: TenantConfiguration, email: String, password: String, name: String, roles: [String], context: AuditContext = .cli)
        async throws -> UserRecord
    {
        try Self.checkRoles(roles)
        guard let address = EmailAddress(email) else { throw IdentityError.invalidEmail }
        try Self.checkName(name)
        try Self.checkPassword(password, tenant: tenant)
        let user = UserRecord(
            tenant: tenant.id, email: address.canonical, name: name, roles: roles, passwordHash: try await hashOnPool(password), emailVerified: true,
            createdAt: Self.now())
        try await insert(
            user, audit: [AuditEvent(.userAdded, tenant: tenant.id, context: context, userID: user.id, email: user.email, details: ["roles": roles.joined(separator: ",")])])
        return user
    }

    /// Checks the password and starts a login. Under lockout no hash is computed at all.
    public func logIn(tenant: TenantConfiguration, email: String, password: String, context: AuditContext = .system) async throws -> TokenGrant {
        let user = try await verifiedUser(tenant: tenant, email: email, password: password, context: context)
        return try await startLogin(tenant: tenant, user: user, context: context)
    }

    /// The user whose email and password these are, with lockout (§4): unknown email, wrong password and disabled
    /// user fail alike, after the same work. A hash made under older parameters is replaced.
    func verifiedUser(tenant: TenantConfiguration, email: String, password: String, context: AuditContext) async throws -> UserRecord {
        guard let address = EmailAddress(email) else {
            // No account can have this address: nothing to guess, so nothing is recorded (a junk address must not
            // write a lockout row per request); the same work as a wrong password keeps the answer's timing.
            if password.utf8.count <= Self.maximumPasswordBytes { _ = try await verifyOnPool(password, against: decoyHash) }
            throw IdentityError.invalidCredentials
        }
        let emailKey = address.canonical
        // The attempt is counted before the password is checked, atomically in the store (§5).
        let reservedAt: Int64
        let failuresWithThis: Int
        do {
            (reservedAt, failuresWithThis) = try await reserveAttempt(tenant: tenant, emailKey: emailKey)
        } catch IdentityError.lockedOut(let retryAfter) {
            // No hash, no change: a flood at a locked address stores one such event per address and client a minute.
            await recordRefusal(AuditEvent(.loginError, tenant: tenant.id, context: context, email: emailKey, error: "locked"))
            throw IdentityError.lockedOut(retryAfter: retryAfter)
        }
        let user = try await store.user(tenant: tenant.id, email: email)
        let passwordTooLong = password.utf8.count > Self.maximumPasswordBytes
        let stored = user?.passwordHash ?? decoyHash
        let verification = passwordTooLong ? .mismatch : try await verifyReserved(password, against: stored, tenant: tenant, emailKey: emailKey, reservedAt: reservedAt)
        guard var user, !user.disabled, verification != .mismatch else {
            // The reservation stays as the failure. The one that reaches the limit still answers 401; the attempts
            // after it get 429 without a hash.
            let reason = user?.disabled == true && verification != .mismatch ? "disabled" : "invalid_credentials"
            await recordFailedCheck(
                tenant: tenant, emailKey: emailKey, userID: user?.id, reason: reason, locks: failuresWithThis >= tenant.lockout.maxFailures,
                context: context)
            throw IdentityError.invalidCredentials
        }
        try await store.clearLoginFailures(tenant: tenant.id, emailKey: emailKey)
        // Only after the right password: nobody else learns whether the address is verified, or exists.
        if tenant.email.verification == .required && !user.emailVerified {
            await recordEvents([AuditEvent(.loginError, tenant: tenant.id, context: context, userID: user.id, email: user.email, error: "unverified")])
            throw IdentityError.emailUnverified
        }
        if verification == .matchNeedsRehash {
            let rehashed = try await hashOnPool(password)
            // Only over the hash just checked: a reset or password change that committed meanwhile wins.
            guard try await store.replacePasswordHash(tenant: tenant.id, userID: user.id, expected: user.passwordHash, replacement: rehashed) else {
                throw IdentityError.invalidCredentials
            }
            user.passwordHash = rehashed
        }
        return user
    }

    /// Closes the window between checking a password and starting its login: a reset (or password change) that
    /// committed in between revoked every login it found, but not this one, which did not exist yet. So once the
    /// login is stored the password is read again; if it changed, the new login is revoked at once. A reset that
    /// commits after this read finds the login and revokes it itself.
    func confirmPasswordUnchanged(_ user: UserRecord, sid: String, tenant: TenantConfiguration) async throws {
        guard let current = try await store.user(tenant: tenant.id, id: user.id), current.passwordHash == user.passwordHash, !current.disabled else {
            try await revokeLogins([sid], tenant: tenant)
            throw IdentityError.invalidCredentials
        }
    }

    /// Checks a password whose attempt is reserved; when the hashing queue is full the password was never
    /// evaluated, so the reservation is given back before the 503.
    private func verifyReserved(_ password: String, against stored: String, tenant: TenantConfiguration, emailKey: String, reservedAt: Int64)
        async throws -> PasswordHasher.Verification
    {
        do {
            return try await verifyOnPool(password, against: stored)
        } catch IdentityError.overloaded {
            try await store.releaseLoginAttempt(tenant: tenant.id, emailKey: emailKey, at: reservedAt)
            throw IdentityError.overloaded
        }
    }

    /// `login_error`, and `lockout` when this failure's reservation filled the window (`locks`, decided inside the
    /// reservation's transaction, so two failures at once cannot both lock): the next attempt will be refused.
    private func recordFailedCheck(
        tenant: TenantConfiguration, emailKey: String, userID: String?, reason: String, locks: Bool, context: AuditContext,
        details: [String: String]? = nil
    ) async {
        var events = [AuditEvent(.loginError, tenant: tenant.id, context: context, userID: userID, email: emailKey, error: reason, details: details)]
        if locks {
            events.append(
                AuditEvent(
                    .lockout, tenant: tenant.id, context: context, userID: userID, email: emailKey,
                    details: ["failures": String(tenant.lockout.maxFailures)]))
        }
        await recordEvents(events)
    }

    /// Reserves a password check for this address, or throws ``IdentityError/lockedOut(retryAfter:)`` when the
    /// window already holds `max_failures` failures. Returns the time the reservation was recorded at, and how many
    /// failures the window holds with it.
    func reserveAttempt(tenant: TenantConfiguration, emailKey: String) async throws -> (at: Int64, failures: Int) {
        let now = Self.now()
        let window = Int64(tenant.lockout.window.components.seconds)
        let reservation = try await store.reserveLoginAttempt(
            tenant: tenant.id, emailKey: emailKey, at: now, windowStart: now - window, limit: tenant.lockout.maxFailures)
        switch reservation {
        case .full(let oldest): throw IdentityError.lockedOut(retryAfter: Int(max(1, oldest + window - now)))
        case .reserved(let failures): return (now, failures)
        }
    }

    /// Spends a refresh token for a new pair. A spent token presented again revokes its whole login.
    public func refresh(tenant: TenantConfiguration, refreshToken: String, context: AuditContext = .system) async throws -> TokenGrant {
        let now = Self.now()
        let ttl = Int64(tenant.tokens.refreshTTL.components.seconds)
        let newToken = Self.randomToken()
        let newHash = Self.hashToken(newToken)
        let reuse = RecordedEvent()
        let outcome = try await store.rotateRefreshToken(
            hash: Self.hashToken(refreshToken), tenant: tenant.id,
            replacement: { spent in
                RefreshTokenRecord(hash: newHash, tenant: spent.tenant, sid: spent.sid, userID: spent.userID, expiresAt: now + ttl)
            }, now: now, revokeUntil: revocationHorizon(tenant, now: now),
            reuseAudit: { spent in
                let event = AuditEvent(.refreshReuse, tenant: spent.tenant, context: context, userID: spent.userID, sid: spent.sid)
                reuse.event = event
                return event
            })
        switch outcome {
        case .invalid:
            throw IdentityError.invalidRefreshToken
        case .reused(let sid):
            revocations.revoke(.login, sid, until: revocationHorizon(tenant, now: now))
            // The event was stored with the revocation; the same one goes to the log.
            if let event = reuse.event { auditLog.write([event]) }
            throw IdentityError.invalidRefreshToken
        case .rotated(let record):
            guard let user = try await store.user(tenant: tenant.id, id: record.userID), !user.disabled else {
                try await revokeLogins([record.sid], tenant: tenant)
                throw IdentityError.invalidRefreshToken
            }
            return try await issue(tenant: tenant, user: user, sid: record.sid, refreshToken: newToken, now: now)
        }
    }

    /// Ends the login an access token belongs to, and that token itself.
    public func logOut(tenant: TenantConfiguration, claims: AccessTokenClaims, context: AuditContext = .system) async throws {
        let until = revocationHorizon(tenant, now: Self.now())
        revocations.revoke(.tokenID, claims.jti, until: until)
        try await store.revokeToken(jti: claims.jti, until: until)
        try await revokeLogins(
            [claims.sid], tenant: tenant,
            audit: [AuditEvent(.logout, tenant: tenant.id, context: context, userID: claims.sub, email: claims.email, sid: claims.sid)])
    }

    public func user(tenant: TenantConfiguration, claims: AccessTokenClaims) async throws -> UserRecord {
        guard let user = try await store.user(tenant: tenant.id, id: claims.sub), !user.disabled else { throw IdentityError.unknownUser }
        return user
    }

    /// Changes the password and revokes every other login of the user.
    public func changePassword(tenant: TenantConfiguration, claims: AccessTokenClaims, current: String, new: String, context: AuditContext = .system)
        async throws
    {
        var user = try await user(tenant: tenant, claims: claims)
        // A wrong current password counts like a failed login (§5): a stolen token is no password oracle.
        let emailKey = UserRecord.emailKey(user.email)
        let (reservedAt, failuresWithThis) = try await reserveAttempt(tenant: tenant, emailKey: emailKey)
        guard current.utf8.count <= Self.maximumPasswordBytes,
            try await verifyReserved(current, against: user.passwordHash, tenant: tenant, emailKey: emailKey, reservedAt: reservedAt) != .mismatch
        else {
            await recordFailedCheck(
                tenant: tenant, emailKey: emailKey, userID: user.id, reason: "invalid_credentials", locks: failuresWithThis >= tenant.lockout.maxFailures,
                context: context, details: ["during": "password_change"])
            throw IdentityError.invalidCredentials
        }
        try await store.clearLoginFailures(tenant: tenant.id, emailKey: emailKey)
        try Self.checkPassword(new, tenant: tenant)
        user.passwordHash = try await hashOnPool(new)
        try await update(
            user, audit: [AuditEvent(.passwordChange, tenant: tenant.id, context: context, userID: user.id, email: user.email, sid: claims.sid)])
        let others = try await store.logins(tenant: tenant.id, userID: user.id).map(\.sid).filter { $0 != claims.sid }
        try await revokeLogins(others, tenant: tenant)
    }

    /// Disables (or re-enables) a user; disabling revokes all of their logins at once.
    public func setDisabled(tenant: TenantConfiguration, email: String, disabled: Bool, context: AuditContext = .cli) async throws {
        guard var user = try await store.user(tenant: tenant.id, email: email) else { throw IdentityError.unknownUser }
        user.disabled = disabled
        try await update(
            user,
            audit: disabled ? [AuditEvent(.userDisabled, tenant: tenant.id, context: context, userID: user.id, email: user.email)] : [])
        if disabled {
            try await revokeLogins(try await store.logins(tenant: tenant.id, userID: user.id).map(\.sid), tenant: tenant)
        }
    }

    public func setRoles(tenant: TenantConfiguration, email: String, roles: [String], context: AuditContext = .cli) async throws {
        try Self.checkRoles(roles)
        guard var user = try await store.user(tenant: tenant.id, email: email) else { throw IdentityError.unknownUser }
        let previous = user.roles
        user.roles = roles
        try await update(
            user,
            audit: [
                AuditEvent(
                    .rolesChanged, tenant: tenant.id, context: context, userID: user.id, email: user.email,
                    details: ["roles": roles.joined(separator: ","), "previous": previous.joined(separator: ",")])
            ])
    }

    /// Makes a new signing key for the tenant (`keys rotate`), recording `key_rotated`.
    @discardableResult
    public func rotateKey(tenant: TenantConfiguration, context: AuditContext = .cli) async throws -> String {
        let auditLog = self.auditLog
        return try await keys.rotate(tenant, audit: AuditEvent(.keyRotated, tenant: tenant.id, context: context), committed: { auditLog.write($0) })
    }

    /// Records `users_imported` once an import has stored its users (each in a transaction of its own).
    public func recordImport(tenant: TenantConfiguration, count: Int, skipped: Int, context: AuditContext = .cli) async {
        await recordEvents([
            AuditEvent(.usersImported, tenant: tenant.id, context: context, details: ["imported": String(count), "skipped": String(skipped)])
        ])
    }

    // MARK: Audit

    /// Stores events that go with no change of their own (or whose change is stored already), then writes them to
    /// the audit log. A store that fails here does not change the answer the request gets: the failure is logged,
    /// and the line still goes to the audit log.
    func recordEvents(_ events: [AuditEvent]) async {
        do {
            try await store.insertAuditEvents(events)
        } catch {
            logger.error(
                "audit events could not be stored; they are on the audit log only",
                metadata: ["events": "\(events.map(\.event.rawValue))", "error": "\(IdentityStoreError.reason(of: error))"])
        }
        auditLog.write(events)
    }

    /// A refusal that cost nothing and changed nothing (a refused sign-up, an attempt at a locked address): stored
    /// at most once a minute per (tenant, event, error, client or address), so a flood cannot fill the store.
    /// The next one stored says how many were left out.
    func recordRefusal(_ event: AuditEvent) async {
        guard let suppressed = refusalThrottle.admit(event) else { return }
        var event = event
        if suppressed > 0 { event.details = (event.details ?? [:]).merging(["suppressed": String(suppressed)]) { $1 } }
        await recordEvents([event])
    }

    /// The reason of a refused sign-up, as the audit trail names it.
    static func auditReason(_ error: IdentityError) -> String {
        switch error {
        case .invalidEmail: "invalid_email"
        case .passwordTooShort: "password_too_short"
        case .passwordTooLong: "password_too_long"
        case .emailTaken: "email_taken"
        case .signupDisabled: "signup_disabled"
        case .domainNotAllowed: "domain_not_allowed"
        case .invalidCredentials: "invalid_credentials"
        case .lockedOut: "locked"
        case .invalidRefreshToken: "invalid_refresh_token"
        case .overloaded: "overloaded"
        case .unknownUser: "unknown_user"
        case .invalidRole: "invalid_role"
        case .invalidName: "invalid_name"
        case .invalidAccountCode: "invalid_code"
        case .malformedCode: "malformed_code"
        case .passwordResetDisabled: "password_reset_disabled"
        case .emailUnverified: "unverified"
        }
    }

    private func update(_ user: UserRecord, audit: [AuditEvent]) async throws {
        try await store.updateUser(user, audit: audit)
        auditLog.write(audit)
    }

    /// Stops the hashing threads.
    public func shutdown() async throws {
        try await pool.shutdown()
    }

    // MARK: Revocation

    /// Brings this process's revocation list up to date with the store (revocations by other replicas or the CLI).
    /// Returns the cursor to continue from.
    /// `measuringLag`: whether revocations new to this process count in `gatehouse_revocation_lag_seconds` (not at
    /// start-up, when every revocation on record is new here).
    public func syncRevocations(after cursor: Int64, measuringLag: Bool = true) async throws -> Int64 {
        let now = Self.now()
        let batch = try await store.revocations(after: cursor, now: now)
        apply(batch.records, measuringLag: measuringLag)
        revocations.purge(now: now)
        return batch.cursor
    }

    /// Enforces revocations read from, or pushed by, the store.
    func apply(_ records: [RevocationRecord], measuringLag: Bool = true) {
        var nowMilliseconds: Int64?
        for record in records {
            let isNew = revocations.revoke(record.kind == "sid" ? .login : .tokenID, record.value, until: record.expiresAt)
            // One made by this process was applied before it was stored; only the others travelled.
            guard isNew, measuringLag, let revocationLag, record.recordedAtMilliseconds > 0 else { continue }
            let now = nowMilliseconds ?? Int64(Date().timeIntervalSince1970 * 1000)
            nowMilliseconds = now
            revocationLag.recordMilliseconds(max(0, now - record.recordedAtMilliseconds))
        }
    }

    func revokeLogins(_ sids: [String], tenant: TenantConfiguration, audit: [AuditEvent] = []) async throws {
        let until = revocationHorizon(tenant, now: Self.now())
        for sid in sids { revocations.revoke(.login, sid, until: until) }
        try await store.revokeLogins(sids, until: until, audit: audit)
        auditLog.write(audit)
    }

    /// After this moment no access token issued now can be accepted any more, so the revocation can be forgotten.
    func revocationHorizon(_ tenant: TenantConfiguration, now: Int64) -> Int64 {
        now + Int64(tenant.tokens.accessTTL.components.seconds + tenant.tokens.clockSkew.components.seconds) + 60
    }

    // MARK: Tokens

    private func startLogin(tenant: TenantConfiguration, user: UserRecord, context: AuditContext) async throws -> TokenGrant {
        let now = Self.now()
        let sid = UUID().uuidString.lowercased()
        let refreshToken = Self.randomToken()
        let audit = [AuditEvent(.login, tenant: tenant.id, context: context, userID: user.id, email: user.email, sid: sid)]
        try await store.insertLogin(
            LoginRecord(sid: sid, tenant: tenant.id, userID: user.id, createdAt: now),
            refreshToken: RefreshTokenRecord(
                hash: Self.hashToken(refreshToken), tenant: tenant.id, sid: sid, userID: user.id,
                expiresAt: now + Int64(tenant.tokens.refreshTTL.components.seconds)),
            audit: audit)
        auditLog.write(audit)
        try await confirmPasswordUnchanged(user, sid: sid, tenant: tenant)
        return try await issue(tenant: tenant, user: user, sid: sid, refreshToken: refreshToken, now: now)
    }

    private func issue(tenant: TenantConfiguration, user: UserRecord, sid: String, refreshToken: String, now: Int64) async throws -> TokenGrant {
        let key = try await keys.activeKey(for: tenant, now: now)
        let ttl = Int(tenant.tokens.accessTTL.components.seconds)
        let claims = AccessTokenClaims(
            iss: tenant.issuer, aud: tenant.audience, sub: user.id, email: user.email, emailVerified: user.emailVerified, name: user.name, roles: user.roles, tenant: tenant.id,
            sid: sid, iat: now, exp: now + Int64(ttl), jti: UUID().uuidString.lowercased())
        let token = try CompactJWS.sign(claims, with: key, type: TokenValidator.accessTokenType)
        return TokenGrant(accessToken: token, expiresIn: ttl, refreshToken: refreshToken, claims: claims)
    }

    // MARK: Helpers

    func hashOnPool(_ password: String) async throws -> String {
        let hasher = self.hasher
        return try await onPool { hasher.hash(password) }
    }

    private func verifyOnPool(_ password: String, against stored: String) async throws -> PasswordHasher.Verification {
        let hasher = self.hasher
        return try await onPool { hasher.verify(password, against: stored) }
    }

    /// Runs hashing work on the bounded pool; a full queue is ``IdentityError/overloaded`` (503 upstream of here).
    private func onPool<Result: Sendable>(_ body: @escaping @Sendable () -> Result) async throws -> Result {
        do {
            return try await pool.run(body)
        } catch is HashingPool.Overloaded {
            throw IdentityError.overloaded
        }
    }

    /// Stores a new user; a concurrent sign-up of the same email loses here, on the store's uniqueness rule.
    private func insert(_ user: UserRecord, audit: [AuditEvent]) async throws {
        do {
            try await store.insertUser(user, audit: audit)
        } catch IdentityStoreError.emailTaken {
            throw IdentityError.emailTaken
        }
        auditLog.write(audit)
    }

    static func checkPassword(_ password: String, tenant: TenantConfiguration) throws {
        if password.utf8.count > maximumPasswordBytes { throw IdentityError.passwordTooLong }
        if password.count < tenant.minimumPasswordLength { throw IdentityError.passwordTooShort(minimum: tenant.minimumPasswordLength) }
    }

    /// 256 random bits, base64url.
    static func randomToken() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Base64URL.encode(Array($0)) }
    }

    /// SHA-256 as lower-case hex. Runs on the proxy path for session cookies, so it avoids formatting per byte.
    static func hashToken(_ token: String) -> String {
        hex(SHA256.hash(data: Array(token.utf8)))
    }

    /// Lower-case hex of a digest or MAC, read in place (no copy), without formatting each byte.
    static func hex(_ bytes: some ContiguousBytes) -> String {
        bytes.withUnsafeBytes { raw in
            String(unsafeUninitializedCapacity: raw.count * 2) { buffer in
                var index = 0
                for byte in raw {
                    buffer[index] = hexDigits[Int(byte >> 4)]
                    buffer[index + 1] = hexDigits[Int(byte & 0x0F)]
                    index += 2
                }
                return index
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
}

/// The event a store call made inside its transaction, for the log line after it commits.
final class RecordedEvent: Sendable {
    private let box = Mutex<AuditEvent?>(nil)
    var event: AuditEvent? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}

/// Which refusals to store: one per key a minute, counting those left out. Bounded: when full, it forgets
/// everything older than the window (or, if all are recent, everything: storing one too many is harmless).
final class AuditThrottle: Sendable {
    private struct Entry {
        var since: Int64
        var suppressed: Int
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let windowMilliseconds: Int64
    private let capacity: Int

    init(window: Duration = .seconds(60), capacity: Int = 10_000) {
        self.windowMilliseconds = Int64(window.components.seconds) * 1000
        self.capacity = capacity
    }

    /// nil: leave this one out; otherwise store it, with how many were left out since the last one stored.
    func admit(_ event: AuditEvent) -> Int? {
        let key = [event.tenant, event.event.rawValue, event.error ?? "", event.ip ?? event.email ?? ""].joined(separator: "\u{1F}")
        let now = event.time
        return entries.withLock { entries in
            if var entry = entries[key], now - entry.since < windowMilliseconds {
                entry.suppressed += 1
                entries[key] = entry
                return nil
            }
            if entries.count >= capacity {
                entries = entries.filter { now - $0.value.since < windowMilliseconds }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            let suppressed = entries[key]?.suppressed ?? 0
            entries[key] = Entry(since: now, suppressed: 0)
            return suppressed
        }
    }
}
