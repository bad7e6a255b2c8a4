import NIOCore
import NIOHTTP1
import Testing
@testable import GatehouseServer

/// Every transition of the client connection's machine, without a channel: pipelining, read gating, keep-alive,
/// the early answer, quiesce, parse errors and the session-lookup hold.
@Suite struct ClientConnectionStateMachineTests {
    typealias Machine = ClientConnectionStateMachine

    static let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/a")
    static let body = ByteBuffer(string: "xyz")

    /// A request delivered in full: head, body, end.
    func machineAwaitingResponse() -> Machine {
        var machine = Machine()
        #expect(machine.received(.head(Self.head)) == .startRequest(Self.head))
        #expect(machine.received(.body(Self.body)) == .requestBody(Self.body))
        #expect(machine.received(.end(nil)) == .requestEnd)
        #expect(machine.state == .awaitingResponse)
        return machine
    }

    @Test func oneRequestThenKeepAlive() {
        var machine = machineAwaitingResponse()
        #expect(machine.keepsAlive(requested: true))
        #expect(machine.responseEnded(keepAlive: true) == .keepAlive(partsAreQueued: false))
        #expect(machine.state == .idle)
        #expect(machine.read(upstreamCanTakeMore: true) == true)
    }

    @Test func responseWithoutKeepAliveCloses() {
        var machine = machineAwaitingResponse()
        #expect(machine.responseEnded(keepAlive: false) == .closeAfterWrite)
        #expect(machine.state == .closed)
        #expect(machine.received(.head(Self.head)) == .drop)
        #expect(machine.nextQueuedPart() == nil)
    }

    @Test func pipelinedRequestWaitsAndHoldsReads() {
        var machine = machineAwaitingResponse()
        let second = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/b")
        #expect(machine.received(.head(second)) == .wait)
        #expect(machine.received(.end(nil)) == .wait)
        // Nothing more is read while a request waits.
        #expect(machine.read(upstreamCanTakeMore: true) == false)
        #expect(machine.isHoldingClientBack)
        #expect(machine.nextQueuedPart() == nil, "the first request is still being answered")
        #expect(machine.resumeReading() == false)
        #expect(machine.responseEnded(keepAlive: true) == .keepAlive(partsAreQueued: true))
        #expect(machine.nextQueuedPart() == .startRequest(second))
        #expect(machine.nextQueuedPart() == .requestEnd)
        #expect(machine.nextQueuedPart() == nil)
        // The held read goes out once the queue is empty.
        #expect(machine.resumeReading() == true)
        #expect(machine.resumeReading() == false, "a held read is resumed once")
    }

    @Test func partsArrivingBehindQueuedOnesKeepTheirOrder() {
        var machine = Machine()
        #expect(machine.received(.head(Self.head)) == .startRequest(Self.head))
        machine.holdRequestParts()
        #expect(machine.received(.body(Self.body)) == .wait)
        #expect(machine.resumeRequestParts() == .resume)
        // A part read now queues behind the body that waited, rather than overtaking it.
        #expect(machine.received(.end(nil)) == .wait)
        #expect(machine.nextQueuedPart() == .requestBody(Self.body))
        #expect(machine.nextQueuedPart() == .requestEnd)
        #expect(machine.nextQueuedPart() == nil)
    }

    @Test func readsWaitForTheUpstream() {
        var machine = Machine()
        #expect(machine.read(upstreamCanTakeMore: false) == false)
        #expect(machine.resumeReading() == true)
        #expect(machine.read(upstreamCanTakeMore: true) == true)
        #expect(machine.resumeReading() == false, "no read was held")
    }

