import NIOCore

/// One deadline per connection, checked by at most one pending timer. Moving the deadline later (every request
/// on a keep-alive connection does) costs no schedule and no cancel: when the pending timer fires early it
/// re-arms itself for the current deadline. Loop-bound: use it only on its event loop.
///
/// The owner's callback is held strongly and let go by ``cancel()``, which the owner calls when its channel goes
/// away: a weak reference would give the owner a side table, and every retain and release of it (a channel
/// handler's, many per request) would take the runtime's slow path.
///
/// A timer of a ``DeadlineTimerGroup`` (an HTTP/2 stream's) leaves the scheduling to the group.
final class DeadlineTimer {
    private let eventLoop: EventLoop
    private let group: DeadlineTimerGroup?
    private(set) var deadline: NIODeadline?
    private var pending: Scheduled<Void>?
    /// Called on the loop once the deadline has passed; the timer is then disarmed. Nil once cancelled.
    private var onExpiry: (() -> Void)?

    init(eventLoop: EventLoop, group: DeadlineTimerGroup? = nil, onExpiry: @escaping () -> Void) {
        self.eventLoop = eventLoop
        self.group = group
        self.onExpiry = onExpiry
    }

    var isArmed: Bool { deadline != nil }

    func arm(in timeout: TimeAmount) {
        let deadline = eventLoop.now + timeout
        self.deadline = deadline
        if let group {
            if onExpiry != nil { group.arm(self, at: deadline) }
        } else if pending == nil {
            schedule(at: deadline)
        }
    }

    /// Forgets the deadline; a pending timer fires later and does nothing.
    func disarm() {
        deadline = nil
        group?.disarm(self)
    }

    /// Forgets the deadline, cancels the pending timer and lets the callback go (the connection is gone); the timer
    /// never fires again.
    func cancel() {
        deadline = nil
        group?.disarm(self)
        pending?.cancel()
        pending = nil
        onExpiry = nil
    }

    /// The group found the deadline passed.
    func expire() {
        deadline = nil
        onExpiry?()
    }

    private func schedule(at when: NIODeadline) {
        guard onExpiry != nil else { return }
        pending = eventLoop.assumeIsolated().scheduleTask(deadline: when) { [self] in
            self.pending = nil
            guard let deadline = self.deadline else { return }
            guard eventLoop.now >= deadline else {
                self.schedule(at: deadline)
                return
            }
            self.deadline = nil
            self.onExpiry?()
        }
    }
}
