import GatehouseTokens
import Synchronization

/// A browser session as the proxy path uses it: the stored record and the identity it stands for.
public struct ActiveSession: Sendable, Hashable {
    public var record: SessionRecord
    /// The identity headers of a session come from these, exactly as for an access token (§6.4). `iat` is when the
    /// session started and `exp` its absolute end; `jti` is empty.
    public var claims: AccessTokenClaims

    public init(record: SessionRecord, claims: AccessTokenClaims) {
        self.record = record
        self.claims = claims
    }
}

/// Recently used sessions, in memory, so a request with a session cookie costs a hash and a lookup rather than a
/// store round trip. An entry is trusted for ``freshness`` seconds; then the store is asked again, which picks up
/// role changes, disabled users and revocations whose in-memory record has already been purged.
public final class SessionCache: Sendable {
    /// What the cache knows about a session cookie.
    public enum Lookup: Sendable {
        case valid(ActiveSession)
        /// Expired, idle too long or revoked: no session.
        case invalid
        /// Not cached, or cached too long ago: ask the store.
        case unknown
    }

    private struct Entry {
        var session: ActiveSession
        /// When the entry was loaded from the store.
        var loadedAt: Int64
        /// The latest use seen by this process (the stored `lastSeenAt` may lag behind by up to a touch interval).
        var lastSeenAt: Int64
    }

    /// Seconds an entry is trusted before the store is asked again.
    public let freshness: Int64
    private let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    public init(freshness: Int64 = 30, capacity: Int = 50_000) {
        self.freshness = freshness
        self.capacity = capacity
    }

    /// Looks a session of `tenant` up by the hash of its cookie and, when it is valid, records this use.
    /// - Returns: the lookup, and whether the use should be written to the store (the idle timeout slides).
    func use(hash: String, tenant: String, idleTimeout: Int64, now: Int64, revocations: RevocationList) -> (Lookup, touch: Bool) {
        entries.withLock { entries in
            guard var entry = entries[hash] else { return (.unknown, false) }
            // A session is only ever valid at the tenant that started it.
            guard entry.session.record.tenant == tenant else { return (.invalid, false) }
            if revocations.isRevoked(login: entry.session.record.sid) || now >= entry.session.record.expiresAt
                || now - entry.lastSeenAt > idleTimeout
            {
                entries[hash] = nil
                return (.invalid, false)
            }
            guard now - entry.loadedAt < freshness else { return (.unknown, false) }
            entry.lastSeenAt = max(entry.lastSeenAt, now)
            let touch = now - entry.session.record.lastSeenAt >= Self.touchInterval(idleTimeout: idleTimeout)
            if touch { entry.session.record.lastSeenAt = now }
            entries[hash] = entry
            return (.valid(entry.session), touch)
        }
    }

    /// Stores a session just loaded from the store or just started.
    func insert(_ session: ActiveSession, now: Int64) {
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { now - $0.value.loadedAt < freshness }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            let lastSeen = max(session.record.lastSeenAt, entries[session.record.hash]?.lastSeenAt ?? 0)
            entries[session.record.hash] = Entry(session: session, loadedAt: now, lastSeenAt: lastSeen)
        }
    }

    func remove(hash: String) {
        _ = entries.withLock { $0.removeValue(forKey: hash) }
    }

    /// Forgets a user's sessions (their claims changed: a verified address), so the next use reads them again.
    func removeAll(userID: String) {
        entries.withLock { entries in entries = entries.filter { $0.value.session.record.userID != userID } }
    }

    /// How stale the stored last use may get: a tenth of the idle timeout, at most a minute, so a busy session costs
    /// at most one store write a minute and the idle timeout is still measured to within a tenth of itself.
    static func touchInterval(idleTimeout: Int64) -> Int64 {
        max(1, min(60, idleTimeout / 10))
    }
}
