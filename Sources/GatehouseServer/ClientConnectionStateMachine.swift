import NIOCore
import NIOHTTP1

/// The flow of requests on one client connection (or one HTTP/2 stream) as a value: which request a part belongs
/// to, when parts of pipelined requests wait, when the socket is read, whether the connection is kept alive, and
/// when it closes. `GatewayRequestHandler` feeds it events and carries out the action each method returns.
///
/// Requests are handled one at a time. Parts that arrive while the request before them is still being answered (or
/// while the handler waits for the store about the current request's session) wait in a queue, and the connection
/// stops reading while anything waits there, so a client cannot make the gateway buffer more than one read.
struct ClientConnectionStateMachine {
    enum State: Equatable {
        /// Waiting for a request head.
        case idle
        /// The current request's parts go to the handler as they arrive.
        case receiving
        /// The handler is busy with the current request's head (a session lookup): its remaining parts wait.
        case holding
        /// The request was read to its end and its response is still to come; parts now belong to later requests.
        case awaitingResponse
        /// The response went out before the request ended: the request's remaining parts are read and dropped, then
        /// the connection closes (`closeAfter`) or takes the next request. Reading the rest before closing lets the
        /// client read the answer instead of losing it to a reset.
        case discarding(closeAfter: Bool)
        /// The connection became a byte tunnel, or is closing: nothing more is delivered.
        case closed
    }

    private(set) var state: State = .idle
    /// Parts of requests that arrived while an earlier one was being answered.
    private var queue = CircularBuffer<HTTPServerRequestPart>()
    /// A `read` held back because parts wait in the queue or the upstream cannot take more yet.
    private var readPending = false
    /// Close once the current response is out: the server is shutting down, or the client stopped sending.
    private(set) var closesWhenIdle = false
    /// The decoder failed on bytes after the queued parts: nothing more will arrive, so a queued request that lacks
    /// its end is malformed and must never start.
    private var inputBroken = false

    var hasQueuedParts: Bool { !queue.isEmpty }

    /// Whether the rest of an answered request is being read and dropped.
    var isDiscarding: Bool {
        if case .discarding = state { return true }
        return false
    }

    // MARK: Reading

    /// Whether a `read` from the pipeline goes to the socket now. It is held while parts wait in the queue, and
    /// while the upstream cannot take more of the request (`upstreamCanTakeMore` false).
    mutating func read(upstreamCanTakeMore: Bool) -> Bool {
        guard queue.isEmpty, upstreamCanTakeMore else {
            readPending = true
            return false
        }
        return true
    }

    /// Whether to issue the `read` held back, now that what held it is gone.
    mutating func resumeReading() -> Bool {
        guard readPending, queue.isEmpty, state != .closed else { return false }
        readPending = false
        return true
    }

    /// Whether the gateway itself holds the client back (a read waits, or parts are queued): a stalled body is then
    /// not the client's fault.
    var isHoldingClientBack: Bool { readPending || !queue.isEmpty }

    // MARK: Request parts

    enum PartAction: Equatable {
        case startRequest(HTTPRequestHead)
        case requestBody(ByteBuffer)
        case requestEnd
        /// The part waits in the queue for the request before it.
        case wait
        /// A part of a request already answered, or of a closed connection: read and forgotten.
        case drop
        /// The rest of an answered request was read: the connection is ready for the next one.
        case discardedRest
        /// Close the connection now (an answered request's rest was read and the connection does not stay open, or
        /// a part arrived that the decoder never sends in this state).
        case close
        /// A queued request cut short by bytes the decoder refused: 400 and close, before anything of it goes
        /// upstream (§6.6).
        case refuseBrokenRequest
    }

    /// A part read from the decoder.
    mutating func received(_ part: HTTPServerRequestPart) -> PartAction {
        guard state != .closed else { return .drop }
        guard queue.isEmpty else {
            queue.append(part)
            return .wait
        }
        return deliver(part)
    }

    /// The next queued part that can be handled now, or nil when none can (the queue is empty, or the request at
    /// its front waits for the one before it).
    mutating func nextQueuedPart() -> PartAction? {
        switch state {
        case .closed:
            queue.removeAll()
            return nil
        case .holding, .awaitingResponse:
            return nil
        case .idle where inputBroken && !queue.isEmpty && !queue.holdsCompleteRequest():
            queue.removeAll()
            state = .closed
            return .refuseBrokenRequest
        case .idle, .receiving, .discarding:
            guard let part = queue.popFirst() else { return nil }
            return deliver(part)
        }
    }

    private mutating func deliver(_ part: HTTPServerRequestPart) -> PartAction {
        switch (state, part) {
        case (.idle, .head(let head)):
            state = .receiving
            return .startRequest(head)
        case (.receiving, .body(let buffer)):
            return .requestBody(buffer)
        case (.receiving, .end):
            state = .awaitingResponse
            return .requestEnd
        case (.holding, _), (.awaitingResponse, _):
            queue.append(part)
            return .wait
        case (.discarding, .body):
            return .drop
        case (.discarding(let closeAfter), .end):
            if closeAfter || (closesWhenIdle && queue.isEmpty) {
                state = .closed
                return .close
            }
            state = .idle
            return .discardedRest
        case (.closed, _):
            return .drop
        case (.idle, .body), (.idle, .end), (.receiving, .head), (.discarding, .head):
            // The decoder delivers head, body..., end in order; anything else means the handler and the decoder
            // disagree about where a request starts, and nothing on this connection can be trusted.
            assertionFailure("request part \(part) in state \(state)")
            state = .closed
            queue.removeAll()
            return .close
        }
    }

