import Synchronization

/// Whether this replica's view of the store is current. The proxy path goes on from memory either way (§9); this is
/// what `/readyz` and `gatehouse_store_up` report.
public final class StoreHealth: Sendable {
    private struct State {
        var up = true
        var reason = ""
    }

    private let state = Mutex(State())

    public init() {}

    public var isUp: Bool { state.withLock { $0.up } }

    /// `up`, or `down: <why>` (the reason never holds a password).
    public var detail: String {
        state.withLock { $0.up ? "up" : "down: \($0.reason)" }
    }

    /// Records a change; returns whether it was one (so the caller logs transitions only).
    @discardableResult
    func mark(up: Bool, reason: String = "") -> Bool {
        state.withLock { state in
            let changed = state.up != up
            state.up = up
            state.reason = up ? "" : reason
            return changed
        }
    }
}
