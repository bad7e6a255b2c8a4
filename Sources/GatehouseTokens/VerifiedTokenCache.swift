import CoreMetrics
import Foundation
import Synchronization

/// Tokens whose signature and claims were already checked, so a hot token costs a dictionary lookup instead of
/// a signature verification. Bounded; an entry never outlives its token's `exp`, and revocation is still
/// checked on every hit by the validator.
public final class VerifiedTokenCache: Sendable {
    struct Entry {
        var tenant: String
        var issuer: String
        var audience: String
        var claims: AccessTokenClaims
    }

    private let entries = Mutex<[String: Entry]>([:])
    public let capacity: Int
    private let hits: Counter?
    private let misses: Counter?

    /// - Parameters: hits, misses: `gatehouse_token_cache_lookups_total{result="hit"|"miss"}`.
    public init(capacity: Int = 10_000, hits: Counter? = nil, misses: Counter? = nil) {
        self.capacity = capacity
        self.hits = hits
        self.misses = misses
    }

    func lookup(_ token: String) -> Entry? {
        let entry = entries.withLock { $0[token] }
        if entry == nil { misses?.increment() } else { hits?.increment() }
        return entry
    }

    func insert(_ token: String, _ entry: Entry, now: Int64) {
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { $0.value.claims.exp > now }
                // Still full of live tokens: start over rather than track recency on the hot path.
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[token] = entry
        }
    }

    func remove(_ token: String) {
        _ = entries.withLock { $0.removeValue(forKey: token) }
    }

    public var count: Int { entries.withLock { $0.count } }
}
