import Foundation
import GatehouseConfiguration
import GatehouseIdentity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO

/// The shared store of several replicas (§9): PostgreSQL through postgres-nio's bounded pool. Every rule that
/// SQLite gets from having one writer is a lock or a constraint here: row locks for refresh rotation, an advisory
/// lock per address for the lockout reservation and per tenant for key activation, unique indexes for addresses
/// and the one active key. Revocations are announced with `NOTIFY` in the transaction that records them.
///
/// Its background work (the pool and the listening connection) runs as a ``PostgresStoreService``.
public final class PostgresIdentityStore: IdentityStore {
    let connectivity: PostgresConnectivity
    private let logger: Logger
    /// How long a call may wait for the database before it is answered as unavailable (503).
    private let timeout: Duration

    /// Creates the store; nothing connects until ``probe()`` or the service runs.
    public init(url: PostgresURL, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, timeout: Duration = .seconds(5), logger: Logger)
        throws
    {
        self.connectivity = PostgresConnectivity(settings: try PostgresSettings(url: url), group: group, logger: logger)
        self.logger = logger
        self.timeout = timeout
    }

    /// The database the store uses, without its password.
    public var url: PostgresURL { connectivity.settings.url }

    /// Connects once and disconnects; throws ``IdentityStoreError/unavailable(_:)`` with a one-line reason (never
    /// the password) when the URL's server, credentials, database or TLS do not work.
    public func probe() async throws {
        do {
            try await PostgresConnectivity.withDeadline(.seconds(5)) { try await self.connectivity.probe() }
        } catch let error as IdentityStoreError {
            throw error
        } catch {
            throw IdentityStoreError.unavailable(IdentityStoreErrorDescription.describe(error))
        }
    }

    public func prepare() async throws {
        try await connectivity.waitUntilRunning()
        // No timeout: replicas starting together wait for each other's migrations, which may take a while.
        let applied = try await runUnbounded { connection, logger in try await PostgresSchema.migrate(connection, logger: logger) }
        if !applied.isEmpty { logger.info("store schema migrated", metadata: ["versions": "\(applied.map(String.init).joined(separator: ","))"]) }
    }

    public func changeSignals() -> AsyncStream<StoreSignal> { connectivity.makeSignals() }

    // MARK: Users

    public func insertUser(_ user: UserRecord, audit: [AuditEvent]) async throws {
        try await run { connection, logger in
            do {
                try await connection.transaction(logger: logger) { connection in
                    // An address set aside by the v3 migration (copied from SQLite) stays taken.
                    let conflicted = try await connection.query(
                        "SELECT 1 FROM email_conflicts WHERE tenant = \(user.tenant) AND email_key = \(user.emailKey)", logger: logger
                    ).collect()
                    if !conflicted.isEmpty { throw IdentityStoreError.emailTaken }
                    try await connection.query(
                        """
                        INSERT INTO users (id, tenant, email, email_key, name, roles, password_hash, disabled, email_verified, created_at)
                        VALUES (\(user.id), \(user.tenant), \(user.email), \(user.emailKey), \(user.name), \(user.encodedRoles),
                                \(user.passwordHash), \(user.disabled), \(user.emailVerified), \(user.createdAt))
                        """, logger: logger)
                    try await Self.insert(audit, connection, logger)
                }
            } catch let error as PSQLError where Self.isUniqueViolation(error) {
                throw IdentityStoreError.emailTaken
            }
        }
    }

    public func user(tenant: String, email: String) async throws -> UserRecord? {
        let key = UserRecord.emailKey(email)
        return try await run { connection, logger in
            try await connection.execute(UserByEmail(tenant: tenant, emailKey: key), logger: logger).first { _ in true }
        }
    }

    public func user(tenant: String, id: String) async throws -> UserRecord? {
        try await run { connection, logger in
            try await connection.execute(UserByID(tenant: tenant, id: id), logger: logger).first { _ in true }
        }
    }

