/// The tables of §11 in SQLite (migration v6): `email_verified` on users, reset and verification requests, the
/// outbox of account e-mail, when each address was last sent a message, and wrong codes per address and day. PostgreSQL has the same in its migration 3.
enum AccountEmailSchema {
    static let sqlite = """
        ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE account_codes (
            tenant TEXT NOT NULL,
            email_key TEXT NOT NULL,
            purpose TEXT NOT NULL,
            user_id TEXT NOT NULL,
            code_hash TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant, email_key, purpose)
        );
        CREATE TABLE mail_outbox (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            kind TEXT NOT NULL,
            user_id TEXT,
            email TEXT NOT NULL,
            sealed_message BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            give_up_at INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error TEXT
        );
        CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at);
        CREATE TABLE account_mail_sends (
            tenant TEXT NOT NULL,
            email_key TEXT NOT NULL,
            sent_at INTEGER NOT NULL,
            PRIMARY KEY (tenant, email_key)
        );
        CREATE TABLE account_code_failures (
            tenant TEXT NOT NULL,
            email_key TEXT NOT NULL,
            purpose TEXT NOT NULL,
            failures INTEGER NOT NULL,
            since INTEGER NOT NULL,
            PRIMARY KEY (tenant, email_key, purpose)
        );
        """
}
