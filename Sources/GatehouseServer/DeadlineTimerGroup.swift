import NIOCore

/// The deadlines of many short-lived owners on one event loop (the streams of one HTTP/2 connection) behind one
/// pending timer of the loop's.
///
/// Each stream is a handler of its own: with a timer each, every request would schedule a task and cancel it, and a
/// cancel searches the event loop's whole queue of scheduled tasks (all the connection's streams are in it). Here a
/// stream's request arms and disarms its deadline in a dictionary; the one pending timer is set for the earliest
/// deadline and, when it fires, expires what is due and sets itself for the next. Loop-bound: use it only on its
/// event loop.
final class DeadlineTimerGroup {
    private let eventLoop: EventLoop
    /// The armed timers, by identity; a timer leaves when it is disarmed, cancelled or expires.
    private var armed: [ObjectIdentifier: DeadlineTimer] = [:]
    /// When the pending timer fires; nil when none is pending.
    private var pendingAt: NIODeadline?

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    var armedCount: Int { armed.count }

    func arm(_ timer: DeadlineTimer, at deadline: NIODeadline) {
        armed[ObjectIdentifier(timer)] = timer
        guard let pendingAt, pendingAt <= deadline else {
            // Nothing pending, or it fires too late for this deadline: one more, earlier timer (the later one finds
            // nothing due, or something, and sets itself again as every firing does).
            schedule(at: deadline)
            return
        }
    }

    func disarm(_ timer: DeadlineTimer) {
        armed.removeValue(forKey: ObjectIdentifier(timer))
    }

    private func schedule(at deadline: NIODeadline) {
        pendingAt = deadline
        // The task holds the group until it fires: a connection that closes leaves it to fire once, find nothing
        // and go (cancelling it would search the loop's queue again).
        eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in fire(scheduledFor: deadline) }
    }

    private func fire(scheduledFor deadline: NIODeadline) {
        // A later timer of an earlier schedule: the earlier one took over.
        guard pendingAt == deadline else { return }
        pendingAt = nil
        let now = eventLoop.now
        var due: [DeadlineTimer] = []
        var next: NIODeadline?
        for (id, timer) in armed {
            guard let deadline = timer.deadline else {
                armed.removeValue(forKey: id)
                continue
            }
            if deadline <= now {
                due.append(timer)
                armed.removeValue(forKey: id)
            } else if next.map({ deadline < $0 }) ?? true {
                next = deadline
            }
        }
        if let next { schedule(at: next) }
        for timer in due { timer.expire() }
    }
}
