import GatehouseConfiguration
import GatehouseIdentity
import Foundation
import GRDB
import Synchronization

/// The embedded store: one SQLite file in WAL mode through GRDB. Writes are serialised by SQLite; reads run
/// concurrently. Every call goes through GRDB's async API, off the caller's thread.
public final class SQLiteIdentityStore: IdentityStore {
    private let pool: DatabasePool
    private let path: String
    /// How often ``changeSignals()`` looks for another connection's commit.
    private let changePollInterval: Duration

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// - Parameter changePollInterval: how often a running gateway checks whether another process (the CLI)
    ///   committed; a revocation by `gatehouse users disable` is enforced within about this long.
    public init(path: String, changePollInterval: Duration = .milliseconds(50)) throws {
        self.path = path
        self.changePollInterval = changePollInterval
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        // The CLI and a running gateway share the file: wait for each other's write locks instead of failing.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: users, logins, refresh tokens, revocations, keys, login failures") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        id TEXT PRIMARY KEY,
                        tenant TEXT NOT NULL,
                        email TEXT NOT NULL,
                        email_key TEXT NOT NULL,
                        name TEXT NOT NULL,
                        roles TEXT NOT NULL,
                        password_hash TEXT NOT NULL,
                        disabled INTEGER NOT NULL DEFAULT 0,
                        created_at INTEGER NOT NULL,
                        UNIQUE (tenant, email_key)
                    );
                    CREATE TABLE logins (
                        sid TEXT PRIMARY KEY,
                        tenant TEXT NOT NULL,
                        user_id TEXT NOT NULL REFERENCES users(id),
                        created_at INTEGER NOT NULL,
                        revoked INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX logins_by_user ON logins(user_id);
                    CREATE TABLE refresh_tokens (
                        hash TEXT PRIMARY KEY,
                        tenant TEXT NOT NULL,
                        sid TEXT NOT NULL REFERENCES logins(sid),
                        user_id TEXT NOT NULL,
                        expires_at INTEGER NOT NULL,
                        spent INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE TABLE revocations (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        kind TEXT NOT NULL,
                        value TEXT NOT NULL,
                        expires_at INTEGER NOT NULL
                    );
                    CREATE TABLE signing_keys (
                        tenant TEXT NOT NULL,
                        kid TEXT NOT NULL,
                        algorithm TEXT NOT NULL,
                        sealed_private_key BLOB NOT NULL,
                        created_at INTEGER NOT NULL,
                        retired_at INTEGER,
                        verifies_until INTEGER,
                        PRIMARY KEY (tenant, kid)
                    );
                    CREATE TABLE login_failures (
                        tenant TEXT NOT NULL,
                        email_key TEXT NOT NULL,
                        at INTEGER NOT NULL
                    );
                    CREATE INDEX login_failures_by_email ON login_failures(tenant, email_key, at);
                    """)
        }
        migrator.registerMigration("v2: browser sessions") { db in
            try db.execute(
                sql: """
                    CREATE TABLE sessions (
                        hash TEXT PRIMARY KEY,
                        tenant TEXT NOT NULL,
                        sid TEXT NOT NULL REFERENCES logins(sid),
                        user_id TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        last_seen_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL
                    );
                    CREATE INDEX sessions_by_tenant_expiry ON sessions(tenant, expires_at);
                    """)
        }
        migrator.registerMigration("v3: canonical email addresses (NFKC, lower case)") { db in
            try db.execute(sql: "CREATE TABLE email_conflicts (tenant TEXT NOT NULL, email_key TEXT NOT NULL, user_id TEXT NOT NULL)")
            // Group the users by their new key. A key that two rows now share is two spellings of one address
            // (the Kelvin sign, NFD): neither may log in with it until the operator decides, so both are taken off
            // it (a key nobody can type) and listed in email_conflicts; `gatehouse check` and start-up report them.
            var byKey: [String: [(id: String, email: String)]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, tenant, email FROM users") {
                let email: String = row["email"]
                let tenant: String = row["tenant"]
                byKey[tenant + "\u{0}" + EmailAddress.canonicalize(email), default: []].append((row["id"], email))
            }
            // Old keys first, so the updates below never collide with a key still in use.
            try db.execute(sql: "UPDATE users SET email_key = 'migrating:' || id")
            for (compound, users) in byKey {
                let key = String(compound.split(separator: "\u{0}", maxSplits: 1)[1])
                let tenant = String(compound.split(separator: "\u{0}", maxSplits: 1)[0])
                if users.count == 1, let user = users.first {
                    let email = EmailAddress(user.email)?.canonical ?? user.email
                    try db.execute(sql: "UPDATE users SET email_key = ?, email = ? WHERE id = ?", arguments: [key, email, user.id])
                } else {
                    for user in users {
                        // Disabled too: refresh tokens and sessions of either account stop working (§8 semantics).
                        try db.execute(
                            sql: "UPDATE users SET email_key = ?, disabled = 1 WHERE id = ?", arguments: ["conflict:" + user.id, user.id])
                        try db.execute(
                            sql: "INSERT INTO email_conflicts (tenant, email_key, user_id) VALUES (?, ?, ?)", arguments: [tenant, key, user.id])
                    }
                }
            }
        }
        migrator.registerMigration("v4: one active key per tenant, revocation times") { db in
            // Two keys could be active after a race between replicas' first logins (check, then insert): keep the
            // newest signing; the others verify for a day from now, longer than any token they signed can live.
            let tenants = try String.fetchAll(
                db, sql: "SELECT tenant FROM signing_keys WHERE retired_at IS NULL GROUP BY tenant HAVING COUNT(*) > 1")
            for tenant in tenants {
                try db.execute(
                    sql: """
                        UPDATE signing_keys SET retired_at = created_at, verifies_until = MAX(created_at, CAST(strftime('%s', 'now') AS INTEGER)) + 86400
                        WHERE tenant = ? AND retired_at IS NULL AND rowid <>
                            (SELECT rowid FROM signing_keys WHERE tenant = ? AND retired_at IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1)
                        """, arguments: [tenant, tenant])
            }
            try db.execute(
                sql: """
                    CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(tenant) WHERE retired_at IS NULL;
                    ALTER TABLE revocations ADD COLUMN recorded_at_ms INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        migrator.registerMigration("v5: audit events") { db in
            try db.execute(
                sql: """
                    CREATE TABLE audit_events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        tenant TEXT NOT NULL,
                        at_ms INTEGER NOT NULL,
                        event TEXT NOT NULL,
                        user_id TEXT,
                        email TEXT,
                        sid TEXT,
                        ip TEXT,
                        user_agent TEXT,
                        request_id TEXT,
                        trace_id TEXT,
                        actor TEXT NOT NULL,
                        error TEXT,
                        details TEXT
                    );
                    CREATE INDEX audit_events_by_tenant_time ON audit_events(tenant, at_ms);
                    CREATE INDEX audit_events_by_time ON audit_events(at_ms);
                    """)
        }
        migrator.registerMigration("v6: account e-mail") { db in
            // Users who existed before the store recorded verification keep working where a tenant turns
            // `verification: required` on: they were accepted under the rules of their time.
            try db.execute(sql: AccountEmailSchema.sqlite)
        }
        return migrator
    }

    /// Migrations run when the store is opened.
    public func prepare() async throws {}

    /// Looks for other connections' commits with `PRAGMA data_version` on a connection of its own (the number
    /// changes only when another connection commits), every ``changePollInterval``: a query a few microseconds
    /// long, where reading the revocations each time would cost a real read.
    public func changeSignals() -> AsyncStream<StoreSignal> {
        let watcher = DataVersionWatcher(path: path)
        let interval = changePollInterval
        return AsyncStream(unfolding: {
            while !Task.isCancelled {
                if await watcher.hasChanged() { return .changed }
                do { try await Task.sleep(for: interval) } catch { return nil }
            }
            return nil
        })
    }

    // MARK: Users

    /// The conflicts recorded in the SQLite file at `path`, read without opening the store (no migration runs):
    /// for `gatehouse check`, which must not change a file a running gateway of another version may use.
    public static func emailConflicts(readingFileAt path: String) throws -> [EmailConflict] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        return try queue.read { db in
            guard try db.tableExists("email_conflicts") else { return [] }
            return try conflicts(db)
        }
    }

