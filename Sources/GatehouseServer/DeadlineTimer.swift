import NIOCore

/// One deadline of one owner (a connection's head or idle deadline, a request's response or body deadline). Moving
/// it later (every request on a keep-alive connection does) costs no schedule and no cancel: the timer's
/// ``DeadlineTimerGroup`` keeps one pending timer of the loop's, which re-arms itself for the current deadline when
/// it fires early. Loop-bound: use it only on its event loop.
///
/// A timer made with only an event loop has a group of its own, closed with the timer. The streams of an HTTP/2
/// connection share their connection's group.
///
/// The owner's callback is held strongly and let go by ``cancel()``, which the owner calls when its channel goes
/// away: a weak reference would give the owner a side table, and every retain and release of it (a channel
/// handler's, many per request) would take the runtime's slow path.
final class DeadlineTimer {
    private let group: DeadlineTimerGroup
    /// Whether the group is this timer's alone, to close with it.
    private let ownsGroup: Bool
    private(set) var deadline: NIODeadline?
    /// Called on the loop once the deadline has passed; the timer is then disarmed. Nil once cancelled.
    private var onExpiry: (() -> Void)?

    /// A timer in `group`, or, without one, in a group of its own on `eventLoop`.
    init(eventLoop: EventLoop, group: DeadlineTimerGroup? = nil, onExpiry: @escaping () -> Void) {
        self.group = group ?? DeadlineTimerGroup(eventLoop: eventLoop)
        self.ownsGroup = group == nil
        self.onExpiry = onExpiry
    }

    var isArmed: Bool { deadline != nil }

    func arm(in timeout: TimeAmount) {
        // A cancelled timer's owner is gone: it stays unarmed.
        guard onExpiry != nil else { return }
        let deadline = group.now + timeout
        self.deadline = deadline
        group.arm(self, at: deadline)
    }

    /// Forgets the deadline; a pending timer fires later and does nothing.
    func disarm() {
        deadline = nil
        group.disarm(self)
    }

    /// Forgets the deadline and lets the callback go (the owner is gone); the timer never fires again. A group of
    /// its own is closed, which cancels its pending timer.
    func cancel() {
        disarm()
        onExpiry = nil
        if ownsGroup { group.close() }
    }

    /// The group found the deadline passed.
    func expire() {
        deadline = nil
        onExpiry?()
    }
}
