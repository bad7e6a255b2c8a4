import NIOCore

/// The deadlines of its ``DeadlineTimer``s behind one pending timer of the event loop's: a connection's own deadline,
/// or those of all the streams of an HTTP/2 connection.
///
/// Arming and disarming a deadline is a dictionary update; the one pending timer is set for the earliest deadline
/// and, when it fires, expires what is due and sets itself for the next. So moving a deadline later costs no
/// schedule, and a stream's request neither schedules nor cancels a task (a cancel searches the event loop's whole
/// queue of scheduled tasks). The owner closes the group when its connection goes, which cancels the pending timer
/// once. Loop-bound: use it only on its event loop.
final class DeadlineTimerGroup {
    private let eventLoop: EventLoop
    /// The armed timers, by identity; a timer leaves when it is disarmed, cancelled or expires.
    private var armed: [ObjectIdentifier: DeadlineTimer] = [:]
    /// The pending timer and when it fires; nil when none is pending. An earlier deadline schedules an earlier timer
    /// and leaves the later one to fire, see it is not the pending one, and do nothing.
    private var pending: (task: Scheduled<Void>, at: NIODeadline)?
    private var isClosed = false

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The loop's clock (virtual on an embedded loop).
    var now: NIODeadline { eventLoop.now }

    var armedCount: Int { armed.count }

    func arm(_ timer: DeadlineTimer, at deadline: NIODeadline) {
        guard !isClosed else { return }
        armed[ObjectIdentifier(timer)] = timer
        if let pending, pending.at <= deadline { return }
        schedule(at: deadline)
    }

    func disarm(_ timer: DeadlineTimer) {
        armed.removeValue(forKey: ObjectIdentifier(timer))
    }

    /// The connection is gone: nothing expires any more.
    func close() {
        isClosed = true
        armed.removeAll()
        pending?.task.cancel()
        pending = nil
    }

    private func schedule(at deadline: NIODeadline) {
        let task = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in fire(scheduledFor: deadline) }
        pending = (task, deadline)
    }

    private func fire(scheduledFor deadline: NIODeadline) {
        guard let pending, pending.at == deadline else { return }
        self.pending = nil
        let now = eventLoop.now
        var due: [DeadlineTimer] = []
        var next: NIODeadline?
        for (id, timer) in armed {
            // An armed timer has a deadline: disarming one takes it out of `armed`.
            guard let deadline = timer.deadline else { continue }
            if deadline <= now {
                due.append(timer)
                armed.removeValue(forKey: id)
            } else {
                next = min(next ?? deadline, deadline)
            }
        }
        if let next { schedule(at: next) }
        for timer in due { timer.expire() }
    }
}
