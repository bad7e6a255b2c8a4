import GatehouseBrowser
import GatehouseConfiguration
import GatehouseHTTP
import GatehouseIdentity
import GatehouseMetrics
import GatehouseProxy
import Logging
import NIOCore
import NIOHTTP1

/// Serves the requests of one client connection (or one HTTP/2 stream): admits each request (``RequestAdmission``),
/// answers the gateway's own endpoints, and forwards the rest to a pooled upstream connection on the same event loop,
/// streaming both bodies with back-pressure.
///
/// The decisions are made by two state machines: ``ClientConnectionStateMachine`` (which request a part belongs
/// to, pipelining, reads, keep-alive, close) and one ``ProxyExchangeStateMachine`` per proxied request (buffering,
/// streaming, retry, release, failure). This handler feeds them events and carries out their actions.
final class GatewayRequestHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamResponseReceiver {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What the current request is, for the events that concern it. The flow of parts is the client machine's.
    private enum CurrentRequest {
        /// No request, or one the gateway answered itself whose remaining parts are being read and dropped.
        case none
        case proxy(ProxyExchange)
        /// A request to one of the gateway's own endpoints: collecting its body, then waiting for the answer.
        case endpoint(EndpointCall)
        /// Asking the store about a session cookie this process has not seen lately.
        case sessionLookup
        /// The connection is becoming a byte tunnel (WebSocket); this handler is on its way out.
        case tunnel(ProxyExchange)
    }

    private let state: GatewayState
    private let pool: UpstreamConnectionPool
    private let connection: ClientConnectionInfo
    private let isHTTP2: Bool
    /// The HTTP/1 connection's head and idle deadlines; nil on an HTTP/2 stream.
    private let timeouts: ConnectionTimeoutHandler?
    /// On an HTTP/2 stream, the connection's one timer for all its streams' deadlines.
    private let timerGroup: DeadlineTimerGroup?
    private let requestLog: RequestLog
    private var context: ChannelHandlerContext?
    private var clientConnection = ClientConnectionStateMachine()
    private var current: CurrentRequest = .none
    private var requestIDs = RequestIDGenerator()
    private var traceContexts = TraceContextGenerator()
    /// The upstream response deadline of the exchange in progress; one timer per connection.
    private var responseTimer: DeadlineTimer?
    /// The request body's stall deadline (`limits.body_timeout`), moved on by every body part.
    private var bodyTimer: DeadlineTimer?
    /// Parts of an upstream's response were written to the client and not flushed yet (they are at the end of the
    /// upstream connection's read).
    private var unflushedResponse = false
    /// Between a `channelRead` and its `channelReadComplete`.
    private var readingFromClient = false
    /// The upstream connection with writes not flushed yet.
    private var upstreamToFlush: UpstreamConnection?

    init(
        state: GatewayState, pool: UpstreamConnectionPool, connection: ClientConnectionInfo, isHTTP2: Bool,
        timeouts: ConnectionTimeoutHandler?, timerGroup: DeadlineTimerGroup? = nil
    ) {
        self.state = state
        self.pool = pool
        self.connection = connection
        self.isHTTP2 = isHTTP2
        self.timeouts = timeouts
        self.timerGroup = timerGroup
        self.requestLog = RequestLog(accessLog: state.accessLog)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        responseTimer?.cancel()
        bodyTimer?.cancel()
        self.context = nil
    }

