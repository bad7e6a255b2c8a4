import Foundation
import Synchronization

/// Revoked token ids (`jti`) and logins (`sid`), held in memory so the proxy path checks them without a database
/// round trip. An entry is kept only until the last access token it could concern has expired.
public final class RevocationList: Sendable {
    public enum Kind: String, Sendable, Codable {
        case tokenID = "jti"
        case login = "sid"
    }

    private struct State {
        var tokenIDs: [String: Int64] = [:]
        var logins: [String: Int64] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Records a revocation that matters until `until` (seconds since 1970). Returns whether it was new here.
    @discardableResult
    public func revoke(_ kind: Kind, _ value: String, until: Int64) -> Bool {
        state.withLock { state in
            switch kind {
            case .tokenID:
                let previous = state.tokenIDs[value]
                state.tokenIDs[value] = max(until, previous ?? 0)
                return previous == nil
            case .login:
                let previous = state.logins[value]
                state.logins[value] = max(until, previous ?? 0)
                return previous == nil
            }
        }
    }

    public func isRevoked(tokenID: String, login: String) -> Bool {
        state.withLock { $0.tokenIDs[tokenID] != nil || $0.logins[login] != nil }
    }

    /// Whether a login (a token family or a browser session) was revoked.
    public func isRevoked(login: String) -> Bool {
        state.withLock { $0.logins[login] != nil }
    }

    /// Forgets revocations whose tokens have all expired.
    public func purge(now: Int64) {
        state.withLock { state in
            state.tokenIDs = state.tokenIDs.filter { $0.value >= now }
            state.logins = state.logins.filter { $0.value >= now }
        }
    }

    public var count: Int { state.withLock { $0.tokenIDs.count + $0.logins.count } }
}
