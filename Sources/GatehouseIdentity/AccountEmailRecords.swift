import Crypto
import Foundation

/// What a code and its link are for (§11). A reset code never verifies an address, nor the other way round: the
/// purpose is part of the row's key and of both hashes.
public enum AccountCodePurpose: String, Sendable, Hashable, CaseIterable {
    case reset
    case verify
}

/// A reset or verification request as stored (§11): one 8-digit code and one link token, known only by keyed
/// hashes (``AccountSecrets``). One row per (tenant, address, purpose), so a newer request replaces the older one;
/// using either secret deletes the row, which spends both.
public struct AccountCodeRecord: Sendable, Hashable {
    public var tenant: String
    public var emailKey: String
    public var purpose: AccountCodePurpose
    public var userID: String
    public var codeHash: String
    public var tokenHash: String
    /// Seconds since 1970; also when its message was queued (the per-address rate limit counts from here).
    public var createdAt: Int64
    public var expiresAt: Int64
    /// Wrong codes entered so far; the fifth spends it.
    public var failures: Int

    public init(
        tenant: String, emailKey: String, purpose: AccountCodePurpose, userID: String, codeHash: String, tokenHash: String, createdAt: Int64,
        expiresAt: Int64, failures: Int = 0
    ) {
        self.tenant = tenant
        self.emailKey = emailKey
        self.purpose = purpose
        self.userID = userID
        self.codeHash = codeHash
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.failures = failures
    }

    /// Whether `candidate` is this request's code hash, compared in constant time.
    public func matchesCode(_ candidate: String) -> Bool { constantTimeEquals(Array(codeHash.utf8), Array(candidate.utf8)) }
}

/// How a code entered by hand was received.
public enum AccountCodeCheck: Sendable, Equatable {
    /// Right, and still live: ``IdentityStore/completeAccountCode(_:now:completion:)`` spends it.
    case valid(AccountCodeRecord)
    /// Wrong, expired, or no request: nothing to use. A wrong code counted as one of the five.
    case invalid
}

/// What using a live code changes, in the transaction that spends it. Using one always proves the address: the
/// user becomes verified.
public struct AccountCodeCompletion: Sendable {
    /// A reset's new password hash.
    public var passwordHash: String?
    /// A reset clears the lockout (§11).
    public var clearsLoginFailures = false
    /// A reset revokes every login (and so every session) of the user, recorded until then.
    public var revokeLoginsUntil: Int64?
    /// The "password changed" notice.
    public var mail: [OutboxMessage] = []
    public var audit: [AuditEvent] = []

    public init(
        passwordHash: String? = nil, clearsLoginFailures: Bool = false, revokeLoginsUntil: Int64? = nil,
        mail: [OutboxMessage] = [], audit: [AuditEvent] = []
    ) {
        self.passwordHash = passwordHash
        self.clearsLoginFailures = clearsLoginFailures
        self.revokeLoginsUntil = revokeLoginsUntil
        self.mail = mail
        self.audit = audit
    }
}

/// A message waiting in the store's outbox: queued in the transaction that made it, sent by whichever replica's
/// ``MailOutbox`` claims it first, deleted once sent or given up. The message itself (which holds a code and a
/// link) is sealed with the master key, so the store never holds a usable secret in the clear.
public struct OutboxMessage: Sendable, Hashable {
    public var id: String
    public var tenant: String
    /// `reset`, `verify` or `changed`.
    public var kind: String
    public var userID: String?
    /// The recipient's canonical address, for the audit trail when delivery fails.
    public var email: String
    public var sealedMessage: Data
    public var createdAt: Int64
    /// After this, a message that still fails is given up (at least 10 minutes after it was queued).
    public var giveUpAt: Int64
    public var attempts: Int
    public var nextAttemptAt: Int64
    public var lastError: String?

    public init(
        id: String = UUID().uuidString.lowercased(), tenant: String, kind: String, userID: String?, email: String, sealedMessage: Data, createdAt: Int64,
        giveUpAt: Int64, attempts: Int = 0, nextAttemptAt: Int64? = nil, lastError: String? = nil
    ) {
        self.id = id
        self.tenant = tenant
        self.kind = kind
        self.userID = userID
        self.email = email
        self.sealedMessage = sealedMessage
        self.createdAt = createdAt
        self.giveUpAt = giveUpAt
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt ?? createdAt
        self.lastError = lastError
    }
}

/// The secrets of §11 and their hashes: an 8-digit code and a 256-bit link token per request, hashed with HMAC-SHA256
/// under a key derived from the master key, bound to the tenant, purpose and address. A copy of the database
/// alone cannot be searched for the 10^8 possible codes, and a hash of one purpose or tenant never matches another.
public struct AccountSecrets: Sendable {
    private let key: SymmetricKey

    public init(key: SymmetricKey) {
        self.key = key
    }

    /// A fresh code: 8 decimal digits, uniformly drawn (rejection sampling, no modulo bias).
    public static func newCode() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = UInt32.random(in: 0..<100_000_000, using: &generator)
        let digits = String(value)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// A fresh link token: 256 random bits, base64url.
    public static func newToken() -> String { IdentityService.randomToken() }

    /// Whether a code as entered has the shape of one (exactly 8 ASCII digits).
    public static func isWellFormedCode(_ code: String) -> Bool {
        code.utf8.count == 8 && code.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// Whether a link token has the shape of one (43 base64url characters): a truncated or padded one is refused
    /// before any lookup.
    public static func isWellFormedToken(_ token: String) -> Bool {
        IdentityService.isWellFormedToken(token)
    }

    public func codeHash(_ code: String, tenant: String, purpose: AccountCodePurpose, emailKey: String) -> String {
        hash(["code", tenant, purpose.rawValue, emailKey, code])
    }

    public func tokenHash(_ token: String, tenant: String, purpose: AccountCodePurpose) -> String {
        hash(["token", tenant, purpose.rawValue, token])
    }

    private func hash(_ parts: [String]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(parts.joined(separator: "\u{1F}").utf8), using: key)
        return IdentityService.hex(mac)
    }
}
