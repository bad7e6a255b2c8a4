import GatehouseBrowser
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseMetrics
import GatehouseProxy
import Logging
import NIOCore
import NIOHTTP1

/// Serves the requests of one client connection (or one HTTP/2 stream): resolves the tenant, normalises the
/// path, picks the route, applies the policy and forwards to a pooled upstream connection on the same event
/// loop, streaming both bodies with back-pressure.
///
/// Requests are handled one at a time. Pipelined HTTP/1.1 requests wait in a queue for the response before them,
/// and the connection stops reading while anything waits there, so a client cannot make it buffer more than one read.
final class GatewayRequestHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamResponseReceiver {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        case idle
        /// The gateway answered itself; request parts are dropped until `.end`.
        case answered(closeAfterRequest: Bool)
        case exchanging(ProxyExchange)
        /// A request to one of the gateway's own endpoints: collecting its body, then waiting for the answer.
        case endpoint(EndpointCall)
        /// Asking the store about a session cookie this process has not seen lately; the request's remaining parts
        /// wait in the pipelining queue.
        case authenticating
        /// The connection became a byte tunnel (WebSocket); this handler is on its way out.
        case tunnelling
        case closed
    }

    private let state: GatewayState
    private let pool: UpstreamConnectionPool
    private let connection: ClientConnectionInfo
    private let isHTTP2: Bool
    /// The HTTP/1 connection's head and idle deadlines; nil on an HTTP/2 stream.
    private let timeouts: ConnectionTimeoutHandler?
    private var context: ChannelHandlerContext?
    private var phase: Phase = .idle
    /// Parts of pipelined requests that arrived while an earlier response was still in flight.
    private var pipelined = CircularBuffer<HTTPServerRequestPart>()
    /// Close once the current response is out: the server is shutting down, or the client stopped sending.
    private var closeWhenIdle = false
    /// The decoder failed on bytes after the queued parts: nothing more will arrive, so a queued request that lacks
    /// its end is malformed and must never go upstream.
    private var inputBroken = false
    /// A `read` held back because the upstream side cannot take more yet, or pipelined requests are waiting.
    private var readPending = false
    private var requestIDs = RequestIDGenerator()
    private var traceContexts = TraceContextGenerator()
    /// The upstream response deadline of the exchange in progress; one timer per connection.
    private var responseTimer: DeadlineTimer?
    /// The request body's stall deadline (`limits.body_timeout`), moved on by every body part.
    private var bodyTimer: DeadlineTimer?

    init(
        state: GatewayState, pool: UpstreamConnectionPool, connection: ClientConnectionInfo, isHTTP2: Bool,
        timeouts: ConnectionTimeoutHandler?
    ) {
        self.state = state
        self.pool = pool
        self.connection = connection
        self.isHTTP2 = isHTTP2
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        responseTimer = DeadlineTimer(eventLoop: context.eventLoop) { [weak self] in self?.responseTimedOut() }
        bodyTimer = DeadlineTimer(eventLoop: context.eventLoop) { [weak self] in self?.bodyTimedOut() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        responseTimer?.cancel()
        bodyTimer?.cancel()
        self.context = nil
    }

    // MARK: Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard pipelined.isEmpty, !isAwaitingResponse else {
            pipelined.append(part)
            return
        }
        receive(part, context: context)
    }

    private func receive(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            timeouts?.requestHeadReceived()
            startRequest(head, context: context)
        case .body(let buffer):
            receiveRequestBody(buffer, context: context)
        case .end(let trailers):
            receiveRequestEnd(trailers, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .exchanging(let exchange) = phase { exchange.connection?.flush() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        responseTimer?.cancel()
        bodyTimer?.cancel()
        if case .exchanging(let exchange) = phase {
            exchange.connection?.close()
            exchange.connection = nil
            log(exchange, status: exchange.responseStatus ?? 499)
        }
        phase = .closed
        pipelined.removeAll()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent || event as? ChannelEvent == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Shutting down, or the client will send no more: finish the request in hand (and any pipelined behind
        // it), then close.
        closeWhenIdle = true
        if case .idle = phase, pipelined.isEmpty {
            phase = .closed
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .exchanging(let exchange) = phase {
            exchange.connection?.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let parserError = error as? HTTPParserError else {
            // The phase stays as it is: `channelInactive` ends an exchange in progress (closes its upstream
            // connection and logs it).
            context.close(promise: nil)
            return
        }
        // The decoder cannot resync after a parse error: no request after this point can be read.
        if !pipelined.isEmpty || isAwaitingResponse {
            // The bad bytes follow a request still being answered: finish it (and the complete ones queued before
            // them), then close. A queued request without its end never starts (`takePipelinedRequests`).
            inputBroken = true
            closeWhenIdle = true
            return
        }
        let problem: ProblemResponse
        switch parserError {
        case .headerOverflow:
            problem = ProblemResponse(
                .requestHeaderFieldsTooLarge,
                "The request head is larger than \(state.configuration.limits.maxHeaderBytes) bytes.", closeConnection: true)
        default:
            let what = isIdle ? "request" : "request body"
            problem = ProblemResponse(.badRequest, "The \(what) is not valid HTTP/1.1 (\(parserError)).", closeConnection: true)
        }
        bodyTimer?.disarm()
        switch phase {
        case .idle:
            phase = .closed
            // No head, so no tenant or method: counted as tenant and route `none`, method `OTHER`.
            state.metrics.unknownHost.countUnparsed(status: problem.status.code)
            send(problem, version: .http1_1, requestID: requestIDs.next(), isHead: false, keepAlive: false, context: context, thenClose: true)
        case .exchanging(let exchange):
            // A malformed chunk after the head went upstream (§6.6): the upstream connection is closed, never reused,
            // so the partial request can never be completed by bytes of another; the client gets a 400 if it can.
            abandonUpstream(exchange)
            phase = .closed
            guard exchange.responseStatus == nil else {
                log(exchange, status: exchange.responseStatus ?? 400)
                context.close(promise: nil)
                return
            }
            exchange.responseStatus = problem.status.code
            log(exchange, status: problem.status.code)
            send(
                problem, version: exchange.clientHead.version, requestID: exchange.requestID, isHead: exchange.clientHead.method == .HEAD,
                keepAlive: false, context: context, thenClose: true)
        case .endpoint(let call):
            phase = .closed
            send(problem, version: call.head.version, requestID: call.requestID, isHead: false, keepAlive: false, context: context, thenClose: true)
        case .answered, .authenticating, .tunnelling, .closed:
            phase = .closed
            context.close(promise: nil)
        }
    }

    private var isIdle: Bool {
        if case .idle = phase { return true }
        return false
    }

    func read(context: ChannelHandlerContext) {
        if !pipelined.isEmpty {
            readPending = true
            return
        }
        if case .exchanging(let exchange) = phase, !(exchange.connection?.isWritable ?? false) {
            readPending = true
            return
        }
        context.read()
    }

    private func resumeClientReads() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// Whether the current request has been read to its end while its response is still to come: a part read now
    /// belongs to a pipelined request and waits its turn.
    private var isAwaitingResponse: Bool {
        switch phase {
        case .exchanging(let exchange): return exchange.requestComplete
        case .endpoint(let call): return call.isDispatched
        case .authenticating: return true
        case .idle, .answered, .tunnelling, .closed: return false
        }
    }

    /// Takes the pipelined requests in order, until one of them is waiting for its response.
    private func takePipelinedRequests() {
        guard let context else { return }
        while !pipelined.isEmpty, !isAwaitingResponse {
            switch phase {
            case .closed, .tunnelling:
                pipelined.removeAll()
            case .idle where inputBroken && !pipelined.holdsCompleteRequest():
                refuseBrokenRequest(context: context)
            default:
                receive(pipelined.removeFirst(), context: context)
            }
        }
        // What a read would have flushed at its end.
        if case .exchanging(let exchange) = phase { exchange.connection?.flush() }
        if pipelined.isEmpty { resumeClientReads() }
    }

    /// A request cut short by bytes the decoder refused: 400 and close, before anything of it goes upstream (§6.6).
    private func refuseBrokenRequest(context: ChannelHandlerContext) {
        pipelined.removeAll()
        phase = .closed
        send(
            ProblemResponse(.badRequest, "The request is not valid HTTP/1.1.", closeConnection: true), version: .http1_1,
            requestID: requestIDs.next(), isHead: false, keepAlive: false, context: context, thenClose: true)
    }

    /// Whether the connection stays open after answering `head`: not when it is to close and nothing pipelined waits,
    /// and not after a request that asked for an upgrade (`endsParsing`), which stops the HTTP/1 decoder.
    private func keepsAlive(_ head: HTTPRequestHead, endsParsing: Bool) -> Bool {
        head.isKeepAlive && !endsParsing && !(closeWhenIdle && pipelined.isEmpty)
    }

    /// Writes the end of the response, and closes the connection once it is written (not before: closing fails
    /// whatever the socket has not taken yet) when it is not kept alive.
    private func endResponse(_ trailers: HTTPHeaders?, close: Bool, context: ChannelHandlerContext) {
        guard close else {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: Request

    /// - Parameter resumed: the store's answer about the request's session cookie, when this is the second pass
    ///   after asking it.
    private func startRequest(_ head: HTTPRequestHead, context: ChannelHandlerContext, resumed: SessionResumption? = nil) {
        guard case .idle = phase else {
            context.close(promise: nil)
            return
        }
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
            // The phase changes before the answer is written: writing `.end` lets the pipelining handler deliver
            // the next request at once.
            let keepAlive = !problem.closeConnection && keepsAlive(head, endsParsing: endsParsing)
            phase = .answered(closeAfterRequest: !keepAlive)
            send(problem, version: head.version, requestID: requestID, isHead: isHead, keepAlive: keepAlive, context: context)
            logEntry(
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
        if case .lookUpSession(let tenant, let cookies) = decision {
            askStoreForSession(
                cookies, head: head, tenant: tenant, first: SessionResumption(answer: .unavailable, start: start, requestID: requestID, trace: trace),
                context: context)
            return
        }
        let tenant: Tenant
        let route: Route
        let target: RequestTarget
        let framing: RequestFraming
        let identityHeaders: [(String, String)]
        let isWebSocket: Bool
        switch decision {
        case .reject(let rejection):
            if let authentication = rejection.authentication { rejection.tenant?.metrics.count(authentication.metricsResult) }
            reject(rejection.problem, tenant: rejection.tenant, route: rejection.route, path: rejection.path)
            return
        case .lookUpSession:
            // Handled above, before anything else.
            return
        case .endpoint(let endpointTenant, let endpointTarget, let endpointFraming):
            phase = .endpoint(
                EndpointCall(
                    head: head, facts: facts, tenant: endpointTenant, path: endpointTarget.path, query: endpointTarget.query.map(String.init),
                    requestID: requestID, trace: trace, start: start, body: context.channel.allocator.buffer(capacity: 0), endsParsing: endsParsing))
            if endpointFraming.hasBody { bodyTimer?.arm(in: state.configuration.limits.bodyTimeout.timeAmount) }
            if facts.expectsContinue {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            return
        case .proxy(let admitted):
            admitted.tenant.metrics.count(admitted.authentication.metricsResult)
            (tenant, route, target, framing, identityHeaders, isWebSocket) = (
                admitted.tenant, admitted.route, admitted.target, admitted.framing, admitted.identityHeaders, admitted.isWebSocket
            )
        }

        var uri = route.upstreamPath(for: target.path)
        if let query = target.query { uri += "?" + query }
        // Over HTTP/2 the stream delimits the body: without a Content-Length the framing waits for the first part.
        let awaitsFraming = isHTTP2 && framing == .none
        let plan = UpstreamRequestPlan(
            method: head.method, uri: uri, framing: framing, isWebSocketUpgrade: isWebSocket, identityHeaders: identityHeaders)
        let upstreamHead = plan.makeHead(
            from: head.headers, facts: facts,
            policy: .init(reservedHeaderNames: tenant.reservedHeaderNames, forwardAuthorization: route.configuration.forwardAuthorization),
            connection: connection, requestID: requestID, trace: trace)

        let exchange = ProxyExchange(
            clientHead: head, upstreamHead: upstreamHead, framing: framing, awaitsFraming: awaitsFraming, tenant: tenant, route: route,
            path: target.path, requestID: requestID, trace: trace, start: start, isUpgrade: isWebSocket, endsParsing: endsParsing)
        phase = .exchanging(exchange)
        if framing.hasBody || awaitsFraming { bodyTimer?.arm(in: state.configuration.limits.bodyTimeout.timeAmount) }
        if facts.expect != nil {
            // The gateway accepted the request: let the client send its body.
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
    /// then the request's body waits in the pipelining queue, and the connection reads no further.
    private func askStoreForSession(_ cookies: [String], head: HTTPRequestHead, tenant: Tenant, first: SessionResumption, context: ChannelHandlerContext) {
        let requestID = first.requestID
        phase = .authenticating
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
            guard case .authenticating = phase, let context = self.context else { return }
            phase = .idle
            if inputBroken && !pipelined.holdsCompleteRequest(startingWithHead: false) {
                refuseBrokenRequest(context: context)
                return
            }
            var resumption = first
            resumption.answer = answer
            startRequest(head, context: context, resumed: resumption)
            takePipelinedRequests()
        }
    }

    private func receiveRequestBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        if case .endpoint(let call) = phase {
            var buffer = buffer
            let limit = state.configuration.limits.authBodyBytes
            guard call.body.readableBytes + buffer.readableBytes <= limit else {
                phase = .answered(closeAfterRequest: true)
                send(
                    ProblemResponse(.payloadTooLarge, "The request body is larger than the limit of \(limit) bytes.", closeConnection: true),
                    version: call.head.version, requestID: call.requestID, isHead: false, keepAlive: false, context: context)
                logEntry(
                    metrics: call.tenant.metrics.endpoints, tenant: call.tenant.id, route: call.path, method: call.head.method.rawValue, path: call.path, status: 413, upstream: nil,
                    start: call.start, requestID: call.requestID, trace: call.trace, bytes: 0)
                return
            }
            call.body.writeBuffer(&buffer)
            bodyTimer?.arm(in: state.configuration.limits.bodyTimeout.timeAmount)
            return
        }
        guard case .exchanging(let exchange) = phase else { return }
        bodyTimer?.arm(in: state.configuration.limits.bodyTimeout.timeAmount)
        exchange.requestBodyBytes += buffer.readableBytes
        if case .contentLength(let declared) = exchange.framing, exchange.requestBodyBytes > declared {
            // The decoder never delivers more than Content-Length; if it ever did, the excess must not reach the
            // upstream as the start of another request.
            abandonUpstream(exchange)
            phase = .closed
            context.close(promise: nil)
            return
        }
        let limit = state.configuration.limits.maxBodyBytes
        if exchange.requestBodyBytes > limit {
            // A chunked body is counted as it streams: stop it as soon as it passes the limit.
            abandonUpstream(exchange)
            if exchange.responseStatus == nil {
                finishWithProblem(
                    ProblemResponse(.payloadTooLarge, "The request body is larger than the limit of \(limit) bytes.", closeConnection: true),
                    exchange: exchange, context: context)
            } else {
                context.close(promise: nil)
            }
            return
        }
        exchange.forward(.body(.byteBuffer(buffer)))
    }

    private func receiveRequestEnd(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        bodyTimer?.disarm()
        switch phase {
        case .endpoint(let call):
            dispatch(call, context: context)
        case .answered(let closeAfterRequest):
            if closeAfterRequest || (closeWhenIdle && pipelined.isEmpty) {
                context.close(promise: nil)
            } else {
                becomeIdle(context: context)
            }
        case .exchanging(let exchange):
            exchange.requestComplete = true
            // Request trailers are dropped (§6.6): they could carry identity headers past the filter.
            exchange.forward(.end(nil))
            if exchange.responseComplete {
                let keepAlive = keepsAlive(exchange.clientHead, endsParsing: exchange.endsParsing)
                finishExchange(exchange, keepAlive: keepAlive, context: context)
                if !keepAlive { context.close(promise: nil) }
            } else if exchange.connection != nil, exchange.responseStatus == nil {
                startResponseTimeout()
            }
        default:
            break
        }
    }

    // MARK: Gateway endpoints

    /// Runs an endpoint off the event loop (it may hash a password or touch the store) and writes its answer
    /// back on this loop, unless the client went away meanwhile.
    private func dispatch(_ call: EndpointCall, context: ChannelHandlerContext) {
        call.isDispatched = true
        let facts = call.facts
        let site: EndpointRequest.Site
        if facts.origin == nil, facts.referer == nil {
            site = .unknown
        } else {
            site = RequestAdmission.isFromTenantSite(facts, tenant: call.tenant, in: state.tenants) ? .tenant : .foreign
        }
        let request = EndpointRequest(
            method: call.head.method, path: call.path, query: call.query, headers: call.head.headers, body: call.body, cookies: facts.cookies,
            site: site, isSecure: connection.scheme == "https", logger: state.logger(requestID: call.requestID, tenant: call.tenant.id),
            audit: .request(
                ip: connection.clientAddress(call.head.headers), userAgent: call.head.headers.first(name: "user-agent"), requestID: call.requestID,
                traceID: String(call.trace.traceID)))
        let endpoints = state.endpoints
        let tenant = call.tenant
        let promise = context.eventLoop.makePromise(of: EndpointResponse.self)
        Task(executorPreference: state.endpointExecutor) { promise.succeed(await endpoints.handle(request, tenant: tenant)) }
        promise.futureResult.assumeIsolated().whenSuccess { [self] response in
            guard case .endpoint(let current) = phase, current === call, let context = self.context else { return }
            respond(to: call, with: response, context: context)
        }
    }

    private func respond(to call: EndpointCall, with response: EndpointResponse, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        if !headers.contains(name: "cache-control") { headers.add(name: "Cache-Control", value: "no-store") }
        headers.add(name: "X-Request-Id", value: call.requestID)
        let body = context.channel.allocator.buffer(string: response.body)
        if response.status != .noContent { headers.add(name: "Content-Length", value: String(body.readableBytes)) }
        let keepAlive = keepsAlive(call.head, endsParsing: call.endsParsing)
        if let connection = connectionHeader(version: call.head.version, keepAlive: keepAlive) {
            headers.add(name: "Connection", value: connection)
        }
        logEntry(
            metrics: call.tenant.metrics.endpoints, tenant: call.tenant.id, route: call.path, method: call.head.method.rawValue, path: call.path, status: response.status.code,
            upstream: nil, start: call.start, requestID: call.requestID, trace: call.trace, bytes: body.readableBytes)
        // The phase changes before `.end` is written, which may deliver the next pipelined request at once.
        if keepAlive { becomeIdle(context: context) } else { phase = .closed }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: call.head.version, status: response.status, headers: headers))), promise: nil)
        if call.head.method != .HEAD && body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        endResponse(nil, close: !keepAlive, context: context)
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
                    guard case .exchanging(let current) = phase, current === exchange else {
                        // The client went away while we connected; the connection is still good for others.
                        pool.release(upstream)
                        return
                    }
                    attach(upstream, to: exchange)
                case .failure(let error):
                    guard case .exchanging(let current) = phase, current === exchange, let context else { return }
                    let detail = "The upstream \(exchange.route.upstream.origin) cannot be reached (\(UpstreamFailure.describe(error)))."
                    finishWithProblem(ProblemResponse(.badGateway, detail), exchange: exchange, context: context)
                }
            }
        }
    }

    private func attach(_ upstream: UpstreamConnection, to exchange: ProxyExchange) {
        upstream.receiver = self
        exchange.connection = upstream
        exchange.upstreamStart = .now()
        exchange.sendBuffered()
        upstream.flush()
        if exchange.requestComplete && exchange.responseStatus == nil { startResponseTimeout() }
        if upstream.isWritable { resumeClientReads() }
    }

    /// Starts the wait for the upstream's response head, once per attempt (it is called when the request is
    /// complete and when the connection is attached, whichever comes last).
    private func startResponseTimeout() {
        guard responseTimer?.isArmed == false else { return }
        responseTimer?.arm(in: state.configuration.limits.upstreamTimeout.timeAmount)
    }

    private func responseTimedOut() {
        guard case .exchanging(let exchange) = phase, exchange.responseStatus == nil, let context else { return }
        abandonUpstream(exchange)
        let seconds = ConfigurationValues.format(state.configuration.limits.upstreamTimeout)
        finishWithProblem(
            ProblemResponse(.gatewayTimeout, "The upstream sent no response head within \(seconds)."), exchange: exchange, context: context)
    }

    /// The request body sent nothing for `limits.body_timeout` (§6.9): the exchange ends, its upstream connection is
    /// closed (a slow body must not hold it), and the client gets 408 unless a response has started.
    private func bodyTimedOut() {
        guard let context else { return }
        if readPending || !pipelined.isEmpty {
            // The gateway itself is holding the body back (the upstream is not taking it): not the client's stall.
            bodyTimer?.arm(in: state.configuration.limits.bodyTimeout.timeAmount)
            return
        }
        let seconds = ConfigurationValues.format(state.configuration.limits.bodyTimeout)
        let problem = ProblemResponse(.requestTimeout, "The request body sent nothing for \(seconds).", closeConnection: true)
        switch phase {
        case .exchanging(let exchange) where !exchange.requestComplete:
            abandonUpstream(exchange)
            if exchange.responseStatus == nil {
                exchange.responseStatus = problem.status.code
                log(exchange, status: problem.status.code)
                phase = .closed
                send(
                    problem, version: exchange.clientHead.version, requestID: exchange.requestID, isHead: exchange.clientHead.method == .HEAD,
                    keepAlive: false, context: context, thenClose: true)
            } else {
                log(exchange, status: exchange.responseStatus ?? 408)
                phase = .closed
                context.close(promise: nil)
            }
        case .endpoint(let call) where !call.isDispatched:
            logEntry(
                metrics: call.tenant.metrics.endpoints, tenant: call.tenant.id, route: call.path, method: call.head.method.rawValue, path: call.path, status: problem.status.code,
                upstream: nil, start: call.start, requestID: call.requestID, trace: call.trace, bytes: 0)
            phase = .closed
            send(problem, version: call.head.version, requestID: call.requestID, isHead: false, keepAlive: false, context: context, thenClose: true)
        default:
            break
        }
    }

    /// Closes the upstream connection of an exchange that cannot finish cleanly.
    private func abandonUpstream(_ exchange: ProxyExchange) {
        responseTimer?.disarm()
        exchange.connection?.close()
        exchange.connection = nil
    }

    func upstreamReceived(head: HTTPResponseHead) {
        guard case .exchanging(let exchange) = phase, let context else { return }
        if head.status.code >= 100 && head.status.code < 200 && head.status != .switchingProtocols {
            return  // the gateway answered Expect: 100-continue itself
        }
        responseTimer?.disarm()
        exchange.responseStatus = head.status.code
        exchange.upstreamKeepAlive = head.isKeepAlive
        if head.status == .switchingProtocols {
            guard exchange.isUpgrade, ForwardingHeaders.answersWebSocketUpgrade(head.headers) else {
                abandonUpstream(exchange)
                let detail =
                    exchange.isUpgrade
                    ? "The upstream's 101 does not answer the WebSocket upgrade the client asked for."
                    : "The upstream switched protocols without being asked to."
                finishWithProblem(ProblemResponse(.badGateway, detail, closeConnection: true), exchange: exchange, context: context)
                return
            }
            startTunnel(exchange, upstreamHead: head, context: context)
            return
        }
        var headers = ForwardingHeaders.clientResponseHeaders(from: head.headers, requestID: exchange.requestID, keepUpgrade: false)
        if let connection = connectionHeader(version: exchange.clientHead.version, keepAlive: keepsAlive(exchange.clientHead, endsParsing: exchange.endsParsing)) {
            headers.add(name: "Connection", value: connection)
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: exchange.clientHead.version, status: head.status, headers: headers))), promise: nil)
    }

    func upstreamReceived(body: ByteBuffer) {
        guard case .exchanging(let exchange) = phase, let context else { return }
        exchange.bytesSent += body.readableBytes
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        if !context.channel.isWritable { exchange.connection?.pauseReading() }
    }

    func upstreamReceivedEnd(trailers: HTTPHeaders?) {
        guard case .exchanging(let exchange) = phase, let context else { return }
        exchange.responseComplete = true
        exchange.upstreamEnd = .now()
        if let upstream = exchange.connection {
            exchange.connection = nil
            if exchange.requestComplete && exchange.upstreamKeepAlive && !exchange.endsParsing {
                pool.release(upstream)
            } else {
                upstream.close()
            }
        }
        if exchange.requestComplete {
            // Finish first: writing `.end` may deliver the next pipelined request straight away.
            let keepAlive = keepsAlive(exchange.clientHead, endsParsing: exchange.endsParsing)
            finishExchange(exchange, keepAlive: keepAlive, context: context)
            endResponse(trailers, close: !keepAlive, context: context)
        } else {
            // The upstream answered before the request body was done: the rest of the body has nowhere to go.
            log(exchange, status: exchange.responseStatus ?? 0)
            phase = .answered(closeAfterRequest: true)
            endResponse(trailers, close: true, context: context)
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamConnectionLost(error: Error?) {
        guard case .exchanging(let exchange) = phase, let context else { return }
        let upstream = exchange.connection
        exchange.connection = nil
        responseTimer?.disarm()
        if exchange.responseStatus == nil {
            // A kept-alive connection the upstream closed just as we reused it: safe to try once more on a fresh
            // connection, if the request is idempotent and none of its body has left yet.
            if upstream?.isReused == true, !exchange.retried, exchange.isIdempotent, !exchange.sentBody {
                exchange.retried = true
                exchange.resetForRetry()
                connectUpstream(exchange, forceNew: true)
                return
            }
            let reason = error.map { " (\(UpstreamFailure.describe($0)))" } ?? ""
            finishWithProblem(
                ProblemResponse(
                    .badGateway, "The upstream \(exchange.route.upstream.origin) closed the connection before responding\(reason).",
                    closeConnection: !exchange.requestComplete),
                exchange: exchange, context: context)
        } else {
            // Mid-response: the client must see the connection end, not a truncated body presented as complete.
            log(exchange, status: exchange.responseStatus ?? 502)
            phase = .closed
            context.close(promise: nil)
        }
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }

    // MARK: Responses

    /// Ends an exchange with a gateway-made answer (502, 504, 413).
    private func finishWithProblem(_ problem: ProblemResponse, exchange: ProxyExchange, context: ChannelHandlerContext) {
        var problem = problem
        if !exchange.requestComplete { problem.closeConnection = true }
        exchange.responseStatus = problem.status.code
        log(exchange, status: problem.status.code)
        let close = problem.closeConnection || !keepsAlive(exchange.clientHead, endsParsing: exchange.endsParsing)
        if !exchange.requestComplete {
            phase = .answered(closeAfterRequest: true)
        } else if close {
            phase = .closed
        } else {
            becomeIdle(context: context)
        }
        send(
            problem, version: exchange.clientHead.version, requestID: exchange.requestID, isHead: exchange.clientHead.method == .HEAD,
            keepAlive: !close, context: context)
        if exchange.requestComplete && close { context.close(promise: nil) }
    }

    /// Moves past a completed exchange; the caller writes the response end and closes when keep-alive is off.
    private func finishExchange(_ exchange: ProxyExchange, keepAlive: Bool, context: ChannelHandlerContext) {
        log(exchange, status: exchange.responseStatus ?? 0)
        if keepAlive {
            becomeIdle(context: context)
        } else {
            phase = .closed
        }
    }

    /// Readies the connection for its next request. Callers may still be writing the end of the response, so a
    /// pipelined request waiting in the queue is taken on the next turn of the loop, after that.
    private func becomeIdle(context: ChannelHandlerContext) {
        phase = .idle
        timeouts?.responseCompleted()
        if pipelined.isEmpty {
            resumeClientReads()
        } else {
            context.eventLoop.assumeIsolated().execute { [self] in takePipelinedRequests() }
        }
    }

    /// The `Connection` header a response needs: `close` when the connection ends after it, `keep-alive` when an
    /// HTTP/1.0 client's connection stays open (1.0 closes by default), none otherwise.
    private func connectionHeader(version: HTTPVersion, keepAlive: Bool) -> String? {
        guard !isHTTP2 else { return nil }
        guard keepAlive else { return "close" }
        return version == .http1_0 ? "keep-alive" : nil
    }

    /// Writes a gateway-made answer; with `thenClose`, closes the connection once it is written.
    private func send(
        _ problem: ProblemResponse, version: HTTPVersion, requestID: String, isHead: Bool, keepAlive: Bool, context: ChannelHandlerContext,
        thenClose: Bool = false
    ) {
        let body = problem.body
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/problem+json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Request-Id", value: requestID)
        for (name, value) in problem.headers { headers.add(name: name, value: value) }
        if let connection = connectionHeader(version: version, keepAlive: keepAlive) { headers.add(name: "Connection", value: connection) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: problem.status, headers: headers))), promise: nil)
        if !isHead {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        endResponse(nil, close: thenClose, context: context)
    }

    // MARK: WebSocket tunnel

    private func startTunnel(_ exchange: ProxyExchange, upstreamHead: HTTPResponseHead, context: ChannelHandlerContext) {
        guard let upstream = exchange.connection else { return }
        exchange.connection = nil
        phase = .tunnelling
        log(exchange, status: 101)
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

    // MARK: Access log

    private func log(_ exchange: ProxyExchange, status: UInt) {
        guard !exchange.logged else { return }
        exchange.logged = true
        var upstreamTime: Int64?
        if let begin = exchange.upstreamStart {
            upstreamTime = ((exchange.upstreamEnd ?? .now()) - begin).nanoseconds
        }
        logEntry(
            metrics: exchange.route.metrics, tenant: exchange.tenant.id, route: exchange.route.path, method: exchange.clientHead.method.rawValue, path: exchange.path,
            status: status, upstream: upstreamTime, start: exchange.start, requestID: exchange.requestID, trace: exchange.trace,
            bytes: exchange.bytesSent)
    }

    /// Counts the answered request in its route's series and writes its access-log line.
    private func logEntry(
        metrics: RouteMetrics, tenant: String?, route: String?, method: String, path: String, status: UInt, upstream: Int64?, start: NIODeadline,
        requestID: String, trace: TraceContext, bytes: Int
    ) {
        let total = (NIODeadline.now() - start).nanoseconds
        metrics.record(method: MethodLabel(method), status: status, totalNanoseconds: total, upstreamNanoseconds: upstream)
        guard let accessLog = state.accessLog else { return }
        accessLog.log(
            AccessLogger.Entry(
                tenant: tenant, route: route, method: method, path: path, status: status, upstreamNanoseconds: upstream,
                totalNanoseconds: total, requestID: requestID, traceparent: trace.traceparent, bytesSent: bytes))
    }

}
