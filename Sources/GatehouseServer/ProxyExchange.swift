import GatehouseProxy
import NIOCore
import NIOHTTP1

/// One request on its way through the gateway: what admission decided about it, its state machine, the upstream
/// connection it holds, and what its access-log line will say.
final class ProxyExchange {
    let clientHead: HTTPRequestHead
    /// The client asked for an upgrade (WebSocket or not): the client connection closes after a non-101 answer.
    let endsParsing: Bool
    let tenant: Tenant
    let route: Route
    let path: String
    let requestID: String
    /// Forwarded upstream as `traceparent`; its trace id is in the access-log line.
    let trace: TraceContext
    let start: NIODeadline
    var machine: ProxyExchangeStateMachine
    /// The connection the machine says is attached; nil while connecting and once detached.
    var upstream: UpstreamConnection?
    /// What the response head told the client about keep-alive.
    var keepsClientAlive = true
    var logged = false
    var upstreamStart: NIODeadline?
    var upstreamEnd: NIODeadline?
    var bytesSent = 0

    init(
        clientHead: HTTPRequestHead, machine: ProxyExchangeStateMachine, tenant: Tenant, route: Route, path: String, requestID: String,
        trace: TraceContext, start: NIODeadline, endsParsing: Bool
    ) {
        self.clientHead = clientHead
        self.machine = machine
        self.endsParsing = endsParsing
        self.tenant = tenant
        self.route = route
        self.path = path
        self.requestID = requestID
        self.trace = trace
        self.start = start
    }
}
