import NIOCore
import NIOEmbedded
import Testing
@testable import GatehouseServer
import GatehouseTestSupport

/// The timers of one HTTP/2 connection's streams share one pending timer of the event loop's; each must still expire
/// at its own deadline, once, and never after it was disarmed or cancelled.
@Suite struct DeadlineTimerGroupTests {
    /// Timers of a group and of nobody, with the order they expired in.
    final class Fixture {
        let loop = EmbeddedEventLoop()
        lazy var group = DeadlineTimerGroup(eventLoop: loop)
        var expired: [String] = []

        func timer(_ name: String, grouped: Bool = true) -> DeadlineTimer {
            DeadlineTimer(eventLoop: loop, group: grouped ? group : nil) { [unowned self] in expired.append(name) }
        }
    }

    @Test func eachTimerExpiresAtItsOwnDeadline() {
        let fixture = Fixture()
        let long = fixture.timer("long"), short = fixture.timer("short"), middle = fixture.timer("middle")
        long.arm(in: .seconds(30))
        short.arm(in: .seconds(5))  // earlier than what is pending: the group sets an earlier timer
        middle.arm(in: .seconds(10))
        fixture.loop.advanceTime(by: .seconds(4))
        #expect(fixture.expired.isEmpty)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(fixture.expired == ["short"])
        fixture.loop.advanceTime(by: .seconds(5))
        #expect(fixture.expired == ["short", "middle"])
        fixture.loop.advanceTime(by: .seconds(19))
        #expect(fixture.expired == ["short", "middle"])
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(fixture.expired == ["short", "middle", "long"])
        #expect(fixture.group.armedCount == 0)
        // Expired means disarmed: nothing fires again.
        fixture.loop.advanceTime(by: .seconds(60))
        #expect(fixture.expired == ["short", "middle", "long"])
    }

    @Test func aDisarmedOrCancelledTimerNeverExpiresAndARearmedOneMovesOn() {
        let fixture = Fixture()
        let disarmed = fixture.timer("disarmed"), cancelled = fixture.timer("cancelled"), moved = fixture.timer("moved")
        disarmed.arm(in: .seconds(5))
        cancelled.arm(in: .seconds(5))
        moved.arm(in: .seconds(5))
        fixture.loop.advanceTime(by: .seconds(3))
        disarmed.disarm()
        cancelled.cancel()
        moved.arm(in: .seconds(5))  // now due at 8 s
        #expect(fixture.group.armedCount == 1)
        fixture.loop.advanceTime(by: .seconds(4))
        #expect(fixture.expired.isEmpty)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(fixture.expired == ["moved"])
        // A cancelled timer stays cancelled even when armed again (its owner is gone).
        cancelled.arm(in: .seconds(1))
        fixture.loop.advanceTime(by: .seconds(2))
        #expect(fixture.expired == ["moved"])
        #expect(fixture.group.armedCount == 0)
    }

    @Test func manyStreamsArmingAndDisarmingLeaveOnlyTheirOwnExpiries() {
        let fixture = Fixture()
        var generator = SeededGenerator(seed: 0xdead11e)
        var expected: [String] = []
        var timers: [DeadlineTimer] = []
        for index in 0..<500 {
            let timer = fixture.timer("t\(index)")
            timers.append(timer)
            timer.arm(in: .milliseconds(Int64(1 + generator.next() % 5000)))
            switch generator.next() % 3 {
            case 0: timer.disarm()
            case 1: timer.cancel()
            default: expected.append("t\(index)")
            }
            fixture.loop.advanceTime(by: .milliseconds(Int64(generator.next() % 20)))
        }
        fixture.loop.advanceTime(by: .seconds(6))
        #expect(Set(fixture.expired) == Set(expected))
        #expect(fixture.expired.count == expected.count)
        #expect(fixture.group.armedCount == 0)
    }

    @Test func aLoneTimerMovedLaterExpiresOnlyAtItsLatestDeadline() {
        let fixture = Fixture()
        let own = fixture.timer("own", grouped: false)
        own.arm(in: .seconds(5))
        fixture.loop.advanceTime(by: .seconds(3))
        own.arm(in: .seconds(5))  // now due at 8 s: the pending timer at 5 s finds it not due and re-arms
        fixture.loop.advanceTime(by: .seconds(4))
        #expect(fixture.expired.isEmpty)
        fixture.loop.advanceTime(by: .seconds(1))
        #expect(fixture.expired == ["own"])
    }

    @Test func aClosedGroupExpiresNothingAndTakesNoDeadline() {
        let fixture = Fixture()
        let first = fixture.timer("first"), second = fixture.timer("second")
        first.arm(in: .seconds(1))
        fixture.group.close()
        second.arm(in: .seconds(1))
        #expect(fixture.group.armedCount == 0)
        fixture.loop.advanceTime(by: .seconds(5))
        #expect(fixture.expired.isEmpty)
    }

    @Test func anUngroupedTimerStillSchedulesItself() {
        let fixture = Fixture()
        let own = fixture.timer("own", grouped: false)
        own.arm(in: .seconds(2))
        fixture.loop.advanceTime(by: .seconds(2))
        #expect(fixture.expired == ["own"])
    }
}
