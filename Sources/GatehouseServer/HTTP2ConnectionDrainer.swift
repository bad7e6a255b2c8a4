import Logging
import NIOCore
import NIOHTTP2

/// When an HTTP/2 connection tells its client to go away and when it closes, on the server's drain (RFC 9113 §6.8).
///
/// A value type: it takes the connection's events and returns what to do. ``HTTP2ConnectionDrainer`` runs it.
struct HTTP2DrainStateMachine {
    enum Action: Equatable {
        case none
        /// Send `GOAWAY` with `NO_ERROR` naming the last stream the server will process; close once it is written
        /// when no stream is open.
        case sendGoAway(lastStreamID: HTTP2StreamID, thenClose: Bool)
        case close
    }

    private(set) var openStreams = 0
    private(set) var lastStreamID = HTTP2StreamID.rootStream
    private(set) var isDraining = false

    /// A stream the client opened; nil when its ID could not be read, and then the GOAWAY promises every stream
    /// (`maxID`), which refuses nothing the server may already be processing.
    mutating func streamOpened(_ id: HTTP2StreamID?) -> Action {
        openStreams += 1
        let id = id ?? .maxID
        if id > lastStreamID { lastStreamID = id }
        return .none
    }

    mutating func streamClosed() -> Action {
        // A stream the connection refused after the GOAWAY was never counted as open; never go below zero.
        openStreams = max(0, openStreams - 1)
        return isDraining && openStreams == 0 ? .close : .none
    }

    mutating func quiesce() -> Action {
        guard !isDraining else { return .none }
        isDraining = true
        return .sendGoAway(lastStreamID: lastStreamID, thenClose: openStreams == 0)
    }
}

/// Drains an HTTP/2 connection when the server quiesces: one `GOAWAY` with `NO_ERROR` and the last stream the
/// client opened, so the client opens no more streams here (one it opens meanwhile is refused, and it may retry it
/// elsewhere); the streams in flight finish; the connection closes when the last one has. Without it a client's
/// idle connection would hold the drain open for the whole grace period, and it would keep sending new streams.
///
/// It sits after `NIOHTTP2Handler` on the connection's channel, where the quiesce arrives; the stream initializer
/// tells it of every stream (with the inline multiplexer, `NIOHTTP2Handler` keeps its stream events to itself).
final class HTTP2ConnectionDrainer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Never
    typealias OutboundOut = HTTP2Frame

    private var machine = HTTP2DrainStateMachine()
    private var context: ChannelHandlerContext?
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// A stream the client opened, from the stream initializer; its close is watched from here.
    func streamOpened(_ stream: Channel) {
        var id: HTTP2StreamID?
        do {
            id = try stream.syncOptions?.getOption(HTTP2StreamChannelOptions.streamID)
        } catch {
            logger.warning("an HTTP/2 stream without an ID; a drain's GOAWAY will promise every stream", metadata: ["error": "\(error)"])
        }
        run(machine.streamOpened(id))
        stream.closeFuture.assumeIsolated().whenComplete { _ in self.run(self.machine.streamClosed()) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent { run(machine.quiesce()) }
        context.fireUserInboundEventTriggered(event)
    }

    private func run(_ action: HTTP2DrainStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .sendGoAway(let lastStreamID, let thenClose):
            let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))
            let written = context.writeAndFlush(wrapOutboundOut(goAway))
            if thenClose { written.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
        case .close:
            context.close(promise: nil)
        }
    }
}