    public func emailConflicts() async throws -> [EmailConflict] {
        try await pool.read { db in try Self.conflicts(db) }
    }

    private static func conflicts(_ db: Database) throws -> [EmailConflict] {
        let rows = try Row.fetchAll(db, sql: "SELECT tenant, email_key, user_id FROM email_conflicts ORDER BY tenant, email_key, user_id")
        var conflicts: [EmailConflict] = []
        for row in rows {
            let tenant: String = row["tenant"]
            let key: String = row["email_key"]
            let id: String = row["user_id"]
            if let last = conflicts.last, last.tenant == tenant, last.email == key {
                conflicts[conflicts.count - 1].userIDs.append(id)
            } else {
                conflicts.append(EmailConflict(tenant: tenant, email: key, userIDs: [id]))
            }
        }
        return conflicts
    }

    public func insertUser(_ user: UserRecord, audit: [AuditEvent]) async throws {
        do {
            try await pool.write { db in
                // An address set aside by the v3 migration stays taken until the operator resolves the conflict.
                let conflicted = try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM email_conflicts WHERE tenant = ? AND email_key = ?)",
                    arguments: [user.tenant, user.emailKey]) ?? false
                if conflicted { throw IdentityStoreError.emailTaken }
                try db.execute(
                    sql: """
                        INSERT INTO users (id, tenant, email, email_key, name, roles, password_hash, disabled, email_verified, created_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        user.id, user.tenant, user.email, user.emailKey, user.name, user.encodedRoles, user.passwordHash,
                        user.disabled, user.emailVerified, user.createdAt,
                    ])
                try Self.insert(audit, db)
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw IdentityStoreError.emailTaken
        }
    }

    public func user(tenant: String, email: String) async throws -> UserRecord? {
        let key = UserRecord.emailKey(email)
        return try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE tenant = ? AND email_key = ?", arguments: [tenant, key]).map(Self.user)
        }
    }

    public func user(tenant: String, id: String) async throws -> UserRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE tenant = ? AND id = ?", arguments: [tenant, id]).map(Self.user)
        }
    }

    public func users(tenant: String) async throws -> [UserRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users WHERE tenant = ? ORDER BY created_at, email_key", arguments: [tenant]).map(Self.user)
        }
    }

    public func updateUser(_ user: UserRecord, audit: [AuditEvent]) async throws {
        let changed = try await pool.write { db in
            try db.execute(
                sql: "UPDATE users SET name = ?, roles = ?, password_hash = ?, disabled = ? WHERE id = ? AND tenant = ?",
                arguments: [user.name, user.encodedRoles, user.passwordHash, user.disabled, user.id, user.tenant])
            let changed = db.changesCount
            // No user, no change: nothing to record either (the caller is told by the throw below).
            if changed > 0 { try Self.insert(audit, db) }
            return changed
        }
        if changed == 0 { throw IdentityStoreError.notFound }
    }

    public func replacePasswordHash(tenant: String, userID: String, expected: String, replacement: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE users SET password_hash = ? WHERE id = ? AND tenant = ? AND password_hash = ?", arguments: [replacement, userID, tenant, expected])
            return db.changesCount == 1
        }
    }

    // MARK: Logins and refresh tokens

    public func insertLogin(_ login: LoginRecord, refreshToken: RefreshTokenRecord, audit: [AuditEvent]) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO logins (sid, tenant, user_id, created_at) VALUES (?, ?, ?, ?)",
                arguments: [login.sid, login.tenant, login.userID, login.createdAt])
            try Self.insert(refreshToken, db)
            try Self.insert(audit, db)
        }
    }

    public func rotateRefreshToken(
        hash: String, tenant: String, replacement: @escaping @Sendable (RefreshTokenRecord) -> RefreshTokenRecord, now: Int64, revokeUntil: Int64,
        reuseAudit: @escaping @Sendable (RefreshTokenRecord) -> AuditEvent?
    ) async throws -> RefreshOutcome {
        try await pool.write { db -> RefreshOutcome in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT t.*, l.revoked AS login_revoked FROM refresh_tokens t JOIN logins l ON l.sid = t.sid
                        WHERE t.hash = ? AND t.tenant = ?
                        """,
                    arguments: [hash, tenant])
            else { return .invalid }
            let record = RefreshTokenRecord(
                hash: row["hash"], tenant: row["tenant"], sid: row["sid"], userID: row["user_id"], expiresAt: row["expires_at"])
            if (row["login_revoked"] as Bool) { return .invalid }
            if (row["spent"] as Bool) {
                // Reuse of a spent token: someone holds a copy. End the whole login, for every replica.
                try Self.revoke(sids: [record.sid], until: revokeUntil, db)
                try Self.insert(reuseAudit(record).map { [$0] } ?? [], db)
                return .reused(sid: record.sid)
            }
            guard record.expiresAt > now else { return .invalid }
            try db.execute(sql: "UPDATE refresh_tokens SET spent = 1 WHERE hash = ?", arguments: [hash])
            let next = replacement(record)
            try Self.insert(next, db)
            return .rotated(next)
        }
    }

    public func revokeLogins(_ sids: [String], until: Int64, audit: [AuditEvent]) async throws {
        guard !sids.isEmpty || !audit.isEmpty else { return }
        try await pool.write { db in
            if !sids.isEmpty { try Self.revoke(sids: sids, until: until, db) }
            try Self.insert(audit, db)
        }
    }

    public func logins(tenant: String, userID: String) async throws -> [LoginRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM logins WHERE tenant = ? AND user_id = ? AND revoked = 0 ORDER BY created_at", arguments: [tenant, userID]
            ).map { LoginRecord(sid: $0["sid"], tenant: $0["tenant"], userID: $0["user_id"], createdAt: $0["created_at"]) }
        }
    }

    public func revokeToken(jti: String, until: Int64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO revocations (kind, value, expires_at, recorded_at_ms) VALUES ('jti', ?, ?, ?)",
                arguments: [jti, until, Self.milliseconds()])
        }
    }

    public func revocations(after cursor: Int64, now: Int64) async throws -> RevocationBatch {
        // The id is a commit order here: SQLite has one writer at a time, so a row with a lower id can never commit
        // after a read has seen a higher one.
        try await pool.read { db in
            let records = try Row.fetchAll(
                db, sql: "SELECT * FROM revocations WHERE id > ? AND expires_at >= ? ORDER BY id", arguments: [cursor, now]
            ).map {
                RevocationRecord(
                    id: $0["id"], kind: $0["kind"], value: $0["value"], expiresAt: $0["expires_at"], recordedAtMilliseconds: $0["recorded_at_ms"])
            }
            let last = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM revocations") ?? 0
            return RevocationBatch(records: records, cursor: max(cursor, last))
        }
    }

    // MARK: Lockout

    public func reserveLoginAttempt(tenant: String, emailKey: String, at: Int64, windowStart: Int64, limit: Int) async throws
        -> LoginAttemptReservation
    {
        // BEGIN IMMEDIATE: the count and the insert happen under the write lock, so two processes sharing the file
        // cannot both see room for one more.
        try await pool.writeWithoutTransaction { db in
            var reservation = LoginAttemptReservation.reserved(failures: 1)
            try db.inTransaction(.immediate) {
                try db.execute(
                    sql: "DELETE FROM login_failures WHERE tenant = ? AND email_key = ? AND at < ?", arguments: [tenant, emailKey, windowStart])
                let recorded = try Int64.fetchAll(
                    db, sql: "SELECT at FROM login_failures WHERE tenant = ? AND email_key = ? ORDER BY at", arguments: [tenant, emailKey])
                if recorded.count >= limit {
                    reservation = .full(oldest: recorded.first ?? at)
                } else {
                    try db.execute(sql: "INSERT INTO login_failures (tenant, email_key, at) VALUES (?, ?, ?)", arguments: [tenant, emailKey, at])
                    reservation = .reserved(failures: recorded.count + 1)
                }
                return .commit
            }
            return reservation
        }
    }

    public func releaseLoginAttempt(tenant: String, emailKey: String, at: Int64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    DELETE FROM login_failures WHERE rowid =
                        (SELECT rowid FROM login_failures WHERE tenant = ? AND email_key = ? AND at = ? ORDER BY rowid DESC LIMIT 1)
                    """, arguments: [tenant, emailKey, at])
        }
    }

    public func deleteLoginFailures(tenant: String, before: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM login_failures WHERE tenant = ? AND at < ?", arguments: [tenant, before])
            return db.changesCount
        }
    }

    public func loginFailures(tenant: String, emailKey: String, since: Int64) async throws -> [Int64] {
        try await pool.read { db in
            try Int64.fetchAll(
                db, sql: "SELECT at FROM login_failures WHERE tenant = ? AND email_key = ? AND at >= ? ORDER BY at",
                arguments: [tenant, emailKey, since])
        }
    }

    public func clearLoginFailures(tenant: String, emailKey: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM login_failures WHERE tenant = ? AND email_key = ?", arguments: [tenant, emailKey])
        }
    }

    // MARK: Browser sessions

    public func insertSession(_ session: SessionRecord, audit: [AuditEvent]) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO logins (sid, tenant, user_id, created_at) VALUES (?, ?, ?, ?)",
                arguments: [session.sid, session.tenant, session.userID, session.createdAt])
            try db.execute(
                sql: """
                    INSERT INTO sessions (hash, tenant, sid, user_id, created_at, last_seen_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    session.hash, session.tenant, session.sid, session.userID, session.createdAt, session.lastSeenAt, session.expiresAt,
                ])
            try Self.insert(audit, db)
        }
    }

    public func session(hash: String, tenant: String) async throws -> SessionRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT s.* FROM sessions s JOIN logins l ON l.sid = s.sid
                    WHERE s.hash = ? AND s.tenant = ? AND l.revoked = 0
                    """,
                arguments: [hash, tenant]
            ).map {
                SessionRecord(
                    hash: $0["hash"], tenant: $0["tenant"], sid: $0["sid"], userID: $0["user_id"], createdAt: $0["created_at"],
                    lastSeenAt: $0["last_seen_at"], expiresAt: $0["expires_at"])
            }
        }
    }

    public func touchSession(hash: String, lastSeenAt: Int64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE sessions SET last_seen_at = ? WHERE hash = ? AND last_seen_at < ?", arguments: [lastSeenAt, hash, lastSeenAt])
        }
    }

    public func deleteSessions(expiredBy now: Int64, idleBefore: Int64, tenant: String) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM sessions WHERE tenant = ? AND (expires_at <= ? OR last_seen_at < ?)", arguments: [tenant, now, idleBefore])
            return db.changesCount
        }
    }

    // MARK: Signing keys

    public func signingKeys(tenant: String) async throws -> [StoredSigningKey] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM signing_keys WHERE tenant = ? ORDER BY created_at, rowid", arguments: [tenant]).map(Self.key)
        }
    }

    public func allSigningKeys() async throws -> [StoredSigningKey] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM signing_keys ORDER BY tenant, created_at").map(Self.key)
        }
    }

    public func activateSigningKey(_ key: StoredSigningKey, onlyIfNoneActive: Bool, previousVerifiesUntil: Int64, audit: [AuditEvent]) async throws -> Bool {
        try await pool.write { db in
            let active = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM signing_keys WHERE tenant = ? AND retired_at IS NULL", arguments: [key.tenant]) ?? 0
            if active > 0 {
                if onlyIfNoneActive { return false }
                try db.execute(
                    sql: "UPDATE signing_keys SET retired_at = ?, verifies_until = ? WHERE tenant = ? AND retired_at IS NULL",
                    arguments: [key.createdAt, previousVerifiesUntil, key.tenant])
            }
            try db.execute(
                sql: """
                    INSERT INTO signing_keys (tenant, kid, algorithm, sealed_private_key, created_at, retired_at, verifies_until)
                    VALUES (?, ?, ?, ?, ?, NULL, NULL)
                    """,
                arguments: [key.tenant, key.kid, key.algorithm, key.sealedPrivateKey, key.createdAt])
            try Self.insert(audit, db)
            return true
        }
    }

    // MARK: Audit events

    public func insertAuditEvents(_ events: [AuditEvent]) async throws {
        guard !events.isEmpty else { return }
        try await pool.write { db in try Self.insert(events, db) }
    }

    public func auditEvents(_ query: AuditQuery) async throws -> [AuditEvent] {
        try await pool.read { db in
            var sql = "SELECT * FROM audit_events WHERE tenant = ?"
            var arguments: StatementArguments = [query.tenant]
            if let email = query.email {
                sql += " AND email = ?"
                _ = arguments.append(contentsOf: [UserRecord.emailKey(email)])
            }
            if let event = query.event {
                sql += " AND event = ?"
                _ = arguments.append(contentsOf: [event.rawValue])
            }
            if let since = query.since {
                sql += " AND at_ms >= ?"
                _ = arguments.append(contentsOf: [since])
            }
            sql += " ORDER BY at_ms DESC, id DESC LIMIT ?"
            _ = arguments.append(contentsOf: [query.limit])
            return try Row.fetchAll(db, sql: sql, arguments: arguments).compactMap(Self.auditEvent).reversed()
        }
    }

    /// In batches of 5,000, a transaction each: a purge after a long pause (or a shorter retention) never holds
    /// the one writer for long.
    public func deleteAuditEvents(before: Int64) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await pool.write { db in
                try db.execute(
                    sql: "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at_ms < ? ORDER BY at_ms LIMIT 5000)",
                    arguments: [before])
                return db.changesCount
            }
            total += deleted
            if deleted < 5000 { return total }
        }
    }

    // MARK: Account e-mail

    public func issueAccountCode(_ code: AccountCodeRecord, mail: OutboxMessage, minimumInterval: Int64, audit: [AuditEvent]) async throws -> Bool {
        try await pool.writeWithoutTransaction { db in
            var issued = false
            // Under the write lock from the start: two requests at once cannot both find the address quiet.
            try db.inTransaction(.immediate) {
                let last = try Int64.fetchOne(
                    db, sql: "SELECT sent_at FROM account_mail_sends WHERE tenant = ? AND email_key = ?", arguments: [code.tenant, code.emailKey])
                if let last, code.createdAt - last < minimumInterval { return .commit }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO account_mail_sends (tenant, email_key, sent_at) VALUES (?, ?, ?)",
                    arguments: [code.tenant, code.emailKey, code.createdAt])
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO account_codes
                            (tenant, email_key, purpose, user_id, code_hash, token_hash, created_at, expires_at, failures)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
                        """,
                    arguments: [
                        code.tenant, code.emailKey, code.purpose.rawValue, code.userID, code.codeHash, code.tokenHash, code.createdAt, code.expiresAt,
                    ])
                try Self.insert([mail], db)
                try Self.insert(audit, db)
                issued = true
                return .commit
            }
            return issued
        }
    }

    public func checkAccountCode(
        tenant: String, emailKey: String, purpose: AccountCodePurpose, codeHash: String, now: Int64, maximumFailures: Int, dailyFailureLimit: Int
    ) async throws -> AccountCodeCheck {
        try await pool.writeWithoutTransaction { db in
            var check = AccountCodeCheck.invalid
            try db.inTransaction(.immediate) {
                let key: StatementArguments = [tenant, emailKey, purpose.rawValue]
                let counted = try Row.fetchOne(
                    db, sql: "SELECT failures, since FROM account_code_failures WHERE tenant = ? AND email_key = ? AND purpose = ?", arguments: key)
                let today: Int = counted.flatMap { row in (row["since"] as Int64) > now - 86_400 ? row["failures"] : nil } ?? 0
                if today >= dailyFailureLimit { return .commit }
                let row = try Row.fetchOne(db, sql: "SELECT * FROM account_codes WHERE tenant = ? AND email_key = ? AND purpose = ?", arguments: key)
                let live = row.flatMap(Self.accountCode).flatMap { $0.expiresAt > now ? $0 : nil }
                if let live, live.matchesCode(codeHash) {
                    check = .valid(live)
                    return .commit
                }
                // Wrong, or nothing to be right about: the same write either way.
                try db.execute(
                    sql: """
                        INSERT INTO account_code_failures (tenant, email_key, purpose, failures, since) VALUES (?, ?, ?, 1, ?)
                        ON CONFLICT (tenant, email_key, purpose) DO UPDATE SET
                            failures = CASE WHEN since > ? THEN failures + 1 ELSE 1 END,
                            since = CASE WHEN since > ? THEN since ELSE excluded.since END
                        """, arguments: [tenant, emailKey, purpose.rawValue, now, now - 86_400, now - 86_400])
                if let live {
                    // This very request, by its token: never one issued since the read.
                    let request: StatementArguments = [tenant, emailKey, purpose.rawValue, live.tokenHash]
                    if live.failures + 1 >= maximumFailures {
                        try db.execute(
                            sql: "DELETE FROM account_codes WHERE tenant = ? AND email_key = ? AND purpose = ? AND token_hash = ?", arguments: request)
                    } else {
                        try db.execute(
                            sql: "UPDATE account_codes SET failures = failures + 1 WHERE tenant = ? AND email_key = ? AND purpose = ? AND token_hash = ?",
                            arguments: request)
                    }
                }
                return .commit
            }
            return check
        }
    }

    public func accountCode(tenant: String, purpose: AccountCodePurpose, tokenHash: String, now: Int64) async throws -> AccountCodeRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM account_codes WHERE token_hash = ? AND tenant = ? AND purpose = ? AND expires_at > ?",
                arguments: [tokenHash, tenant, purpose.rawValue, now]
            ).flatMap(Self.accountCode)
        }
    }

    public func completeAccountCode(_ code: AccountCodeRecord, now: Int64, completion: AccountCodeCompletion) async throws -> [String]? {
        try await pool.writeWithoutTransaction { db in
            var revoked: [String]?
            try db.inTransaction(.immediate) {
                try db.execute(
                    sql: "DELETE FROM account_codes WHERE tenant = ? AND email_key = ? AND purpose = ? AND token_hash = ? AND expires_at > ?",
                    arguments: [code.tenant, code.emailKey, code.purpose.rawValue, code.tokenHash, now])
                guard db.changesCount == 1 else { return .rollback }
                if let hash = completion.passwordHash {
                    try db.execute(
                        sql: "UPDATE users SET password_hash = ? WHERE id = ? AND tenant = ? AND disabled = 0", arguments: [hash, code.userID, code.tenant])
                    guard db.changesCount == 1 else { return .rollback }
                }
                try db.execute(
                    sql: "UPDATE users SET email_verified = 1 WHERE id = ? AND tenant = ? AND disabled = 0", arguments: [code.userID, code.tenant])
                guard db.changesCount == 1 else { return .rollback }
                if completion.clearsLoginFailures {
                    try db.execute(sql: "DELETE FROM login_failures WHERE tenant = ? AND email_key = ?", arguments: [code.tenant, code.emailKey])
                }
                try db.execute(
                    sql: "DELETE FROM account_code_failures WHERE tenant = ? AND email_key = ? AND purpose = ?",
                    arguments: [code.tenant, code.emailKey, code.purpose.rawValue])
                var sids: [String] = []
                if let until = completion.revokeLoginsUntil {
                    sids = try String.fetchAll(
                        db, sql: "SELECT sid FROM logins WHERE tenant = ? AND user_id = ? AND revoked = 0", arguments: [code.tenant, code.userID])
                    try Self.revoke(sids: sids, until: until, db)
                }
                try Self.insert(completion.mail, db)
                try Self.insert(completion.audit, db)
                revoked = sids
                return .commit
            }
            return revoked
        }
    }

    public func deleteAccountCodes(expiredBy now: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM account_codes WHERE expires_at <= ?", arguments: [now])
            let deleted = db.changesCount
            try db.execute(sql: "DELETE FROM account_mail_sends WHERE sent_at < ?", arguments: [now - 3600])
            try db.execute(sql: "DELETE FROM account_code_failures WHERE since < ?", arguments: [now - 86_400])
            return deleted
        }
    }

    public func enqueueMail(_ messages: [OutboxMessage]) async throws {
        guard !messages.isEmpty else { return }
        try await pool.write { db in try Self.insert(messages, db) }
    }

    public func claimMail(now: Int64, lease: Int64, limit: Int) async throws -> [OutboxMessage] {
        try await pool.writeWithoutTransaction { db in
            var claimed: [OutboxMessage] = []
            try db.inTransaction(.immediate) {
                claimed = try Row.fetchAll(
                    db, sql: "SELECT * FROM mail_outbox WHERE next_attempt_at <= ? ORDER BY next_attempt_at, created_at LIMIT ?", arguments: [now, limit]
                ).map(Self.outboxMessage)
                for message in claimed {
                    try db.execute(sql: "UPDATE mail_outbox SET next_attempt_at = ? WHERE id = ?", arguments: [now + lease, message.id])
                }
                return .commit
            }
            return claimed
        }
    }

    public func finishMail(id: String, audit: [AuditEvent]) async throws {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM mail_outbox WHERE id = ?", arguments: [id])
            try Self.insert(audit, db)
        }
    }

    public func retryMail(id: String, attempts: Int, nextAttemptAt: Int64, lastError: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE mail_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                arguments: [attempts, nextAttemptAt, lastError, id])
        }
    }

    public func pendingMailCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM mail_outbox") ?? 0 }
    }

    private static func insert(_ messages: [OutboxMessage], _ db: Database) throws {
        for message in messages {
            try db.execute(
                sql: """
                    INSERT INTO mail_outbox (id, tenant, kind, user_id, email, sealed_message, created_at, give_up_at, attempts, next_attempt_at, last_error)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    message.id, message.tenant, message.kind, message.userID, message.email, message.sealedMessage, message.createdAt, message.giveUpAt,
                    message.attempts, message.nextAttemptAt, message.lastError,
                ])
        }
    }

    private static func accountCode(_ row: Row) -> AccountCodeRecord? {
        guard let purpose = AccountCodePurpose(rawValue: row["purpose"]) else { return nil }
        return AccountCodeRecord(
            tenant: row["tenant"], emailKey: row["email_key"], purpose: purpose, userID: row["user_id"], codeHash: row["code_hash"],
            tokenHash: row["token_hash"], createdAt: row["created_at"], expiresAt: row["expires_at"], failures: row["failures"])
    }

    private static func outboxMessage(_ row: Row) -> OutboxMessage {
        OutboxMessage(
            id: row["id"], tenant: row["tenant"], kind: row["kind"], userID: row["user_id"], email: row["email"], sealedMessage: row["sealed_message"],
            createdAt: row["created_at"], giveUpAt: row["give_up_at"], attempts: row["attempts"], nextAttemptAt: row["next_attempt_at"],
            lastError: row["last_error"])
    }

    private static func insert(_ events: [AuditEvent], _ db: Database) throws {
        for event in events {
            try db.execute(
                sql: """
                    INSERT INTO audit_events (tenant, at_ms, event, user_id, email, sid, ip, user_agent, request_id, trace_id, actor, error, details)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    event.tenant, event.time, event.event.rawValue, event.userID, event.email, event.sid, event.ip, event.userAgent,
                    event.requestID, event.traceID, event.actor.rawValue, event.error, event.encodedDetails,
                ])
        }
    }

    /// nil for a row of an event or actor this version does not know (written by a newer one).
    private static func auditEvent(_ row: Row) -> AuditEvent? {
        guard let kind = AuditEventKind(rawValue: row["event"]), let actor = AuditActor(rawValue: row["actor"]) else { return nil }
        var event = AuditEvent(
            kind, tenant: row["tenant"],
            context: AuditContext(actor: actor, ip: row["ip"], userAgent: row["user_agent"], requestID: row["request_id"], traceID: row["trace_id"]),
            userID: row["user_id"], email: row["email"], sid: row["sid"], error: row["error"], details: AuditEvent.decodeDetails(row["details"]),
            time: row["at_ms"])
        event.id = row["id"]
        return event
    }

    // MARK: Rows

    private static func insert(_ token: RefreshTokenRecord, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO refresh_tokens (hash, tenant, sid, user_id, expires_at) VALUES (?, ?, ?, ?, ?)",
            arguments: [token.hash, token.tenant, token.sid, token.userID, token.expiresAt])
    }

    private static func revoke(sids: [String], until: Int64, _ db: Database) throws {
        for sid in sids {
            try db.execute(sql: "UPDATE logins SET revoked = 1 WHERE sid = ?", arguments: [sid])
            try db.execute(
                sql: "INSERT INTO revocations (kind, value, expires_at, recorded_at_ms) VALUES ('sid', ?, ?, ?)",
                arguments: [sid, until, Self.milliseconds()])
        }
    }

    private static func milliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    private static func user(_ row: Row) -> UserRecord {
        UserRecord(
            id: row["id"], tenant: row["tenant"], email: row["email"], name: row["name"], roles: UserRecord.decodeRoles(row["roles"]),
            passwordHash: row["password_hash"], disabled: row["disabled"], emailVerified: row["email_verified"], createdAt: row["created_at"])
    }

    private static func key(_ row: Row) -> StoredSigningKey {
        StoredSigningKey(
            tenant: row["tenant"], kid: row["kid"], algorithm: row["algorithm"], sealedPrivateKey: row["sealed_private_key"],
            createdAt: row["created_at"], retiredAt: row["retired_at"], verifiesUntil: row["verifies_until"])
    }

}

