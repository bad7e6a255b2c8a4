import GatehouseProxy
import NIOCore
import NIOHTTP1
import Testing
@testable import GatehouseServer

/// Every transition of one proxied request's machine, without a channel: buffering until connected, streaming,
/// HTTP/2's late framing, the response's head, body and end, the early answer, retry after a dead pooled
/// connection, timeouts, limits, and events in states that cannot take them.
@Suite struct ProxyExchangeStateMachineTests {
    typealias Machine = ProxyExchangeStateMachine

    static let upstreamHead = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/a", headers: ["Host": "acme.test"])
    static let body = ByteBuffer(string: "0123456789")

    func machine(
        method: HTTPMethod = .GET, framing: RequestFraming = .none, awaitsFraming: Bool = false, isUpgrade: Bool = false,
        maxBodyBytes: Int = 100
    ) -> Machine {
        var head = Self.upstreamHead
        head.method = method
        return Machine(
            upstreamHead: head, framing: framing, awaitsFraming: awaitsFraming, method: method, isUpgrade: isUpgrade,
            endsParsing: isUpgrade, maxBodyBytes: maxBodyBytes)
    }

    static func response(_ status: HTTPResponseStatus, _ headers: HTTPHeaders = [:]) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: headers)
    }

    /// A GET that completed before the connection was ready, attached on a reused connection, head awaited.
    func connectedGET(isReused: Bool = true) -> Machine {
        var machine = machine()
        #expect(machine.requestEnd() == .buffered)
        #expect(machine.connected(isReused: isReused) == .write([.head(Self.upstreamHead), .end(nil)], armResponseTimer: true))
        return machine
    }

    @Test func partsWaitForTheConnectionThenGoInOrder() {
        var machine = machine(method: .POST, framing: .contentLength(20))
        #expect(machine.requestBody(Self.body) == .buffered)
        var head = Self.upstreamHead
        head.method = .POST
        let action = machine.connected(isReused: false)
        #expect(action == .write([.head(head), .body(.byteBuffer(Self.body))], armResponseTimer: false))
        #expect(machine.sentBody)
        #expect(machine.requestBody(Self.body) == .write(.body(.byteBuffer(Self.body))))
        #expect(machine.requestEnd() == .write(.end(nil), armResponseTimer: true))
        #expect(machine.requestComplete)
    }

    @Test func moreThanContentLengthAborts() {
        var machine = machine(method: .POST, framing: .contentLength(5))
        _ = machine.connected(isReused: false)
        #expect(machine.requestBody(Self.body) == .abort)
    }

    @Test func aChunkedBodyPastTheLimitIsTooLarge() {
        var machine = machine(method: .POST, framing: .chunked, maxBodyBytes: 15)
        _ = machine.connected(isReused: false)
        #expect(machine.requestBody(Self.body) == .write(.body(.byteBuffer(Self.body))))
        #expect(machine.requestBody(Self.body) == .bodyTooLarge(limit: 15))
        #expect(machine.answerByGateway(status: 413) == .answer(status: 413, closeClient: true))
        #expect(machine.responseStatus == 413)
        #expect(machine.connection == .detached)
    }

    @Test func http2WithoutLengthFramesAtTheFirstPart() {
        var machine = machine(method: .POST, awaitsFraming: true)
        #expect(machine.connected(isReused: false) == .wait)
        #expect(machine.requestBody(Self.body) == .writeHeadAnd(.body(.byteBuffer(Self.body))))
        #expect(machine.framing == .chunked)
        #expect(machine.headToWrite.headers["transfer-encoding"] == ["chunked"])
        #expect(machine.requestEnd() == .write(.end(nil), armResponseTimer: true))
    }

    @Test func http2WithoutABodyIsFramedAsNone() {
        var machine = machine(awaitsFraming: true)
        #expect(machine.connected(isReused: false) == .wait)
        #expect(machine.requestEnd() == .writeHeadAnd(.end(nil), armResponseTimer: true))
        #expect(machine.framing == .none)
        #expect(machine.headToWrite.headers["transfer-encoding"].isEmpty)
    }

    @Test func http2FirstPartBufferedBeforeTheConnectionDecidesTheFraming() {
        var machine = machine(awaitsFraming: true)
        #expect(machine.requestEnd() == .buffered)
        #expect(machine.connected(isReused: false) == .write([.head(Self.upstreamHead), .end(nil)], armResponseTimer: true))
        #expect(machine.framing == .none)
    }

    @Test func aCompleteExchangeReleasesTheConnection() {
        var machine = connectedGET()
        #expect(machine.responseHead(Self.response(.ok)) == .forward(Self.response(.ok)))
        #expect(machine.responseStatus == 200)
        #expect(machine.responseBody() == .forward)
        #expect(machine.responseEnd() == .complete(releaseUpstream: true))
        #expect(machine.connection == .detached)
        #expect(machine.responseEnded)
    }

    @Test func anUpstreamThatClosesIsNotReused() {
        var machine = connectedGET()
        _ = machine.responseHead(Self.response(.ok, ["Connection": "close"]))
        #expect(machine.responseEnd() == .complete(releaseUpstream: false))
    }

    @Test func interimResponsesAreNotPassedOn() {
        var machine = connectedGET()
        #expect(machine.responseHead(Self.response(.continue)) == .ignore)
        #expect(machine.responseHead(Self.response(.ok)) == .forward(Self.response(.ok)))
    }

    @Test func anAnswerBeforeTheBodyEndsClosesBothSides() {
        var machine = machine(method: .POST, framing: .chunked)
        _ = machine.connected(isReused: false)
        _ = machine.requestBody(Self.body)
        _ = machine.responseHead(Self.response(.forbidden))
        #expect(machine.responseEnd() == .completeEarly)
        // The rest of the body has nowhere to go.
        #expect(machine.requestBody(Self.body) == .drop)
        #expect(machine.requestEnd() == .drop)
    }

    @Test func aDeadPooledConnectionIsRetriedOnceForAnIdempotentRequest() {
        var machine = connectedGET(isReused: true)
        #expect(machine.connectionLost() == .retryOnFreshConnection)
        #expect(machine.connection == .connecting)
        #expect(machine.connected(isReused: true) == .write([.head(Self.upstreamHead), .end(nil)], armResponseTimer: true))
        #expect(machine.connectionLost() == .badGateway(closeClient: false), "only one retry")
    }

    @Test func aFreshConnectionThatDiesIsNotRetried() {
        var machine = connectedGET(isReused: false)
        #expect(machine.connectionLost() == .badGateway(closeClient: false))
        #expect(machine.responseStatus == 502)
    }

    @Test func aPostIsNeverRetried() {
        var machine = machine(method: .POST, framing: .none)
        _ = machine.requestEnd()
        _ = machine.connected(isReused: true)
        #expect(machine.connectionLost() == .badGateway(closeClient: false))
    }

    @Test func aRequestWhoseBodyLeftIsNeverRetried() {
        var machine = machine(method: .PUT, framing: .contentLength(20))
        _ = machine.connected(isReused: true)
        _ = machine.requestBody(Self.body)
        #expect(machine.connectionLost() == .badGateway(closeClient: true), "the request is not read to its end")
    }

    @Test func aRetriedIncompleteRequestBuffersAgain() {
        var machine = machine(method: .PUT, framing: .contentLength(10))
        _ = machine.connected(isReused: true)
        #expect(machine.connectionLost() == .retryOnFreshConnection)
        #expect(machine.requestBody(Self.body) == .buffered)
        var head = Self.upstreamHead
        head.method = .PUT
        #expect(machine.connected(isReused: false) == .write([.head(head), .body(.byteBuffer(Self.body))], armResponseTimer: false))
    }

    @Test func theUpstreamClosingMidBodyClosesTheClient() {
        var machine = connectedGET()
        _ = machine.responseHead(Self.response(.ok))
        #expect(machine.responseBody() == .forward)
        #expect(machine.connectionLost() == .closeClient)
        #expect(machine.connectionLost() == .none, "the exchange no longer has the connection")
        #expect(machine.responseBody() == .abort)
    }

    @Test func aFailedConnectIsABadGateway() {
        var machine = machine()
        #expect(machine.connectFailed() == .badGateway(closeClient: true))
        #expect(machine.connected(isReused: false) == .release, "a connection that arrives late goes back to the pool")
    }

    @Test func responseTimeoutAnswers504OnlyBeforeTheHead() {
        var machine = connectedGET()
        #expect(machine.responseTimedOut() == .answer(status: 504, closeClient: false))
        #expect(machine.responseHead(Self.response(.ok)) == .abort, "the connection is detached")
        var streaming = connectedGET()
        _ = streaming.responseHead(Self.response(.ok))
        #expect(streaming.responseTimedOut() == .none)
    }

    @Test func bodyTimeoutAnswers408OrCloses() {
        var waiting = machine(method: .POST, framing: .chunked)
        _ = waiting.connected(isReused: false)
        #expect(waiting.bodyTimedOut() == .answer(status: 408, closeClient: true))
        var answered = machine(method: .POST, framing: .chunked)
        _ = answered.connected(isReused: false)
        _ = answered.responseHead(Self.response(.ok))
        #expect(answered.bodyTimedOut() == .closeClient)
        var complete = connectedGET()
        #expect(complete.bodyTimedOut() == .none)
    }

    @Test func aWebSocket101StartsATunnel() {
        var machine = machine(isUpgrade: true)
        _ = machine.requestEnd()
        _ = machine.connected(isReused: false)
        let switching = Self.response(.switchingProtocols, ["Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Accept": "x"])
        #expect(machine.responseHead(switching) == .startTunnel(switching))
        #expect(machine.responseStatus == 101)
        // The decoder ends the 101 message before it stops; that end is the tunnel's, once.
        #expect(machine.responseEnd() == .switchedProtocols)
        #expect(machine.responseEnd() == .abort)
        #expect(machine.responseBody() == .abort)
    }

    @Test func an101NobodyAskedForIsABadGateway() {
        var machine = connectedGET()
        let switching = Self.response(.switchingProtocols, ["Connection": "Upgrade", "Upgrade": "websocket"])
        #expect(machine.responseHead(switching) == .badGateway(detail: "The upstream switched protocols without being asked to."))
        #expect(machine.responseStatus == 502)
    }

    @Test func responseEventsOutOfOrderAbort() {
        var machine = connectedGET()
        #expect(machine.responseBody() == .abort, "a body before the head")
        #expect(machine.responseEnd() == .abort, "an end before the head")
        _ = machine.responseHead(Self.response(.ok))
        #expect(machine.responseHead(Self.response(.ok)) == .abort, "a second head")
        _ = machine.responseEnd()
        #expect(machine.responseEnd() == .abort, "a second end")
    }

    @Test func requestEventsAfterTheEndAbort() {
        var machine = connectedGET()
        #expect(machine.requestEnd() == .abort)
        #expect(machine.requestBody(Self.body) == .abort)
    }

    @Test func theClientGoingAwayDetachesTheConnection() {
        var machine = connectedGET()
        #expect(machine.clientClosed() == true)
        #expect(machine.connection == .detached)
        #expect(machine.responseStatus == 499)
        #expect(machine.clientClosed() == false)
        #expect(machine.connectionLost() == .none)
    }
}
