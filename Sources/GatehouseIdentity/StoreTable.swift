/// One table of a store, as `gatehouse store migrate` copies it from one store to another.
public struct StoreTable: Sendable, Equatable {
    /// A value as both stores can hold it.
    public enum Value: Sendable, Equatable {
        case null
        case integer(Int64)
        case text(String)
        case blob([UInt8])
    }

    public var name: String
    public var columns: [String]
    public var rows: [[Value]]

    public init(name: String, columns: [String], rows: [[Value]]) {
        self.name = name
        self.columns = columns
        self.rows = rows
    }

    /// The tables every store holds and their columns, parents before children (logins need users). Both stores
    /// create exactly these; flags are integers 0/1 here.
    public static let schema: [(name: String, columns: [String])] = [
        ("users", ["id", "tenant", "email", "email_key", "name", "roles", "password_hash", "disabled", "email_verified", "created_at"]),
        ("logins", ["sid", "tenant", "user_id", "created_at", "revoked"]),
        ("refresh_tokens", ["hash", "tenant", "sid", "user_id", "expires_at", "spent"]),
        ("sessions", ["hash", "tenant", "sid", "user_id", "created_at", "last_seen_at", "expires_at"]),
        ("revocations", ["id", "kind", "value", "expires_at", "recorded_at_ms"]),
        ("signing_keys", ["tenant", "kid", "algorithm", "sealed_private_key", "created_at", "retired_at", "verifies_until"]),
        ("login_failures", ["tenant", "email_key", "at"]),
        ("email_conflicts", ["tenant", "email_key", "user_id"]),
        (
            "audit_events",
            ["id", "tenant", "at_ms", "event", "user_id", "email", "sid", "ip", "user_agent", "request_id", "trace_id", "actor", "error", "details"]
        ),
        ("account_codes", ["tenant", "email_key", "purpose", "user_id", "code_hash", "token_hash", "created_at", "expires_at", "failures"]),
        (
            "mail_outbox",
            ["id", "tenant", "kind", "user_id", "email", "sealed_message", "created_at", "give_up_at", "attempts", "next_attempt_at", "last_error"]
        ),
        ("account_mail_sends", ["tenant", "email_key", "sent_at"]),
        ("account_code_failures", ["tenant", "email_key", "purpose", "failures", "since"]),
    ]
}