extension SQLiteIdentityStore {
    /// Every table of ``StoreTable/schema``, read in one transaction (one consistent copy), for `store migrate`.
    public func exportTables() async throws -> [StoreTable] {
        try await pool.read { db in
            try StoreTable.schema.map { table in
                let rows = try Row.fetchAll(db, sql: "SELECT \(table.columns.joined(separator: ", ")) FROM \(table.name) ORDER BY rowid")
                return StoreTable(name: table.name, columns: table.columns, rows: rows.map { row in
                    table.columns.map { column in
                        switch row[column] as DatabaseValue? {
                        case .none: return .null
                        case .some(let value):
                            switch value.storage {
                            case .null: return .null
                            case .int64(let number): return .integer(number)
                            case .double(let number): return .integer(Int64(number))
                            case .string(let text): return .text(text)
                            case .blob(let data): return .blob(Array(data))
                            }
                        }
                    }
                })
            }
        }
    }
}

/// `PRAGMA data_version` of one SQLite file, read on a connection of its own.
final class DataVersionWatcher: Sendable {
    private struct State {
        var queue: DatabaseQueue?
        var version: Int?
    }

    private let path: String
    private let state = Mutex(State())

    init(path: String) {
        self.path = path
    }

    /// Whether another connection committed since the last call (false on the first, and when the file cannot be
    /// read: the periodic catch-up covers that).
    func hasChanged() async -> Bool {
        do {
            let queue = try state.withLock { state in
                if let queue = state.queue { return queue }
                var configuration = Configuration()
                configuration.readonly = true
                let queue = try DatabaseQueue(path: path, configuration: configuration)
                state.queue = queue
                return queue
            }
            let version = try await queue.read { db in try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
            return state.withLock { state in
                defer { state.version = version }
                return state.version.map { $0 != version } ?? false
            }
        } catch {
            state.withLock { $0 = State() }
            return false
        }
    }
}
