import GatehouseProxy
import NIOCore
import NIOHTTP1

/// A request to a gateway endpoint, from its head to the answer.
final class EndpointCall {
    let head: HTTPRequestHead
    /// The header pass `startRequest` already made.
    let facts: RequestHeaderFacts
    let tenant: Tenant
    let path: String
    let query: String?
    let requestID: String
    let trace: TraceContext
    let start: NIODeadline
    var body: ByteBuffer
    /// The request asked for an upgrade: the connection closes after the answer.
    let endsParsing: Bool

    init(
        head: HTTPRequestHead, facts: RequestHeaderFacts, tenant: Tenant, path: String, query: String?, requestID: String, trace: TraceContext,
        start: NIODeadline, body: ByteBuffer, endsParsing: Bool
    ) {
        self.trace = trace
        self.endsParsing = endsParsing
        self.head = head
        self.facts = facts
        self.tenant = tenant
        self.path = path
        self.query = query
        self.requestID = requestID
        self.start = start
        self.body = body
    }
}
