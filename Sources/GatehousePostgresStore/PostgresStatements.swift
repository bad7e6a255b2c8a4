import Foundation
import GatehouseIdentity
import PostgresNIO

// The statements of the login and session path, prepared once per connection (postgres-nio prepares them on
// first use): they run for every login, refresh and uncached session cookie.

/// The columns of a user row, in the order ``UserColumns/decode(_:)`` reads them.
enum UserColumns {
    static let list = "id, tenant, email, name, roles, password_hash, disabled, email_verified, created_at"

    static func decode(_ row: PostgresRow) throws -> UserRecord {
        let (id, tenant, email, name, roles, passwordHash, disabled, emailVerified, createdAt) = try row.decode(
            (String, String, String, String, String, String, Bool, Bool, Int64).self)
        return UserRecord(
            id: id, tenant: tenant, email: email, name: name, roles: UserRecord.decodeRoles(roles), passwordHash: passwordHash, disabled: disabled,
            emailVerified: emailVerified, createdAt: createdAt)
    }
}

/// The columns of a signing key row.
enum KeyColumns {
    static let list = "tenant, kid, algorithm, sealed_private_key, created_at, retired_at, verifies_until"

    static func decode(_ row: PostgresRow) throws -> StoredSigningKey {
        let (tenant, kid, algorithm, sealed, createdAt, retiredAt, verifiesUntil) = try row.decode(
            (String, String, String, Data, Int64, Int64?, Int64?).self)
        return StoredSigningKey(
            tenant: tenant, kid: kid, algorithm: algorithm, sealedPrivateKey: sealed, createdAt: createdAt, retiredAt: retiredAt,
            verifiesUntil: verifiesUntil)
    }
}

struct UserByEmail: PostgresPreparedStatement {
    static let sql = "SELECT \(UserColumns.list) FROM users WHERE tenant = $1 AND email_key = $2"
    typealias Row = UserRecord

    var tenant: String
    var emailKey: String

    func makeBindings() throws -> PostgresBindings { .strings(tenant, emailKey) }

    func decodeRow(_ row: PostgresRow) throws -> UserRecord { try UserColumns.decode(row) }
}

struct UserByID: PostgresPreparedStatement {
    static let sql = "SELECT \(UserColumns.list) FROM users WHERE tenant = $1 AND id = $2"
    typealias Row = UserRecord

    var tenant: String
    var id: String

    func makeBindings() throws -> PostgresBindings { .strings(tenant, id) }

    func decodeRow(_ row: PostgresRow) throws -> UserRecord { try UserColumns.decode(row) }
}

struct ClearLoginFailures: PostgresPreparedStatement {
    static let sql = "DELETE FROM login_failures WHERE tenant = $1 AND email_key = $2"
    typealias Row = Void

    var tenant: String
    var emailKey: String

    func makeBindings() throws -> PostgresBindings { .strings(tenant, emailKey) }

    func decodeRow(_ row: PostgresRow) throws {}
}

struct SessionByHash: PostgresPreparedStatement {
    static let sql = """
        SELECT s.hash, s.tenant, s.sid, s.user_id, s.created_at, s.last_seen_at, s.expires_at FROM sessions s JOIN logins l ON l.sid = s.sid
        WHERE s.hash = $1 AND s.tenant = $2 AND NOT l.revoked
        """
    typealias Row = SessionRecord

    var hash: String
    var tenant: String

    func makeBindings() throws -> PostgresBindings { .strings(hash, tenant) }

    func decodeRow(_ row: PostgresRow) throws -> SessionRecord {
        let (hash, tenant, sid, userID, createdAt, lastSeenAt, expiresAt) = try row.decode((String, String, String, String, Int64, Int64, Int64).self)
        return SessionRecord(hash: hash, tenant: tenant, sid: sid, userID: userID, createdAt: createdAt, lastSeenAt: lastSeenAt, expiresAt: expiresAt)
    }
}

extension PostgresBindings {
    /// The text parameters of a statement, in order.
    static func strings(_ values: String...) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { bindings.append(value) }
        return bindings
    }
}