    /// The handler waits (for the store) before taking the current request's remaining parts.
    mutating func holdRequestParts() {
        precondition(state == .receiving, "holding request parts in state \(state)")
        state = .holding
    }

    enum ResumeAction: Equatable {
        /// Take the queued parts (`nextQueuedPart`).
        case resume
        /// The request's remaining parts will never arrive in full: 400 and close.
        case refuseBrokenRequest
        /// The connection closed meanwhile.
        case closed
    }

    /// The handler can take the current request's remaining parts again.
    mutating func resumeRequestParts() -> ResumeAction {
        guard state == .holding else { return .closed }
        if inputBroken && !queue.holdsCompleteRequest(startingWithHead: false) {
            queue.removeAll()
            state = .closed
            return .refuseBrokenRequest
        }
        state = .receiving
        return .resume
    }

    // MARK: Responses

    /// Whether the connection stays open after the response to a request that asked for `requested` keep-alive:
    /// not when it is to close once idle and no later request waits. (The current request's own remaining parts may
    /// be queued too, after a session lookup: they do not keep the connection open.)
    func keepsAlive(requested: Bool) -> Bool {
        requested && !(closesWhenIdle && !queueHoldsLaterRequest) && state != .closed
    }

    private var queueHoldsLaterRequest: Bool {
        queue.contains { if case .head = $0 { true } else { false } }
    }

    enum ResponseEndAction: Equatable {
        /// The connection is ready for the next request; queued parts are taken on the next turn of the loop (the
        /// caller may still be writing the end) when `partsAreQueued`, else a held read is resumed.
        case keepAlive(partsAreQueued: Bool)
        /// Close the connection once the response's end is written.
        case closeAfterWrite
        /// The response went out while the request was still arriving: its remaining parts are read and dropped
        /// (`discarding`); the connection closes or continues after them.
        case discardRestOfRequest
    }

    /// The response to the current request is complete (its end is about to be written). `keepAlive` is what
    /// `keepsAlive(requested:)` said when the head was written; `closeNow` closes without reading the rest of the
    /// request (the upstream answered early and the rest has nowhere to go).
    mutating func responseEnded(keepAlive: Bool, closeNow: Bool = false) -> ResponseEndAction {
        switch state {
        case .awaitingResponse, .idle:
            guard keepAlive, !closeNow else {
                state = .closed
                return .closeAfterWrite
            }
            state = .idle
            return .keepAlive(partsAreQueued: !queue.isEmpty)
        case .receiving, .holding:
            guard !closeNow else {
                state = .closed
                queue.removeAll()
                return .closeAfterWrite
            }
            state = .discarding(closeAfter: !keepAlive)
            return .discardRestOfRequest
        case .discarding, .closed:
            state = .closed
            return .closeAfterWrite
        }
    }

    // MARK: Connection events

    enum QuiesceAction: Equatable {
        case close
        /// Finish the request in hand (and any pipelined behind it) first.
        case finishInFlight
    }

    /// The server is shutting down, or the client half-closed: no new request after those already read.
    mutating func quiesce() -> QuiesceAction {
        closesWhenIdle = true
        guard state == .idle, queue.isEmpty else { return .finishInFlight }
        state = .closed
        return .close
    }

    enum ParseErrorAction: Equatable {
        /// The bad bytes follow requests still being answered: finish those (the complete ones), then close.
        case finishThenClose
        /// Answer the current request (or, `atRequestStart`, the bad head) with an error, and close.
        case answerAndClose(atRequestStart: Bool)
        /// The current request was answered already: close.
        case close
    }

    /// The decoder refused the bytes after what it delivered; it cannot resync, so nothing more will arrive.
    mutating func parseError() -> ParseErrorAction {
        if !queue.isEmpty || state == .awaitingResponse || state == .holding {
            inputBroken = true
            closesWhenIdle = true
            return .finishThenClose
        }
        let previous = state
        state = .closed
        switch previous {
        case .idle: return .answerAndClose(atRequestStart: true)
        case .receiving: return .answerAndClose(atRequestStart: false)
        case .discarding, .closed, .holding, .awaitingResponse: return .close
        }
    }

    /// The connection is closing, became a tunnel, or went inactive: nothing queued will be answered.
    mutating func close() {
        state = .closed
        queue.removeAll()
    }
}

extension CircularBuffer where Element == HTTPServerRequestPart {
    /// Whether the request at the front of the queue (its head, or, with `startingWithHead: false`, the parts after
    /// a head already taken) is there up to its end. After a parse error nothing more will arrive, so a queued
    /// request without its end is malformed and must never start.
    func holdsCompleteRequest(startingWithHead: Bool = true) -> Bool {
        for (index, part) in self.enumerated() {
            switch part {
            case .end: return true
            case .head: if index > 0 || !startingWithHead { return false }
            case .body: continue
            }
        }
        return false
    }
}
