import GatehouseConfiguration
import Foundation

/// A user of one tenant, as stored.
public struct UserRecord: Sendable, Hashable {
    public var id: String
    public var tenant: String
    /// The canonical address (``EmailAddress``); matching uses ``emailKey``.
    public var email: String
    public var name: String
    public var roles: [String]
    public var passwordHash: String
    public var disabled: Bool
    /// Whether the user proved the address (§11): by a verification link or code, or a password reset. Users added
    /// with the CLI or imported are verified; so are users who existed before the store recorded it.
    public var emailVerified: Bool
    /// Seconds since 1970.
    public var createdAt: Int64

    public init(
        id: String = UUID().uuidString.lowercased(), tenant: String, email: String, name: String, roles: [String], passwordHash: String,
        disabled: Bool = false, emailVerified: Bool = false, createdAt: Int64
    ) {
        self.emailVerified = emailVerified
        self.id = id
        self.tenant = tenant
        self.email = email
        self.name = name
        self.roles = roles
        self.passwordHash = passwordHash
        self.disabled = disabled
        self.createdAt = createdAt
    }

    /// Emails are unique per tenant ignoring case.
    public var emailKey: String { Self.emailKey(email) }

    /// The canonical form of an address (§5), as stored and looked up.
    public static func emailKey(_ email: String) -> String { EmailAddress.canonicalize(email) }

    /// The roles as both stores keep them: a JSON array of strings.
    public var encodedRoles: String {
        String(decoding: (try? JSONEncoder().encode(roles)) ?? Data("[]".utf8), as: UTF8.self)
    }

    /// Reads ``encodedRoles``; a stored value that is not a JSON list of strings gives no roles (never more).
    public static func decodeRoles(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }
}

/// One login (a session of refresh tokens): its id is the `sid` claim of every access token issued under it.
public struct LoginRecord: Sendable, Hashable {
    public var sid: String
    public var tenant: String
    public var userID: String
    public var createdAt: Int64

    public init(sid: String, tenant: String, userID: String, createdAt: Int64) {
        self.sid = sid
        self.tenant = tenant
        self.userID = userID
        self.createdAt = createdAt
    }
}

/// A refresh token, known only by the SHA-256 of its value.
public struct RefreshTokenRecord: Sendable, Hashable {
    public var hash: String
    public var tenant: String
    public var sid: String
    public var userID: String
    public var expiresAt: Int64

    public init(hash: String, tenant: String, sid: String, userID: String, expiresAt: Int64) {
        self.hash = hash
        self.tenant = tenant
        self.sid = sid
        self.userID = userID
        self.expiresAt = expiresAt
    }
}

/// What presenting a refresh token did.
public enum RefreshOutcome: Sendable, Equatable {
    /// The token was live: it is now spent and `replacement` took its place.
    case rotated(RefreshTokenRecord)
    /// The token had already been spent: its whole login is now revoked.
    case reused(sid: String)
    /// Unknown, of another tenant, expired, or of a revoked login.
    case invalid
}

/// A tenant's signing key as stored: the private part sealed with the master key.
public struct StoredSigningKey: Sendable, Hashable {
    public var tenant: String
    public var kid: String
    public var algorithm: String
    public var sealedPrivateKey: Data
    public var createdAt: Int64
    /// When it stopped signing; nil for the active key.
    public var retiredAt: Int64?
    /// Until when it still verifies (and is published); nil while active.
    public var verifiesUntil: Int64?

    public init(
        tenant: String, kid: String, algorithm: String, sealedPrivateKey: Data, createdAt: Int64, retiredAt: Int64? = nil,
        verifiesUntil: Int64? = nil
    ) {
        self.tenant = tenant
        self.kid = kid
        self.algorithm = algorithm
        self.sealedPrivateKey = sealedPrivateKey
        self.createdAt = createdAt
        self.retiredAt = retiredAt
        self.verifiesUntil = verifiesUntil
    }
}

/// A revoked `jti` or `sid`, as replicas learn about it.
public struct RevocationRecord: Sendable, Hashable {
    public var id: Int64
    /// `jti` or `sid`.
    public var kind: String
    public var value: String
    public var expiresAt: Int64
    /// When it was recorded, in milliseconds since 1970 (how long it took to reach a replica is measured from here).
    public var recordedAtMilliseconds: Int64

    public init(id: Int64, kind: String, value: String, expiresAt: Int64, recordedAtMilliseconds: Int64) {
        self.id = id
        self.kind = kind
        self.value = value
        self.expiresAt = expiresAt
        self.recordedAtMilliseconds = recordedAtMilliseconds
    }
}

public enum IdentityStoreError: Error, Equatable, CustomStringConvertible {
    case emailTaken
    case notFound
    /// The database cannot be reached (or did not answer in time). The reason never holds a password.
    case unavailable(String)

    public var description: String {
        switch self {
        case .emailTaken: return "a user with this email already exists"
        case .notFound: return "no such user"
        case .unavailable(let reason): return "the identity store is unavailable: \(reason)"
        }
    }

    /// One line for a store failure: the reason of ``unavailable(_:)`` alone, anything else as it describes itself.
    public static func reason(of error: any Error) -> String {
        if case IdentityStoreError.unavailable(let reason) = error { return reason }
        return "\(error)"
    }
}

/// A browser session (§7), known only by the SHA-256 of its cookie value. It is a login (its `sid` is in `logins`),
/// so everything that revokes logins (logout, a password change, disabling the user) ends it too.
public struct SessionRecord: Sendable, Hashable {
    public var hash: String
    public var tenant: String
    public var sid: String
    public var userID: String
    public var createdAt: Int64
    /// The last use that was written down; the idle timeout counts from here.
    public var lastSeenAt: Int64
    /// The absolute end, fixed when the session starts.
    public var expiresAt: Int64

    public init(hash: String, tenant: String, sid: String, userID: String, createdAt: Int64, lastSeenAt: Int64, expiresAt: Int64) {
        self.hash = hash
        self.tenant = tenant
        self.sid = sid
        self.userID = userID
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.expiresAt = expiresAt
    }
}