    public func users(tenant: String) async throws -> [UserRecord] {
        try await run { connection, logger in
            var users: [UserRecord] = []
            let rows = try await connection.query(
                "SELECT \(unescaped: UserColumns.list) FROM users WHERE tenant = \(tenant) ORDER BY created_at, email_key", logger: logger)
            for try await row in rows { users.append(try UserColumns.decode(row)) }
            return users
        }
    }

    public func updateUser(_ user: UserRecord, audit: [AuditEvent]) async throws {
        let changed = try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection -> Int in
                let changed = try await connection.query(
                    """
                    UPDATE users SET name = \(user.name), roles = \(user.encodedRoles), password_hash = \(user.passwordHash),
                        disabled = \(user.disabled) WHERE id = \(user.id) AND tenant = \(user.tenant) RETURNING 1
                    """, logger: logger
                ).collect().count
                if changed > 0 { try await Self.insert(audit, connection, logger) }
                return changed
            }
        }
        if changed == 0 { throw IdentityStoreError.notFound }
    }

    public func replacePasswordHash(tenant: String, userID: String, expected: String, replacement: String) async throws -> Bool {
        try await run { connection, logger in
            try await connection.query(
                """
                UPDATE users SET password_hash = \(replacement)
                WHERE id = \(userID) AND tenant = \(tenant) AND password_hash = \(expected) RETURNING 1
                """, logger: logger
            ).collect().count == 1
        }
    }

    // MARK: Logins and refresh tokens

    public func insertLogin(_ login: LoginRecord, refreshToken: RefreshTokenRecord, audit: [AuditEvent]) async throws {
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection in
                try await connection.query(
                    "INSERT INTO logins (sid, tenant, user_id, created_at) VALUES (\(login.sid), \(login.tenant), \(login.userID), \(login.createdAt))",
                    logger: logger)
                try await Self.insert(refreshToken, connection, logger)
                try await Self.insert(audit, connection, logger)
            }
        }
    }

    public func rotateRefreshToken(
        hash: String, tenant: String, replacement: @escaping @Sendable (RefreshTokenRecord) -> RefreshTokenRecord, now: Int64, revokeUntil: Int64,
        reuseAudit: @escaping @Sendable (RefreshTokenRecord) -> AuditEvent?
    ) async throws -> RefreshOutcome {
        // The row lock makes two presentations of one token take turns: the second sees it spent, which is reuse.
        let next = replacement
        return try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection -> RefreshOutcome in
                let rows = try await connection.query(
                    """
                    SELECT t.sid, t.user_id, t.expires_at, t.spent, l.revoked FROM refresh_tokens t JOIN logins l ON l.sid = t.sid
                    WHERE t.hash = \(hash) AND t.tenant = \(tenant) FOR UPDATE OF t
                    """, logger: logger)
                var found: (String, String, Int64, Bool, Bool)?
                for try await row in rows.decode((String, String, Int64, Bool, Bool).self) { found = row }
                guard let (sid, userID, expiresAt, spent, loginRevoked) = found else { return .invalid }
                if loginRevoked { return .invalid }
                if spent {
                    try await Self.revoke(sids: [sid], until: revokeUntil, connection, logger)
                    let spentToken = RefreshTokenRecord(hash: hash, tenant: tenant, sid: sid, userID: userID, expiresAt: expiresAt)
                    try await Self.insert(reuseAudit(spentToken).map { [$0] } ?? [], connection, logger)
                    return .reused(sid: sid)
                }
                guard expiresAt > now else { return .invalid }
                try await connection.query("UPDATE refresh_tokens SET spent = true WHERE hash = \(hash)", logger: logger)
                let record = next(RefreshTokenRecord(hash: hash, tenant: tenant, sid: sid, userID: userID, expiresAt: expiresAt))
                try await Self.insert(record, connection, logger)
                return .rotated(record)
            }
        }
    }

    public func revokeLogins(_ sids: [String], until: Int64, audit: [AuditEvent]) async throws {
        guard !sids.isEmpty || !audit.isEmpty else { return }
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection in
                if !sids.isEmpty { try await Self.revoke(sids: sids, until: until, connection, logger) }
                try await Self.insert(audit, connection, logger)
            }
        }
    }

    public func logins(tenant: String, userID: String) async throws -> [LoginRecord] {
        try await run { connection, logger in
            var logins: [LoginRecord] = []
            let rows = try await connection.query(
                """
                SELECT sid, created_at FROM logins WHERE tenant = \(tenant) AND user_id = \(userID) AND NOT revoked ORDER BY created_at
                """, logger: logger)
            for try await (sid, createdAt) in rows.decode((String, Int64).self) {
                logins.append(LoginRecord(sid: sid, tenant: tenant, userID: userID, createdAt: createdAt))
            }
            return logins
        }
    }

    public func revokeToken(jti: String, until: Int64) async throws {
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection in
                try await Self.recordRevocation(kind: "jti", value: jti, until: until, connection, logger)
            }
        }
    }

    /// The cursor is a transaction-id horizon, not a row id: ids come from a sequence and can commit out of
    /// order (a transaction that took id 7 can commit after one that took 8 was read). Every row records the id of
    /// the transaction that wrote it (`txid`); the horizon is the oldest transaction still running when the read
    /// began (`pg_snapshot_xmin`), taken before the rows are read. Every transaction older than the horizon has
    /// finished by then, so the read sees its rows; any younger one is read again next time (from the horizon).
    /// A revocation can be read twice, never skipped.
    public func revocations(after cursor: Int64, now: Int64) async throws -> RevocationBatch {
        try await run { connection, logger in
            var horizon = cursor
            for try await value in try await connection.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint", logger: logger)
                .decode(Int64.self)
            {
                horizon = value
            }
            var records: [RevocationRecord] = []
            let rows = try await connection.query(
                """
                SELECT id, kind, value, expires_at, recorded_at_ms FROM revocations
                WHERE txid >= (\(cursor)::bigint)::text::xid8 AND expires_at >= \(now) ORDER BY id
                """, logger: logger)
            for try await (id, kind, value, expiresAt, recorded) in rows.decode((Int64, String, String, Int64, Int64).self) {
                records.append(RevocationRecord(id: id, kind: kind, value: value, expiresAt: expiresAt, recordedAtMilliseconds: recorded))
            }
            return RevocationBatch(records: records, cursor: max(cursor, horizon))
        }
    }

    // MARK: Lockout

    public func reserveLoginAttempt(tenant: String, emailKey: String, at: Int64, windowStart: Int64, limit: Int) async throws
        -> LoginAttemptReservation
    {
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection -> LoginAttemptReservation in
                // One address at a time across every replica: the count and the insert cannot interleave.
                let lockKey = tenant + "/" + emailKey
                try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(lockKey), 0))", logger: logger)
                try await connection.query(
                    "DELETE FROM login_failures WHERE tenant = \(tenant) AND email_key = \(emailKey) AND at < \(windowStart)", logger: logger)
                var recorded: [Int64] = []
                let rows = try await connection.query(
                    "SELECT at FROM login_failures WHERE tenant = \(tenant) AND email_key = \(emailKey) ORDER BY at", logger: logger)
                for try await time in rows.decode(Int64.self) { recorded.append(time) }
                if recorded.count >= limit { return .full(oldest: recorded.first ?? at) }
                try await connection.query(
                    "INSERT INTO login_failures (tenant, email_key, at) VALUES (\(tenant), \(emailKey), \(at))", logger: logger)
                return .reserved(failures: recorded.count + 1)
            }
        }
    }

    public func releaseLoginAttempt(tenant: String, emailKey: String, at: Int64) async throws {
        try await run { connection, logger in
            try await connection.query(
                """
                DELETE FROM login_failures WHERE id =
                    (SELECT id FROM login_failures WHERE tenant = \(tenant) AND email_key = \(emailKey) AND at = \(at) ORDER BY id DESC LIMIT 1)
                """, logger: logger)
        }
    }

    public func loginFailures(tenant: String, emailKey: String, since: Int64) async throws -> [Int64] {
        try await run { connection, logger in
            var times: [Int64] = []
            let rows = try await connection.query(
                "SELECT at FROM login_failures WHERE tenant = \(tenant) AND email_key = \(emailKey) AND at >= \(since) ORDER BY at", logger: logger)
            for try await time in rows.decode(Int64.self) { times.append(time) }
            return times
        }
    }

    public func deleteLoginFailures(tenant: String, before: Int64) async throws -> Int {
        try await run { connection, logger in
            try await connection.query("DELETE FROM login_failures WHERE tenant = \(tenant) AND at < \(before) RETURNING 1", logger: logger).collect().count
        }
    }

    public func emailConflicts() async throws -> [EmailConflict] {
        try await run { connection, logger in
            var conflicts: [EmailConflict] = []
            let rows = try await connection.query(
                "SELECT tenant, email_key, user_id FROM email_conflicts ORDER BY tenant, email_key, user_id", logger: logger)
            for try await (tenant, key, id) in rows.decode((String, String, String).self) {
                if let last = conflicts.last, last.tenant == tenant, last.email == key {
                    conflicts[conflicts.count - 1].userIDs.append(id)
                } else {
                    conflicts.append(EmailConflict(tenant: tenant, email: key, userIDs: [id]))
                }
            }
            return conflicts
        }
    }

    public func clearLoginFailures(tenant: String, emailKey: String) async throws {
        try await run { connection, logger in
            _ = try await connection.execute(ClearLoginFailures(tenant: tenant, emailKey: emailKey), logger: logger).first { _ in true }
        }
    }

    // MARK: Browser sessions

    public func insertSession(_ session: SessionRecord, audit: [AuditEvent]) async throws {
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection in
                try await connection.query(
                    """
                    INSERT INTO logins (sid, tenant, user_id, created_at) VALUES (\(session.sid), \(session.tenant), \(session.userID), \(session.createdAt))
                    """, logger: logger)
                try await connection.query(
                    """
                    INSERT INTO sessions (hash, tenant, sid, user_id, created_at, last_seen_at, expires_at)
                    VALUES (\(session.hash), \(session.tenant), \(session.sid), \(session.userID), \(session.createdAt), \(session.lastSeenAt),
                            \(session.expiresAt))
                    """, logger: logger)
                try await Self.insert(audit, connection, logger)
            }
        }
    }

    public func session(hash: String, tenant: String) async throws -> SessionRecord? {
        try await run { connection, logger in
            try await connection.execute(SessionByHash(hash: hash, tenant: tenant), logger: logger).first { _ in true }
        }
    }

    public func touchSession(hash: String, lastSeenAt: Int64) async throws {
        try await run { connection, logger in
            try await connection.query(
                "UPDATE sessions SET last_seen_at = \(lastSeenAt) WHERE hash = \(hash) AND last_seen_at < \(lastSeenAt)", logger: logger)
        }
    }

    public func deleteSessions(expiredBy now: Int64, idleBefore: Int64, tenant: String) async throws -> Int {
        try await run { connection, logger in
            try await connection.query(
                "DELETE FROM sessions WHERE tenant = \(tenant) AND (expires_at <= \(now) OR last_seen_at < \(idleBefore)) RETURNING 1", logger: logger
            ).collect().count
        }
    }

    // MARK: Signing keys

    public func signingKeys(tenant: String) async throws -> [StoredSigningKey] {
        try await run { connection, logger in
            try await Self.keys(
                connection.query("SELECT \(unescaped: KeyColumns.list) FROM signing_keys WHERE tenant = \(tenant) ORDER BY created_at, kid", logger: logger))
        }
    }

    public func allSigningKeys() async throws -> [StoredSigningKey] {
        try await run { connection, logger in
            try await Self.keys(connection.query("SELECT \(unescaped: KeyColumns.list) FROM signing_keys ORDER BY tenant, created_at, kid", logger: logger))
        }
    }

    public func activateSigningKey(_ key: StoredSigningKey, onlyIfNoneActive: Bool, previousVerifiesUntil: Int64, audit: [AuditEvent]) async throws -> Bool {
        try await run { connection, logger in
            do {
                return try await connection.transaction(logger: logger) { connection -> Bool in
                    // Replicas creating a tenant's first key at once take turns; the unique index backs this up.
                    let lockKey = "signing-key/" + key.tenant
                    try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(lockKey), 0))", logger: logger)
                    let active = try await connection.query(
                        "SELECT kid FROM signing_keys WHERE tenant = \(key.tenant) AND retired_at IS NULL", logger: logger
                    ).collect().count
                    if active > 0 {
                        if onlyIfNoneActive { return false }
                        try await connection.query(
                            """
                            UPDATE signing_keys SET retired_at = \(key.createdAt), verifies_until = \(previousVerifiesUntil)
                            WHERE tenant = \(key.tenant) AND retired_at IS NULL
                            """, logger: logger)
                    }
                    try await connection.query(
                        """
                        INSERT INTO signing_keys (tenant, kid, algorithm, sealed_private_key, created_at)
                        VALUES (\(key.tenant), \(key.kid), \(key.algorithm), \(key.sealedPrivateKey), \(key.createdAt))
                        """, logger: logger)
                    let payload = "k|" + key.tenant
                    try await connection.query("SELECT pg_notify(\(PostgresConnectivity.channel), \(payload))", logger: logger)
                    try await Self.insert(audit, connection, logger)
                    return true
                }
            } catch let error as PSQLError where Self.isUniqueViolation(error) && onlyIfNoneActive {
                return false
            }
        }
    }

    // MARK: Audit events

    public func insertAuditEvents(_ events: [AuditEvent]) async throws {
        guard !events.isEmpty else { return }
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection in try await Self.insert(events, connection, logger) }
        }
    }

    public func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent] {
        let email = query.email.map(UserRecord.emailKey)
        let event = query.event?.rawValue
        return try await run { connection, logger in
            let rows = try await connection.query(
                """
                SELECT id, tenant, at_ms, event, user_id, email, sid, ip, user_agent, request_id, trace_id, actor, error, details
                FROM audit_events
                WHERE tenant = \(query.tenant) AND (\(email)::text IS NULL OR email = \(email))
                    AND (\(event)::text IS NULL OR event = \(event)) AND (\(query.since)::bigint IS NULL OR at_ms >= \(query.since))
                ORDER BY at_ms DESC, id DESC LIMIT \(query.limit)
                """, logger: logger)
            var events: [AuditEvent] = []
            for try await row in rows.decode(
                (Int64, String, Int64, String, String?, String?, String?, String?, String?, String?, String?, String, String?, String?).self)
            {
                // An event or actor this version does not know (written by a newer one) is left out.
                guard let kind = AuditEventKind(rawValue: row.3), let actor = AuditActor(rawValue: row.11) else { continue }
                var event = AuditEvent(
                    kind, tenant: row.1,
                    context: AuditContext(actor: actor, ip: row.7, userAgent: row.8, requestID: row.9, traceID: row.10),
                    userID: row.4, email: row.5, sid: row.6, error: row.12, details: AuditEvent.decodeDetails(row.13), time: row.2)
                event.id = row.0
                events.append(event)
            }
            return events.reversed()
        }
    }

    /// In batches of 5,000, a statement each, so each stays well within the store's timeout.
    public func deleteAuditEvents(before: Int64) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await run { connection, logger -> Int in
                let rows = try await connection.query(
                    """
                    WITH gone AS (
                        DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at_ms < \(before) ORDER BY at_ms LIMIT 5000)
                        RETURNING 1)
                    SELECT count(*) FROM gone
                    """, logger: logger)
                var count: Int64 = 0
                for try await value in rows.decode(Int64.self) { count = value }
                return Int(count)
            }
            total += deleted
            if deleted < 5000 { return total }
        }
    }

    static func insert(_ events: [AuditEvent], _ connection: PostgresConnection, _ logger: Logger) async throws {
        for event in events {
            try await connection.query(
                """
                INSERT INTO audit_events (tenant, at_ms, event, user_id, email, sid, ip, user_agent, request_id, trace_id, actor, error, details)
                VALUES (\(event.tenant), \(event.time), \(event.event.rawValue), \(event.userID), \(event.email), \(event.sid), \(event.ip),
                        \(event.userAgent), \(event.requestID), \(event.traceID), \(event.actor.rawValue), \(event.error), \(event.encodedDetails))
                """, logger: logger)
        }
    }

    // MARK: Running queries

    /// Runs `body` on a connection of the current pool within the store's timeout, and turns a database that cannot
    /// be reached into ``IdentityStoreError/unavailable(_:)``. While the listening connection cannot reach the
    /// database, it fails at once rather than queueing behind a pool that is waiting to reconnect.
    ///
    /// postgres-nio does not abandon a query on cancellation, so the timeout closes the leased connection: the query
    /// fails at once and the pool opens another.
    @discardableResult
    func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        if let failure = connectivity.failure { throw IdentityStoreError.unavailable(failure) }
        let logger = self.logger
        do {
            let connectivity = self.connectivity
            return try await connectivity.withPooledConnection(within: timeout, abandonWhen: { connectivity.failure != nil }) { connection in
                try await body(connection, logger)
            }
        } catch let error as IdentityStoreError {
            if case .unavailable = error { connectivity.suspectPool() }
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            connectivity.suspectPool()
            let reason = IdentityStoreErrorDescription.describe(error)
            if let error = error as? PSQLError, [.connectionError, .serverClosedConnection, .sslUnsupported].contains(error.code) {
                connectivity.callFailed(reason)
            }
            throw IdentityStoreError.unavailable(reason)
        }
    }

    /// ``run(_:)`` without the timeout, for migrations (replicas wait for each other's) and `store migrate`.
    func runUnbounded<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let logger = self.logger
        do {
            return try await connectivity.client.withConnection { connection in try await body(connection, logger) }
        } catch let error as IdentityStoreError {
            throw error
        } catch {
            throw IdentityStoreError.unavailable(IdentityStoreErrorDescription.describe(error))
        }
    }

    static func isUniqueViolation(_ error: PSQLError) -> Bool {
        error.serverInfo?[.sqlState] == "23505"
    }

    private static func insert(_ token: RefreshTokenRecord, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO refresh_tokens (hash, tenant, sid, user_id, expires_at)
            VALUES (\(token.hash), \(token.tenant), \(token.sid), \(token.userID), \(token.expiresAt))
            """, logger: logger)
    }

    static func revoke(sids: [String], until: Int64, _ connection: PostgresConnection, _ logger: Logger) async throws {
        for sid in sids {
            try await connection.query("UPDATE logins SET revoked = true WHERE sid = \(sid)", logger: logger)
            try await recordRevocation(kind: "sid", value: sid, until: until, connection, logger)
        }
    }

    /// Records a revocation and announces it; the announcement is delivered when (and only if) the transaction
    /// commits.
    private static func recordRevocation(kind: String, value: String, until: Int64, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let recorded = Int64(Date().timeIntervalSince1970 * 1000)
        try await connection.query(
            "INSERT INTO revocations (kind, value, expires_at, recorded_at_ms) VALUES (\(kind), \(value), \(until), \(recorded))", logger: logger)
        let payload = PostgresConnectivity.revocationPayload(kind: kind, value: value, expiresAt: until, recordedAtMilliseconds: recorded)
        try await connection.query("SELECT pg_notify(\(PostgresConnectivity.channel), \(payload))", logger: logger)
    }

    private static func keys(_ rows: PostgresRowSequence) async throws -> [StoredSigningKey] {
        var keys: [StoredSigningKey] = []
        for try await row in rows { keys.append(try KeyColumns.decode(row)) }
        return keys
    }
}
