import Foundation
import GatehouseIdentity
import PostgresNIO

/// §11 on PostgreSQL: reset and verification requests and the outbox. What SQLite gets from its single writer is an
/// advisory lock per address here (issuing and checking codes) and `FOR UPDATE SKIP LOCKED` for the outbox, so two
/// replicas never claim one message.
extension PostgresIdentityStore {
    private static let codeColumns = "tenant, email_key, purpose, user_id, code_hash, token_hash, created_at, expires_at, failures"
    private static let outboxColumns = "id, tenant, kind, user_id, email, sealed_message, created_at, give_up_at, attempts, next_attempt_at, last_error"

    public func issueAccountCode(_ code: AccountCodeRecord, mail: OutboxMessage, minimumInterval: Int64, audit: [AuditEvent]) async throws -> Bool {
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection -> Bool in
                try await Self.lockAddress(tenant: code.tenant, emailKey: code.emailKey, connection, logger)
                var last: Int64?
                for try await value in try await connection.query(
                    "SELECT sent_at FROM account_mail_sends WHERE tenant = \(code.tenant) AND email_key = \(code.emailKey)", logger: logger
                ).decode(Int64.self) {
                    last = value
                }
                if let last, code.createdAt - last < minimumInterval { return false }
                try await connection.query(
                    """
                    INSERT INTO account_mail_sends (tenant, email_key, sent_at) VALUES (\(code.tenant), \(code.emailKey), \(code.createdAt))
                    ON CONFLICT (tenant, email_key) DO UPDATE SET sent_at = EXCLUDED.sent_at
                    """, logger: logger)
                try await connection.query(
                    """
                    INSERT INTO account_codes (\(unescaped: Self.codeColumns))
                    VALUES (\(code.tenant), \(code.emailKey), \(code.purpose.rawValue), \(code.userID), \(code.codeHash), \(code.tokenHash),
                            \(code.createdAt), \(code.expiresAt), 0)
                    ON CONFLICT (tenant, email_key, purpose) DO UPDATE SET
                        user_id = EXCLUDED.user_id, code_hash = EXCLUDED.code_hash, token_hash = EXCLUDED.token_hash,
                        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, failures = 0
                    """, logger: logger)
                try await Self.insert([mail], connection, logger)
                try await Self.insert(audit, connection, logger)
                return true
            }
        }
    }

    public func checkAccountCode(
        tenant: String, emailKey: String, purpose: AccountCodePurpose, codeHash: String, now: Int64, maximumFailures: Int, dailyFailureLimit: Int
    ) async throws -> AccountCodeCheck {
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection -> AccountCodeCheck in
                // One check at a time per address and purpose, whether or not a request exists to lock.
                try await Self.lockAddress(tenant: tenant, emailKey: emailKey + "/" + purpose.rawValue, connection, logger)
                var today = 0
                for try await (failures, since) in try await connection.query(
                    """
                    SELECT failures, since FROM account_code_failures
                    WHERE tenant = \(tenant) AND email_key = \(emailKey) AND purpose = \(purpose.rawValue)
                    """, logger: logger
                ).decode((Int32, Int64).self) where since > now - 86_400 {
                    today = Int(failures)
                }
                if today >= dailyFailureLimit { return .invalid }
                let rows = try await connection.query(
                    """
                    SELECT \(unescaped: Self.codeColumns) FROM account_codes
                    WHERE tenant = \(tenant) AND email_key = \(emailKey) AND purpose = \(purpose.rawValue)
                    """, logger: logger)
                var found: AccountCodeRecord?
                for try await row in rows { found = try Self.accountCode(row) }
                let live = found.flatMap { $0.expiresAt > now ? $0 : nil }
                if let live, live.matchesCode(codeHash) { return .valid(live) }
                // Wrong, or nothing to be right about: the same write either way.
                let dayStart = now - 86_400
                try await connection.query(
                    """
                    INSERT INTO account_code_failures (tenant, email_key, purpose, failures, since)
                    VALUES (\(tenant), \(emailKey), \(purpose.rawValue), 1, \(now))
                    ON CONFLICT (tenant, email_key, purpose) DO UPDATE SET
                        failures = CASE WHEN account_code_failures.since > \(dayStart) THEN account_code_failures.failures + 1 ELSE 1 END,
                        since = CASE WHEN account_code_failures.since > \(dayStart) THEN account_code_failures.since ELSE EXCLUDED.since END
                    """, logger: logger)
                if let live {
                    // This very request, by its token: issuing takes another lock, so a newer request may have
                    // replaced it since the read, and that one must not pay for this wrong code.
                    if live.failures + 1 >= maximumFailures {
                        try await connection.query(
                            """
                            DELETE FROM account_codes
                            WHERE tenant = \(tenant) AND email_key = \(emailKey) AND purpose = \(purpose.rawValue) AND token_hash = \(live.tokenHash)
                            """, logger: logger)
                    } else {
                        try await connection.query(
                            """
                            UPDATE account_codes SET failures = failures + 1
                            WHERE tenant = \(tenant) AND email_key = \(emailKey) AND purpose = \(purpose.rawValue) AND token_hash = \(live.tokenHash)
                            """, logger: logger)
                    }
                }
                return .invalid
            }
        }
    }

    public func accountCode(tenant: String, purpose: AccountCodePurpose, tokenHash: String, now: Int64) async throws -> AccountCodeRecord? {
        try await run { connection, logger in
            let rows = try await connection.query(
                """
                SELECT \(unescaped: Self.codeColumns) FROM account_codes
                WHERE token_hash = \(tokenHash) AND tenant = \(tenant) AND purpose = \(purpose.rawValue) AND expires_at > \(now)
                """, logger: logger)
            var found: AccountCodeRecord?
            for try await row in rows { found = try Self.accountCode(row) }
            return found
        }
    }

    public func completeAccountCode(_ code: AccountCodeRecord, now: Int64, completion: AccountCodeCompletion) async throws -> [String]? {
        try await run { connection, logger in
            do {
                return try await connection.transaction(logger: logger) { connection -> [String]? in
                    let spent = try await connection.query(
                        """
                        DELETE FROM account_codes WHERE tenant = \(code.tenant) AND email_key = \(code.emailKey) AND purpose = \(code.purpose.rawValue)
                            AND token_hash = \(code.tokenHash) AND expires_at > \(now) RETURNING 1
                        """, logger: logger
                    ).collect().count
                    guard spent == 1 else { throw NoLongerLive() }
                    let updated = try await connection.query(
                        """
                        UPDATE users SET password_hash = COALESCE(\(completion.passwordHash), password_hash),
                            email_verified = true
                        WHERE id = \(code.userID) AND tenant = \(code.tenant) AND NOT disabled RETURNING 1
                        """, logger: logger
                    ).collect().count
                    guard updated == 1 else { throw NoLongerLive() }
                    if completion.clearsLoginFailures {
                        try await connection.query(
                            "DELETE FROM login_failures WHERE tenant = \(code.tenant) AND email_key = \(code.emailKey)", logger: logger)
                    }
                    try await connection.query(
                        """
                        DELETE FROM account_code_failures
                        WHERE tenant = \(code.tenant) AND email_key = \(code.emailKey) AND purpose = \(code.purpose.rawValue)
                        """, logger: logger)
                    var sids: [String] = []
                    if let until = completion.revokeLoginsUntil {
                        let rows = try await connection.query(
                            "SELECT sid FROM logins WHERE tenant = \(code.tenant) AND user_id = \(code.userID) AND NOT revoked", logger: logger)
                        for try await sid in rows.decode(String.self) { sids.append(sid) }
                        try await Self.revoke(sids: sids, until: until, connection, logger)
                    }
                    try await Self.insert(completion.mail, connection, logger)
                    try await Self.insert(completion.audit, connection, logger)
                    return sids
                }
            } catch is NoLongerLive {
                return nil
            }
        }
    }

    public func deleteAccountCodes(expiredBy now: Int64) async throws -> Int {
        try await run { connection, logger in
            let deleted = try await connection.query("DELETE FROM account_codes WHERE expires_at <= \(now) RETURNING 1", logger: logger).collect().count
            try await connection.query("DELETE FROM account_mail_sends WHERE sent_at < \(now - 3600)", logger: logger)
            try await connection.query("DELETE FROM account_code_failures WHERE since < \(now - 86_400)", logger: logger)
            return deleted
        }
    }

    public func enqueueMail(_ messages: [OutboxMessage]) async throws {
        guard !messages.isEmpty else { return }
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection in try await Self.insert(messages, connection, logger) }
        }
    }

    public func claimMail(now: Int64, lease: Int64, limit: Int) async throws -> [OutboxMessage] {
        try await run { connection, logger in
            let rows = try await connection.query(
                """
                UPDATE mail_outbox SET next_attempt_at = \(now + lease)
                WHERE id IN (SELECT id FROM mail_outbox WHERE next_attempt_at <= \(now) ORDER BY next_attempt_at, created_at
                             LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED)
                RETURNING \(unescaped: Self.outboxColumns)
                """, logger: logger)
            var messages: [OutboxMessage] = []
            for try await row in rows { messages.append(try Self.outboxMessage(row)) }
            return messages
        }
    }

    public func finishMail(id: String, audit: [AuditEvent]) async throws {
        try await run { connection, logger in
            try await connection.transaction(logger: logger) { connection in
                try await connection.query("DELETE FROM mail_outbox WHERE id = \(id)", logger: logger)
                try await Self.insert(audit, connection, logger)
            }
        }
    }

    public func retryMail(id: String, attempts: Int, nextAttemptAt: Int64, lastError: String) async throws {
        try await run { connection, logger in
            try await connection.query(
                "UPDATE mail_outbox SET attempts = \(Int32(clamping: attempts)), next_attempt_at = \(nextAttemptAt), last_error = \(lastError) WHERE id = \(id)",
                logger: logger)
        }
    }

    public func pendingMailCount() async throws -> Int {
        try await run { connection, logger in
            var count = 0
            for try await value in try await connection.query("SELECT count(*) FROM mail_outbox", logger: logger).decode(Int64.self) { count = Int(value) }
            return count
        }
    }

    // MARK: Rows

    /// One address at a time across every replica: the rate-limit read and the insert cannot interleave.
    private static func lockAddress(tenant: String, emailKey: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let lockKey = "mail/" + tenant + "/" + emailKey
        try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(lockKey), 0))", logger: logger)
    }

    private static func insert(_ messages: [OutboxMessage], _ connection: PostgresConnection, _ logger: Logger) async throws {
        for message in messages {
            try await connection.query(
                """
                INSERT INTO mail_outbox (\(unescaped: outboxColumns))
                VALUES (\(message.id), \(message.tenant), \(message.kind), \(message.userID), \(message.email), \(ByteBuffer(data: message.sealedMessage)),
                        \(message.createdAt), \(message.giveUpAt), \(Int32(clamping: message.attempts)), \(message.nextAttemptAt), \(message.lastError))
                """, logger: logger)
        }
    }

    private static func accountCode(_ row: PostgresRow) throws -> AccountCodeRecord? {
        let (tenant, emailKey, purpose, userID, codeHash, tokenHash, createdAt, expiresAt, failures) = try row.decode(
            (String, String, String, String, String, String, Int64, Int64, Int32).self)
        guard let purpose = AccountCodePurpose(rawValue: purpose) else { return nil }
        return AccountCodeRecord(
            tenant: tenant, emailKey: emailKey, purpose: purpose, userID: userID, codeHash: codeHash, tokenHash: tokenHash, createdAt: createdAt,
            expiresAt: expiresAt, failures: Int(failures))
    }

    private static func outboxMessage(_ row: PostgresRow) throws -> OutboxMessage {
        let (id, tenant, kind, userID, email, sealed, createdAt, giveUpAt, attempts, nextAttemptAt, lastError) = try row.decode(
            (String, String, String, String?, String, ByteBuffer, Int64, Int64, Int32, Int64, String?).self)
        return OutboxMessage(
            id: id, tenant: tenant, kind: kind, userID: userID, email: email, sealedMessage: Data(buffer: sealed), createdAt: createdAt,
            giveUpAt: giveUpAt, attempts: Int(attempts), nextAttemptAt: nextAttemptAt, lastError: lastError)
    }
}

/// Thrown inside a transaction to roll it back when the request it would spend is gone.
private struct NoLongerLive: Error {}