    // MARK: Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        readingFromClient = true
        run(clientConnection.received(unwrapInboundIn(data)), context: context)
    }

    private func run(_ action: ClientConnectionStateMachine.PartAction, context: ChannelHandlerContext) {
        switch action {
        case .startRequest(let head):
            timeouts?.requestHeadReceived()
            startRequest(head, context: context)
        case .requestBody(let buffer):
            receiveRequestBody(buffer, context: context)
        case .requestEnd:
            receiveRequestEnd(context: context)
        case .wait, .drop:
            break
        case .discardedRest:
            bodyTimer?.disarm()
            timeouts?.responseCompleted()
        case .close:
            bodyTimer?.disarm()
            closeClient(context: context)
        case .refuseBrokenRequest:
            send(
                ProblemResponse(.badRequest, "The request is not valid HTTP/1.1.", closeConnection: true), version: .http1_1,
                requestID: requestIDs.next(), isHead: false, keepAlive: false, closeNow: true, context: context)
        }
    }

    /// Takes the queued parts of pipelined requests in order, until one of them waits for its response.
    private func takeQueuedParts() {
        guard let context else { return }
        while let action = clientConnection.nextQueuedPart() {
            run(action, context: context)
        }
        // What a read would have flushed at its end.
        flushUpstream()
        resumeClientReads()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readingFromClient = false
        flushUpstream()
        context.fireChannelReadComplete()
    }

    /// Writes a request part upstream; it is flushed with the others of this turn (``flushUpstream()``).
    private func writeUpstream(_ part: HTTPClientRequestPart, to upstream: UpstreamConnection?) {
        guard let upstream else { return }
        if let pending = upstreamToFlush, pending !== upstream { pending.flush() }
        upstream.write(part)
        upstreamToFlush = upstream
    }

    /// Flushes the upstream connection written to since the last flush: once per read of the client's (a request's
    /// head and end usually arrive in one), and at the end of work done outside a read.
    private func flushUpstream() {
        upstreamToFlush?.flush()
        upstreamToFlush = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        responseTimer?.cancel()
        bodyTimer?.cancel()
        if case .proxy(let exchange) = current {
            _ = exchange.machine.clientClosed()
            closeUpstream(of: exchange)
            requestLog.record(exchange, status: exchange.machine.responseStatus ?? 499)
        }
        current = .none
        clientConnection.close()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent || event as? ChannelEvent == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Shutting down, or the client will send no more.
        switch clientConnection.quiesce() {
        case .close: context.close(promise: nil)
        case .finishInFlight: break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .proxy(let exchange) = current {
            exchange.upstream?.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let parserError = error as? HTTPParserError else {
            // `channelInactive` ends an exchange in progress (closes its upstream connection and logs it).
            context.close(promise: nil)
            return
        }
        // The decoder cannot resync after a parse error: no request after this point can be read.
        let atRequestStart: Bool
        switch clientConnection.parseError() {
        case .finishThenClose:
            // A queued request without its end never starts (`nextQueuedPart`).
            return
        case .close:
            closeClient(context: context)
            return
        case .answerAndClose(let start):
            atRequestStart = start
        }
        let problem: ProblemResponse
        switch parserError {
        case .headerOverflow:
            problem = ProblemResponse(
                .requestHeaderFieldsTooLarge,
                "The request head is larger than \(state.configuration.limits.maxHeaderBytes) bytes.", closeConnection: true)
        default:
            let what = atRequestStart ? "request" : "request body"
            problem = ProblemResponse(.badRequest, "The \(what) is not valid HTTP/1.1 (\(parserError)).", closeConnection: true)
        }
        bodyTimer?.disarm()
        switch current {
        case .none:
            // No head, so no tenant or method: counted as tenant and route `none`, method `OTHER`.
            state.metrics.unknownHost.countUnparsed(status: problem.status.code)
            send(problem, version: .http1_1, requestID: requestIDs.next(), isHead: false, keepAlive: false, closeNow: true, context: context)
        case .proxy(let exchange):
            // A malformed chunk after the head went upstream (§6.6): the upstream connection is closed, never reused,
            // so the partial request can never be completed by bytes of another; the client gets a 400 if it can.
            switch exchange.machine.answerByGateway(status: problem.status.code) {
            case .answer:
                failExchange(exchange, with: problem, closeNow: true, context: context)
            case .closeClient, .none:
                closeUpstream(of: exchange)
                requestLog.record(exchange, status: exchange.machine.responseStatus ?? problem.status.code)
                closeClient(context: context)
            }
        case .endpoint(let call):
            send(problem, version: call.head.version, requestID: call.requestID, isHead: false, keepAlive: false, closeNow: true, context: context)
        case .sessionLookup, .tunnel:
            closeClient(context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        var upstreamCanTakeMore = true
        if case .proxy(let exchange) = current { upstreamCanTakeMore = exchange.upstream?.isWritable ?? false }
        if clientConnection.read(upstreamCanTakeMore: upstreamCanTakeMore) { context.read() }
    }

    private func resumeClientReads() {
        guard let context, clientConnection.resumeReading() else { return }
        context.read()
    }

    /// Whether the connection stays open after answering `head`: not when it is to close and nothing pipelined waits,
    /// and not after a request that asked for an upgrade (`endsParsing`), which stops the HTTP/1 decoder.
    private func keepsAlive(_ head: HTTPRequestHead, endsParsing: Bool) -> Bool {
        clientConnection.keepsAlive(requested: head.isKeepAlive && !endsParsing)
    }

    /// Writes the end of the response and moves the connection on as the client machine says: to the next request,
    /// to reading the rest of an answered request, or to closing once the end is written (not before: closing fails
    /// whatever the socket has not taken yet).
    private func endResponse(_ trailers: HTTPHeaders?, keepAlive: Bool, closeNow: Bool = false, context: ChannelHandlerContext) {
        if case .tunnel = current {} else { current = .none }
        unflushedResponse = false  // every case below flushes
        switch clientConnection.responseEnded(keepAlive: keepAlive, closeNow: closeNow) {
        case .keepAlive(let partsAreQueued):
            timeouts?.responseCompleted()
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            if partsAreQueued {
                // The caller may still be on its way out of an event: the next request starts on the next turn.
                context.eventLoop.assumeIsolated().execute { [self] in takeQueuedParts() }
            } else {
                resumeClientReads()
            }
        case .discardRestOfRequest:
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            // The rest is read so the client can read the answer rather than lose it to a reset, but for no longer
            // than `limits.body_timeout` in all (dropped parts do not move the deadline): a client trickling the
            // body of a refused request must not hold the connection.
            armBodyTimer()
        case .closeAfterWrite:
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// Closes the client connection now; `channelInactive` ends whatever is in progress.
    private func closeClient(context: ChannelHandlerContext) {
        clientConnection.close()
        context.close(promise: nil)
    }

    // MARK: Request

    /// - Parameter resumed: the store's answer about the request's session cookie, when this is the second pass
    ///   after asking it.
    private func startRequest(_ head: HTTPRequestHead, context: ChannelHandlerContext, resumed: SessionResumption? = nil) {
        switch current {
        case .none where resumed == nil, .sessionLookup where resumed != nil:
            break
        case .none, .sessionLookup, .proxy, .endpoint, .tunnel:
            // The client machine starts one request at a time; anything else is a bug that must not go on.
            assertionFailure("request head while \(current)")
            closeClient(context: context)
            return
        }
        current = .none
        // The second pass is the same request: its time, ids and trace run from the first.
        let start = resumed?.start ?? NIODeadline.now()
        let facts = RequestHeaderFacts(head.headers)
        let requestID = resumed?.requestID ?? facts.requestID.flatMap { ForwardingHeaders.isSaneRequestID($0) ? $0 : nil } ?? requestIDs.next()
        let trace = resumed?.trace ?? TraceContext.of(facts, generator: &traceContexts)
        let isHead = head.method == .HEAD
        let endsParsing = !isHTTP2 && (facts.endsHTTPParsing || head.method == .CONNECT)

        func reject(_ problem: ProblemResponse, tenant: Tenant? = nil, route: Route? = nil, path: String? = nil) {
            var problem = problem
            if !problem.closeConnection, BrowserRules.hasLargeBody(facts) { problem.closeConnection = true }
            let keepAlive = !problem.closeConnection && keepsAlive(head, endsParsing: endsParsing)
            send(problem, version: head.version, requestID: requestID, isHead: isHead, keepAlive: keepAlive, context: context)
            requestLog.record(
                metrics: route?.metrics ?? tenant?.metrics.unmatched ?? state.metrics.unknownHost, tenant: tenant?.id, route: route?.path, method: head.method.rawValue, path: path ?? "-", status: problem.status.code,
                upstream: nil, start: start, requestID: requestID, trace: trace, bytes: 0)
        }

        let admission = RequestAdmission(
            tenants: state.tenants, authorizer: state.authorizer, limits: state.configuration.limits, isHTTP2: isHTTP2, scheme: connection.scheme)
        let identity = state.identity
        let decision = admission.decide(head, facts: facts) { tenant, cookies in
            switch resumed?.answer {
            // The second pass, with the store's answer.
            case .found(let found): return .answered(found)
            case .unavailable: return .unavailable
            // Memory first; the store (off the event loop) only for a session this process has not seen lately.
            case nil:
                switch identity.cachedSession(tenant: tenant.configuration, cookies: cookies) {
                case .valid(let cached): return .answered(cached)
                case .invalid: return .answered(nil)
                case .unknown: return .needsStore
                }
            }
        }
        switch decision {
        case .reject(let rejection):
            if let authentication = rejection.authentication { rejection.tenant?.metrics.count(authentication.metricsResult) }
            reject(rejection.problem, tenant: rejection.tenant, route: rejection.route, path: rejection.path)
        case .lookUpSession(let tenant, let cookies):
            askStoreForSession(
                cookies, head: head, tenant: tenant, first: SessionResumption(answer: .unavailable, start: start, requestID: requestID, trace: trace),
                context: context)
        case .endpoint(let endpointTenant, let endpointTarget, let endpointFraming):
            current = .endpoint(
                EndpointCall(
                    head: head, facts: facts, tenant: endpointTenant, path: endpointTarget.path, query: endpointTarget.query.map(String.init),
                    requestID: requestID, trace: trace, start: start, body: context.channel.allocator.buffer(capacity: 0), endsParsing: endsParsing))
            if endpointFraming.hasBody { armBodyTimer() }
            if facts.expectsContinue {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        case .proxy(let admitted):
            admitted.tenant.metrics.count(admitted.authentication.metricsResult)
            startExchange(admitted, head: head, facts: facts, requestID: requestID, trace: trace, start: start, endsParsing: endsParsing, context: context)
        }
    }

    /// Forwards an admitted request: the head ``UpstreamRequestPlan`` builds, the exchange's machine, and a lease of
    /// an upstream connection.
    private func startExchange(
        _ admitted: RequestAdmission.Admission, head: HTTPRequestHead, facts: RequestHeaderFacts, requestID: String, trace: TraceContext,
        start: NIODeadline, endsParsing: Bool, context: ChannelHandlerContext
    ) {
        let route = admitted.route
        var uri = route.upstreamPath(for: admitted.target.path)
        if let query = admitted.target.query { uri += "?" + query }
        // Over HTTP/2 the stream delimits the body: without a Content-Length the framing waits for the first part.
        let awaitsFraming = isHTTP2 && admitted.framing == .none
        let plan = UpstreamRequestPlan(
            method: head.method, uri: uri, framing: admitted.framing, isWebSocketUpgrade: admitted.isWebSocket,
            identityHeaders: admitted.identityHeaders)
        let upstreamHead = plan.makeHead(
            from: head.headers, facts: facts,
            policy: .init(reservedHeaderNames: admitted.tenant.reservedHeaderNames, forwardAuthorization: route.configuration.forwardAuthorization),
            connection: connection, requestID: requestID, trace: trace)
        let machine = ProxyExchangeStateMachine(
            upstreamHead: upstreamHead, framing: admitted.framing, awaitsFraming: awaitsFraming, method: head.method,
            isUpgrade: admitted.isWebSocket, endsParsing: endsParsing, maxBodyBytes: state.configuration.limits.maxBodyBytes)
        let exchange = ProxyExchange(
            clientHead: head, machine: machine, tenant: admitted.tenant, route: route, path: admitted.target.path, requestID: requestID,
            trace: trace, start: start, endsParsing: endsParsing)
        current = .proxy(exchange)
        if admitted.framing.hasBody || awaitsFraming { armBodyTimer() }
        if facts.expect != nil {
            // The gateway accepted the request (an Expect other than 100-continue was refused): let the client send its body.
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        connectUpstream(exchange, forceNew: false)
    }

    /// The store's answer about a session cookie, for the request that waited for it.
    enum SessionAnswer {
        case found(ActiveSession?)
        case unavailable
    }

    /// The answer, with what the first pass of the request had decided.
    struct SessionResumption {
        var answer: SessionAnswer
        var start: NIODeadline
        var requestID: String
        var trace: TraceContext
    }

    /// Looks a session up in the store off the event loop, then starts the request again with the answer. Until
    /// then the request's body waits in the client machine's queue, and the connection reads no further.
    private func askStoreForSession(_ cookies: [String], head: HTTPRequestHead, tenant: Tenant, first: SessionResumption, context: ChannelHandlerContext) {
        let requestID = first.requestID
        current = .sessionLookup
        clientConnection.holdRequestParts()
        let identity = state.identity
        let configuration = tenant.configuration
        let logger = state.logger(requestID: requestID, tenant: tenant.id)
        let promise = context.eventLoop.makePromise(of: SessionAnswer.self)
        Task(executorPreference: state.endpointExecutor) {
            do {
                promise.succeed(.found(try await identity.session(tenant: configuration, cookies: cookies)))
            } catch {
                logger.warning("session lookup failed; answering 503", metadata: ["error": "\(error)"])
                promise.succeed(.unavailable)
            }
        }
        promise.futureResult.assumeIsolated().whenSuccess { [self] answer in
            guard let context = self.context else { return }
            switch clientConnection.resumeRequestParts() {
            case .closed:
                // The connection closed (or is quiescing) while the store answered; nothing is left to answer.
                return
            case .refuseBrokenRequest:
                current = .none
                run(.refuseBrokenRequest, context: context)
            case .resume:
                var resumption = first
                resumption.answer = answer
                startRequest(head, context: context, resumed: resumption)
                takeQueuedParts()
            }
        }
    }

    private func receiveRequestBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        switch current {
        case .endpoint(let call):
            var buffer = buffer
            let limit = state.configuration.limits.authBodyBytes
            guard call.body.readableBytes + buffer.readableBytes <= limit else {
                requestLog.record(call, status: 413, bytes: 0)
                send(
                    ProblemResponse(.payloadTooLarge, "The request body is larger than the limit of \(limit) bytes.", closeConnection: true),
                    version: call.head.version, requestID: call.requestID, isHead: false, keepAlive: false, context: context)
                return
            }
            call.body.writeBuffer(&buffer)
            armBodyTimer()
        case .proxy(let exchange):
            armBodyTimer()
            switch exchange.machine.requestBody(buffer) {
            case .write(let part):
                writeUpstream(part, to: exchange.upstream)
            case .writeHeadAnd(let part):
                writeUpstream(.head(exchange.machine.headToWrite), to: exchange.upstream)
                writeUpstream(part, to: exchange.upstream)
            case .buffered, .drop:
                break
            case .bodyTooLarge(let limit):
                let problem = ProblemResponse(.payloadTooLarge, "The request body is larger than the limit of \(limit) bytes.", closeConnection: true)
                switch exchange.machine.answerByGateway(status: problem.status.code) {
                case .answer: failExchange(exchange, with: problem, context: context)
                case .closeClient, .none: abort(exchange, context: context)
                }
            case .abort:
                abort(exchange, context: context)
            }
        case .none, .sessionLookup, .tunnel:
            // `.none` is a request the gateway answered (the client machine drops its parts); the others never
            // receive parts.
            assertionFailure("request body while \(current)")
            closeClient(context: context)
        }
    }

    private func receiveRequestEnd(context: ChannelHandlerContext) {
        bodyTimer?.disarm()
        switch current {
        case .endpoint(let call):
            dispatch(call, context: context)
        case .proxy(let exchange):
            let armResponseTimer: Bool
            switch exchange.machine.requestEnd() {
            case .write(let part, let arm):
                writeUpstream(part, to: exchange.upstream)
                armResponseTimer = arm
            case .writeHeadAnd(let part, let arm):
                writeUpstream(.head(exchange.machine.headToWrite), to: exchange.upstream)
                writeUpstream(part, to: exchange.upstream)
                armResponseTimer = arm
            case .buffered, .drop:
                armResponseTimer = false
            case .abort:
                abort(exchange, context: context)
                return
            }
            if armResponseTimer { startResponseTimeout() }
        case .none, .sessionLookup, .tunnel:
            assertionFailure("request end while \(current)")
            closeClient(context: context)
        }
    }

    // MARK: Gateway endpoints

    /// Runs an endpoint off the event loop (it may hash a password or touch the store) and writes its answer
    /// back on this loop, unless the client went away meanwhile.
    private func dispatch(_ call: EndpointCall, context: ChannelHandlerContext) {
        let request = call.request(
            tenants: state.tenants, connection: connection, logger: state.logger(requestID: call.requestID, tenant: call.tenant.id))
        let endpoints = state.endpoints
        let tenant = call.tenant
        let promise = context.eventLoop.makePromise(of: EndpointResponse.self)
        Task(executorPreference: state.endpointExecutor) { promise.succeed(await endpoints.handle(request, tenant: tenant)) }
        promise.futureResult.assumeIsolated().whenSuccess { [self] response in
            // The client may have gone away (or the connection closed) while the endpoint ran.
            guard case .endpoint(let current) = current, current === call, let context = self.context else { return }
            respond(to: call, with: response, context: context)
        }
    }

    private func respond(to call: EndpointCall, with response: EndpointResponse, context: ChannelHandlerContext) {
        let answer = call.answer(response, allocator: context.channel.allocator)
        let keepAlive = keepsAlive(call.head, endsParsing: call.endsParsing)
        requestLog.record(call, status: response.status.code, bytes: answer.body.readableBytes)
        ResponseWriter.writeHeadAndBody(answer, version: call.head.version, isHead: call.head.method == .HEAD, keepAlive: keepAlive, context: context)
        endResponse(nil, keepAlive: keepAlive, context: context)
    }

    // MARK: Upstream

    private func connectUpstream(_ exchange: ProxyExchange, forceNew: Bool) {
        switch pool.lease(exchange.route.upstream, forceNew: forceNew) {
        case .ready(let upstream):
            attach(upstream, to: exchange)
        case .connecting(let future):
            // The pool connects on this same event loop.
            future.assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let upstream):
                    attach(upstream, to: exchange)
                case .failure(let error):
                    guard case .badGateway = exchange.machine.connectFailed(), let context else { return }
                    let detail = "The upstream \(exchange.route.upstream.origin) cannot be reached (\(UpstreamFailure.describe(error)))."
                    failExchange(exchange, with: ProblemResponse(.badGateway, detail), context: context)
                }
            }
        }
    }

    private func attach(_ upstream: UpstreamConnection, to exchange: ProxyExchange) {
        guard case .proxy(let current) = current, current === exchange else {
            // The client went away while we connected; the connection is still good for others.
            pool.release(upstream)
            return
        }
        switch exchange.machine.connected(isReused: upstream.isReused) {
        case .release:
            pool.release(upstream)
            return
        case .wait:
            break
        case .write(let parts, let armResponseTimer):
            for part in parts { writeUpstream(part, to: upstream) }
            // Within a read of the client's, the rest of the request may be in the same read: one flush at its end.
            if !readingFromClient { flushUpstream() }
            if armResponseTimer { startResponseTimeout() }
        }
        upstream.receiver = self
        exchange.upstream = upstream
        exchange.upstreamStart = .now()
        if upstream.isWritable { resumeClientReads() }
    }

    /// Starts the wait for the upstream's response head, once per attempt (it is called when the request is
    /// complete and when the connection is attached, whichever comes last).
    private func startResponseTimeout() {
        guard responseTimer?.isArmed != true, let context else { return }
        if responseTimer == nil {
            // Made on first use (an HTTP/2 stream is a handler of its own, and most never need both timers). A strong
            // capture: `handlerRemoved` cancels the timer, which lets it go (see DeadlineTimer).
            responseTimer = DeadlineTimer(eventLoop: context.eventLoop, group: timerGroup) { [self] in responseTimedOut() }
        }
        responseTimer?.arm(in: state.configuration.limits.upstreamTimeout.timeAmount)
    }

    /// Arms (or moves on) the request body's stall deadline, `limits.body_timeout`.
    private func armBodyTimer() {
        if bodyTimer == nil, let context {
            bodyTimer = DeadlineTimer(eventLoop: context.eventLoop, group: timerGroup) { [self] in bodyTimedOut() }
        }
        bodyTimer?.arm(in: state.configuration.limits.bodyTimeout.timeAmount)
    }

    private func responseTimedOut() {
        guard case .proxy(let exchange) = current, let context else { return }
        guard case .answer = exchange.machine.responseTimedOut() else { return }
        let seconds = ConfigurationValues.format(state.configuration.limits.upstreamTimeout)
        failExchange(exchange, with: ProblemResponse(.gatewayTimeout, "The upstream sent no response head within \(seconds)."), context: context)
    }

    /// The request body sent nothing for `limits.body_timeout` (§6.9): the exchange ends, its upstream connection is
    /// closed (a slow body must not hold it), and the client gets 408 unless a response has started.
    private func bodyTimedOut() {
        guard let context else { return }
        if clientConnection.isHoldingClientBack {
            // The gateway itself is holding the body back (the upstream is not taking it): not the client's stall.
            armBodyTimer()
            return
        }
        let seconds = ConfigurationValues.format(state.configuration.limits.bodyTimeout)
        let problem = ProblemResponse(.requestTimeout, "The request body sent nothing for \(seconds).", closeConnection: true)
        switch current {
        case .proxy(let exchange):
            switch exchange.machine.bodyTimedOut() {
            case .answer: failExchange(exchange, with: problem, closeNow: true, context: context)
            case .closeClient: abort(exchange, context: context)
            case .none: break
            }
        case .endpoint(let call) where clientConnection.state == .receiving:
            requestLog.record(call, status: problem.status.code, bytes: 0)
            send(problem, version: call.head.version, requestID: call.requestID, isHead: false, keepAlive: false, closeNow: true, context: context)
        case .none where clientConnection.isDiscarding:
            // The rest of an answered request did not arrive within the linger time.
            closeClient(context: context)
        case .endpoint, .none, .sessionLookup, .tunnel:
            // A timer that fired late, for a body that has ended since.
            break
        }
    }

    /// Closes the upstream connection of an exchange (it is never reused after a failure).
    private func closeUpstream(of exchange: ProxyExchange) {
        responseTimer?.disarm()
        exchange.upstream?.close()
        exchange.upstream = nil
    }

    /// Ends an exchange that cannot finish cleanly after its response started: both connections close, so the client
    /// sees a cut-off response rather than a truncated one presented as complete.
    private func abort(_ exchange: ProxyExchange, context: ChannelHandlerContext) {
        _ = exchange.machine.clientClosed()
        closeUpstream(of: exchange)
        requestLog.record(exchange, status: exchange.machine.responseStatus ?? 400)
        closeClient(context: context)
    }

    /// The upstream connection sent an event the exchange's machine cannot take (or for no exchange at all).
    private func upstreamEventOutOfOrder(_ event: String) {
        guard let context else { return }
        if case .proxy(let exchange) = current {
            state.logger(requestID: exchange.requestID, tenant: exchange.tenant.id).warning(
                "upstream sent \(event) out of order; closing both connections")
            abort(exchange, context: context)
        } else {
            closeClient(context: context)
        }
    }

    func upstreamReceived(head: HTTPResponseHead) {
        guard case .proxy(let exchange) = current, let context else { return upstreamEventOutOfOrder("head") }
        switch exchange.machine.responseHead(head) {
        case .ignore:
            return
        case .abort:
            upstreamEventOutOfOrder("head")
        case .badGateway(let detail):
            failExchange(exchange, with: ProblemResponse(.badGateway, detail, closeConnection: true), context: context)
        case .startTunnel(let head):
            responseTimer?.disarm()
            startTunnel(exchange, upstreamHead: head, context: context)
        case .forward(let head):
            responseTimer?.disarm()
            var headers = ForwardingHeaders.clientResponseHeaders(from: head.headers, requestID: exchange.requestID, keepUpgrade: false)
            // An answer that starts before the request's body is in closes the connection after it: whether the rest
            // of the body will still arrive (and could be skipped) is not known yet, and the header must not promise.
            let keepAlive = exchange.machine.requestComplete && keepsAlive(exchange.clientHead, endsParsing: exchange.endsParsing)
            exchange.keepsClientAlive = keepAlive
            if let connection = ResponseWriter.connectionHeader(version: exchange.clientHead.version, keepAlive: keepAlive) {
                headers.add(name: "Connection", value: connection)
            }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: exchange.clientHead.version, status: head.status, headers: headers))), promise: nil)
            unflushedResponse = true
        }
    }

    func upstreamReceived(body: ByteBuffer) {
        guard case .proxy(let exchange) = current, let context, exchange.machine.responseBody() == .forward else {
            return upstreamEventOutOfOrder("body")
        }
        exchange.bytesSent += body.readableBytes
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        unflushedResponse = true
        if !context.channel.isWritable { exchange.upstream?.pauseReading() }
    }

    func upstreamReceivedEnd(trailers: HTTPHeaders?) {
        if case .tunnel(let exchange) = current, exchange.machine.responseEnd() == .switchedProtocols { return }
        guard case .proxy(let exchange) = current, let context else { return upstreamEventOutOfOrder("end") }
        let upstream = exchange.upstream
        exchange.upstream = nil
        switch exchange.machine.responseEnd() {
        case .abort, .switchedProtocols:
            exchange.upstream = upstream
            upstreamEventOutOfOrder("end")
        case .complete(let releaseUpstream):
            exchange.upstreamEnd = .now()
            if let upstream { releaseUpstream ? pool.release(upstream) : upstream.close() }
            requestLog.record(exchange, status: exchange.machine.responseStatus ?? 0)
            let keepAlive = exchange.keepsClientAlive && keepsAlive(exchange.clientHead, endsParsing: exchange.endsParsing)
            endResponse(trailers, keepAlive: keepAlive, context: context)
        case .completeEarly:
            // The upstream answered before the request body was done: the rest of the body has nowhere to go.
            exchange.upstreamEnd = .now()
            upstream?.close()
            requestLog.record(exchange, status: exchange.machine.responseStatus ?? 0)
            endResponse(trailers, keepAlive: false, closeNow: true, context: context)
        }
    }

    func upstreamReadComplete() {
        // The usual read holds the whole response, whose end was written and flushed already: a flush now would walk
        // the pipeline (and, over HTTP/2, the stream's multiplexer) for nothing.
        guard unflushedResponse, let context else { return }
        unflushedResponse = false
        context.flush()
    }

    func upstreamConnectionLost(error: Error?) {
        guard case .proxy(let exchange) = current, let context else { return }
        responseTimer?.disarm()
        exchange.upstream = nil
        switch exchange.machine.connectionLost() {
        case .none:
            return
        case .retryOnFreshConnection:
            connectUpstream(exchange, forceNew: true)
        case .badGateway(let closeClient):
            let reason = error.map { " (\(UpstreamFailure.describe($0)))" } ?? ""
            failExchange(
                exchange,
                with: ProblemResponse(
                    .badGateway, "The upstream \(exchange.route.upstream.origin) closed the connection before responding\(reason).",
                    closeConnection: closeClient),
                context: context)
        case .closeClient:
            // Mid-response: the client must see the connection end, not a truncated body presented as complete.
            requestLog.record(exchange, status: exchange.machine.responseStatus ?? 502)
            closeClient(context: context)
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }

    // MARK: Responses

    /// Ends an exchange with a gateway-made answer (502, 504, 408, 413) once its machine agreed to answer: closes the
    /// upstream connection, and the client's too when the request was not read to its end.
    private func failExchange(_ exchange: ProxyExchange, with problem: ProblemResponse, closeNow: Bool = false, context: ChannelHandlerContext) {
        closeUpstream(of: exchange)
        requestLog.record(exchange, status: problem.status.code)
        let close = problem.closeConnection || !exchange.machine.requestComplete
        let keepAlive = !close && keepsAlive(exchange.clientHead, endsParsing: exchange.endsParsing)
        send(
            problem, version: exchange.clientHead.version, requestID: exchange.requestID, isHead: exchange.clientHead.method == .HEAD,
            keepAlive: keepAlive, closeNow: closeNow, context: context)
    }

    /// Writes a gateway-made answer and ends the response (``endResponse``); `closeNow` closes once it is written
    /// without reading the rest of the request.
    private func send(
        _ problem: ProblemResponse, version: HTTPVersion, requestID: String, isHead: Bool, keepAlive: Bool, closeNow: Bool = false,
        context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/problem+json")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Request-Id", value: requestID)
        for (name, value) in problem.headers { headers.add(name: name, value: value) }
        let response = CompleteResponse(status: problem.status, headers: headers, body: context.channel.allocator.buffer(string: problem.body))
        ResponseWriter.writeHeadAndBody(response, version: version, isHead: isHead, keepAlive: keepAlive, context: context)
        endResponse(nil, keepAlive: keepAlive, closeNow: closeNow, context: context)
    }

    // MARK: WebSocket tunnel

    private func startTunnel(_ exchange: ProxyExchange, upstreamHead: HTTPResponseHead, context: ChannelHandlerContext) {
        guard let upstream = exchange.upstream else { return closeClient(context: context) }
        exchange.upstream = nil
        current = .tunnel(exchange)
        clientConnection.close()
        requestLog.record(exchange, status: 101)
        let headers = ForwardingHeaders.clientResponseHeaders(from: upstreamHead.headers, requestID: exchange.requestID, keepUpgrade: true)
        let clientChannel = context.channel
        let response = HTTPResponseHead(version: exchange.clientHead.version, status: .switchingProtocols, headers: headers)
        timeouts?.tunnelStarted()
        context.writeAndFlush(wrapOutboundOut(.head(response))).assumeIsolated().flatMap {
            TunnelHandler.removeHTTPHandlers(from: clientChannel, keeping: self)
        }.flatMap {
            upstream.removeHTTPHandlers()
        }.flatMapThrowing {
            let (clientSide, upstreamSide) = TunnelHandler.matchedPair()
            try clientChannel.pipeline.syncOperations.addHandler(clientSide)
            try upstream.channel.pipeline.syncOperations.addHandler(upstreamSide)
            clientChannel.pipeline.syncOperations.removeHandler(self).whenComplete { _ in }
        }.whenFailure { _ in
            clientChannel.close(promise: nil)
            upstream.close()
        }
    }
}
