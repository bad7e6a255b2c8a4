import GatehouseIdentity
import Logging
import PostgresNIO

/// The PostgreSQL schema, as numbered migrations applied in order, each once, however many replicas start together.
enum PostgresSchema {
    struct Migration {
        var version: Int
        var name: String
        var statements: [String]
    }

    /// Any 64-bit number no other application on the database uses for an advisory lock.
    static let migrationLock: Int64 = 0x6761_7465_686f_7573  // "gatehous"

    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "users, logins, refresh tokens, sessions, revocations, keys, lockout",
            statements: [
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    email TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    name TEXT NOT NULL,
                    roles TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    disabled BOOLEAN NOT NULL DEFAULT false,
                    created_at BIGINT NOT NULL,
                    UNIQUE (tenant, email_key)
                )
                """,
                """
                CREATE TABLE logins (
                    sid TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users(id),
                    created_at BIGINT NOT NULL,
                    revoked BOOLEAN NOT NULL DEFAULT false
                )
                """,
                "CREATE INDEX logins_by_user ON logins(user_id)",
                """
                CREATE TABLE refresh_tokens (
                    hash TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    sid TEXT NOT NULL REFERENCES logins(sid),
                    user_id TEXT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    spent BOOLEAN NOT NULL DEFAULT false
                )
                """,
                """
                CREATE TABLE sessions (
                    hash TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    sid TEXT NOT NULL REFERENCES logins(sid),
                    user_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    last_seen_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX sessions_by_tenant_expiry ON sessions(tenant, expires_at)",
                // `txid` is the writing transaction's id: the catch-up cursor (see PostgresIdentityStore.revocations).
                """
                CREATE TABLE revocations (
                    id BIGSERIAL PRIMARY KEY,
                    kind TEXT NOT NULL,
                    value TEXT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    recorded_at_ms BIGINT NOT NULL,
                    txid xid8 NOT NULL DEFAULT pg_current_xact_id()
                )
                """,
                "CREATE INDEX revocations_by_txid ON revocations(txid)",
                """
                CREATE TABLE signing_keys (
                    tenant TEXT NOT NULL,
                    kid TEXT NOT NULL,
                    algorithm TEXT NOT NULL,
                    sealed_private_key BYTEA NOT NULL,
                    created_at BIGINT NOT NULL,
                    retired_at BIGINT,
                    verifies_until BIGINT,
                    PRIMARY KEY (tenant, kid)
                )
                """,
                // Replicas racing to create a tenant's first key: the database lets exactly one be active.
                "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(tenant) WHERE retired_at IS NULL",
                """
                CREATE TABLE login_failures (
                    id BIGSERIAL PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX login_failures_by_email ON login_failures(tenant, email_key, at)",
                "CREATE TABLE email_conflicts (tenant TEXT NOT NULL, email_key TEXT NOT NULL, user_id TEXT NOT NULL)",
            ]),
        Migration(
            version: 2, name: "audit events",
            statements: [
                """
                CREATE TABLE audit_events (
                    id BIGSERIAL PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    at_ms BIGINT NOT NULL,
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
                )
                """,
                "CREATE INDEX audit_events_by_tenant_time ON audit_events(tenant, at_ms)",
                "CREATE INDEX audit_events_by_time ON audit_events(at_ms)",
            ]),
        Migration(
            version: 3, name: "account e-mail",
            statements: [
                // Users who existed before the store recorded verification were accepted under the rules of their time.
                "ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT true",
                """
                CREATE TABLE account_codes (
                    tenant TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    purpose TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    code_hash TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    failures INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (tenant, email_key, purpose)
                )
                """,
                """
                CREATE TABLE mail_outbox (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    user_id TEXT,
                    email TEXT NOT NULL,
                    sealed_message BYTEA NOT NULL,
                    created_at BIGINT NOT NULL,
                    give_up_at BIGINT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at BIGINT NOT NULL,
                    last_error TEXT
                )
                """,
                "CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at)",
                """
                CREATE TABLE account_mail_sends (
                    tenant TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    sent_at BIGINT NOT NULL,
                    PRIMARY KEY (tenant, email_key)
                )
                """,
                """
                CREATE TABLE account_code_failures (
                    tenant TEXT NOT NULL,
                    email_key TEXT NOT NULL,
                    purpose TEXT NOT NULL,
                    failures INTEGER NOT NULL,
                    since BIGINT NOT NULL,
                    PRIMARY KEY (tenant, email_key, purpose)
                )
                """,
            ]),
    ]

    /// Applies the pending migrations in one transaction under an advisory lock: replicas starting together wait
    /// for the first, then find nothing left to do. A failed migration changes nothing (PostgreSQL's DDL is
    /// transactional). Returns the versions this call applied.
    @discardableResult
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        // The revocation cursor needs xid8 and pg_snapshot_xmin (PostgreSQL 13).
        var version = 0
        for try await number in try await connection.query("SELECT current_setting('server_version_num')::int", logger: logger).decode(Int.self) {
            version = number
        }
        guard version >= 130_000 else {
            throw IdentityStoreError.unavailable("PostgreSQL \(version / 10_000) is too old: the store needs PostgreSQL 13 or later")
        }
        return try await connection.transaction(logger: logger) { connection in
            // Waiting for another replica's migrations is expected here, however long the session's limits are.
            try await connection.query("SET LOCAL lock_timeout = 0", logger: logger)
            try await connection.query("SET LOCAL statement_timeout = 0", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS gatehouse_schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            var applied = Set<Int>()
            for try await version in try await connection.query("SELECT version FROM gatehouse_schema_migrations", logger: logger)
                .decode(Int.self)
            {
                applied.insert(version)
            }
            var done: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO gatehouse_schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
                done.append(migration.version)
            }
            return done
        }
    }
}
