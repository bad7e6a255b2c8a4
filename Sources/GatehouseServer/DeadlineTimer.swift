import NIOCore

/// One deadline per connection, checked by at most one pending timer. Moving the deadline later (every request
/// on a keep-alive connection does) costs no schedule and no cancel: when the pending timer fires early it
/// re-arms itself for the current deadline. Loop-bound: use it only on its event loop.
final class DeadlineTimer {
    private let eventLoop: EventLoop
    private var deadline: NIODeadline?
    private var pending: Scheduled<Void>?
    /// Called on the loop once the deadline has passed; the timer is then disarmed.
    private let onExpiry: () -> Void

    init(eventLoop: EventLoop, onExpiry: @escaping () -> Void) {
        self.eventLoop = eventLoop
        self.onExpiry = onExpiry
    }

    var isArmed: Bool { deadline != nil }

    func arm(in timeout: TimeAmount) {
        let deadline = NIODeadline.now() + timeout
        self.deadline = deadline
        if pending == nil { schedule(at: deadline) }
    }

    /// Forgets the deadline; a pending timer fires later and does nothing.
    func disarm() {
        deadline = nil
    }

    /// Forgets the deadline and cancels the pending timer (the connection is gone).
    func cancel() {
        deadline = nil
        pending?.cancel()
        pending = nil
    }

    private func schedule(at when: NIODeadline) {
        pending = eventLoop.assumeIsolated().scheduleTask(deadline: when) { [weak self] in
            guard let self else { return }
            self.pending = nil
            guard let deadline = self.deadline else { return }
            guard NIODeadline.now() >= deadline else {
                self.schedule(at: deadline)
                return
            }
            self.deadline = nil
            self.onExpiry()
        }
    }
}