    @Test func earlyAnswerReadsTheRestThenContinues() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        #expect(machine.responseEnded(keepAlive: true) == .discardRestOfRequest)
        #expect(machine.state == .discarding(closeAfter: false))
        #expect(machine.received(.body(Self.body)) == .drop)
        #expect(machine.received(.end(nil)) == .discardedRest)
        #expect(machine.state == .idle)
    }

    @Test func earlyAnswerThatClosesReadsTheRestFirst() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        #expect(machine.responseEnded(keepAlive: false) == .discardRestOfRequest)
        #expect(machine.received(.body(Self.body)) == .drop)
        #expect(machine.received(.end(nil)) == .close)
        #expect(machine.state == .closed)
    }

    @Test func earlyAnswerClosingNowDropsTheQueue() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        #expect(machine.responseEnded(keepAlive: true, closeNow: true) == .closeAfterWrite)
        #expect(machine.received(.body(Self.body)) == .drop)
    }

    @Test func quiesceWhenIdleClosesAtOnce() {
        var machine = Machine()
        #expect(machine.quiesce() == .close)
        #expect(machine.state == .closed)
    }

    @Test func quiesceFinishesTheRequestInHand() {
        var machine = machineAwaitingResponse()
        #expect(machine.quiesce() == .finishInFlight)
        #expect(!machine.keepsAlive(requested: true), "the response says Connection: close")
        #expect(machine.responseEnded(keepAlive: machine.keepsAlive(requested: true)) == .closeAfterWrite)
    }

    @Test func quiesceFinishesPipelinedRequestsToo() {
        var machine = machineAwaitingResponse()
        _ = machine.received(.head(Self.head))
        _ = machine.received(.end(nil))
        #expect(machine.quiesce() == .finishInFlight)
        #expect(machine.keepsAlive(requested: true), "a pipelined request still waits")
        #expect(machine.responseEnded(keepAlive: true) == .keepAlive(partsAreQueued: true))
        #expect(machine.nextQueuedPart() == .startRequest(Self.head))
        #expect(machine.nextQueuedPart() == .requestEnd)
        #expect(!machine.keepsAlive(requested: true))
        #expect(machine.responseEnded(keepAlive: false) == .closeAfterWrite)
    }

    @Test func quiesceDuringSessionLookupFinishesTheRequest() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        machine.holdRequestParts()
        _ = machine.received(.end(nil))
        #expect(machine.quiesce() == .finishInFlight)
        #expect(machine.resumeRequestParts() == .resume)
        #expect(machine.nextQueuedPart() == .requestEnd)
        #expect(machine.responseEnded(keepAlive: machine.keepsAlive(requested: true)) == .closeAfterWrite)
    }

    @Test func theRequestsOwnQueuedPartsDoNotKeepAQuiescingConnectionOpen() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        machine.holdRequestParts()
        _ = machine.received(.end(nil))
        #expect(machine.quiesce() == .finishInFlight)
        #expect(machine.resumeRequestParts() == .resume)
        // The answer is decided before the request's queued end is taken: it must say Connection: close.
        #expect(!machine.keepsAlive(requested: true))
        _ = machine.received(.head(Self.head))
        #expect(machine.keepsAlive(requested: true), "a later request waits")
    }

    @Test func closeDuringSessionLookupLeavesNothingToResume() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        machine.holdRequestParts()
        machine.close()
        #expect(machine.resumeRequestParts() == .closed)
    }

    @Test func parseErrorAtAHeadAnswersIt() {
        var machine = Machine()
        #expect(machine.parseError() == .answerAndClose(atRequestStart: true))
        #expect(machine.state == .closed)
    }

    @Test func parseErrorInABodyAnswersIt() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        #expect(machine.parseError() == .answerAndClose(atRequestStart: false))
    }

    @Test func parseErrorAfterAnAnsweredRequestCloses() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        _ = machine.responseEnded(keepAlive: true)
        #expect(machine.parseError() == .close)
    }

    @Test func parseErrorBehindPipelinedRequestsFinishesTheCompleteOnes() {
        var machine = machineAwaitingResponse()
        _ = machine.received(.head(Self.head))
        _ = machine.received(.end(nil))
        // A third request, cut short by the bad bytes.
        _ = machine.received(.head(Self.head))
        _ = machine.received(.body(Self.body))
        #expect(machine.parseError() == .finishThenClose)
        #expect(machine.responseEnded(keepAlive: machine.keepsAlive(requested: true)) == .keepAlive(partsAreQueued: true))
        #expect(machine.nextQueuedPart() == .startRequest(Self.head))
        #expect(machine.nextQueuedPart() == .requestEnd)
        #expect(machine.responseEnded(keepAlive: machine.keepsAlive(requested: true)) == .keepAlive(partsAreQueued: true))
        // The incomplete request never starts.
        #expect(machine.nextQueuedPart() == .refuseBrokenRequest)
        #expect(machine.state == .closed)
        #expect(machine.nextQueuedPart() == nil)
    }

    @Test func parseErrorDuringSessionLookupRefusesAnIncompleteRequest() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        machine.holdRequestParts()
        _ = machine.received(.body(Self.body))
        #expect(machine.parseError() == .finishThenClose)
        #expect(machine.resumeRequestParts() == .refuseBrokenRequest)
        #expect(machine.state == .closed)
    }

    @Test func parseErrorDuringSessionLookupKeepsACompleteRequest() {
        var machine = Machine()
        _ = machine.received(.head(Self.head))
        machine.holdRequestParts()
        _ = machine.received(.end(nil))
        #expect(machine.parseError() == .finishThenClose)
        #expect(machine.resumeRequestParts() == .resume)
        #expect(machine.nextQueuedPart() == .requestEnd)
        #expect(machine.responseEnded(keepAlive: machine.keepsAlive(requested: true)) == .closeAfterWrite)
    }

    @Test func tunnelDeliversNothingMore() {
        var machine = machineAwaitingResponse()
        machine.close()
        #expect(machine.received(.head(Self.head)) == .drop)
        #expect(machine.resumeReading() == false)
        #expect(!machine.keepsAlive(requested: true))
    }
}
