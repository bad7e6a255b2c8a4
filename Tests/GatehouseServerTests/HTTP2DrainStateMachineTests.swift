import NIOHTTP2
import Testing
@testable import GatehouseServer

@Suite struct HTTP2DrainStateMachineTests {
    @Test func anIdleConnectionSaysGoAwayAndClosesAtOnce() {
        var machine = HTTP2DrainStateMachine()
        #expect(machine.quiesce() == .sendGoAway(lastStreamID: .rootStream, thenClose: true))
        #expect(machine.quiesce() == .none, "one GOAWAY")
    }

    @Test func streamsInFlightFinishThenTheConnectionCloses() {
        var machine = HTTP2DrainStateMachine()
        #expect(machine.streamOpened(1) == .none)
        #expect(machine.streamOpened(5) == .none)
        #expect(machine.streamOpened(3) == .none)
        #expect(machine.streamClosed() == .none, "not draining: a closed stream is just closed")
        #expect(machine.quiesce() == .sendGoAway(lastStreamID: 5, thenClose: false), "the highest stream opened, not the latest")
        #expect(machine.streamClosed() == .none)
        #expect(machine.streamClosed() == .close)
        // A stream the connection refused after the GOAWAY closes too; nothing goes below zero or closes twice over.
        #expect(machine.streamClosed() == .close)
        #expect(machine.openStreams == 0)
    }
}
