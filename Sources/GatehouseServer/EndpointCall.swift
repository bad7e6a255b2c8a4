import GatehouseHTTP
import GatehouseProxy
import Logging
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

extension EndpointCall {
    /// What the endpoint gets: the request as read, whether its `Origin` (or `Referer`) is one of the tenant's
    /// hosts (§7), and who its audit events name (§10).
    func request(tenants: TenantDirectory, connection: ClientConnectionInfo, logger: Logger) -> EndpointRequest {
        let site: EndpointRequest.Site
        if facts.origin == nil, facts.referer == nil {
            site = .unknown
        } else {
            site = RequestAdmission.isFromTenantSite(facts, tenant: tenant, in: tenants) ? .tenant : .foreign
        }
        return EndpointRequest(
            method: head.method, path: path, query: query, headers: head.headers, body: body, cookies: facts.cookies, site: site,
            isSecure: connection.scheme == "https", logger: logger,
            audit: .request(
                ip: connection.clientAddress(head.headers), userAgent: head.headers.first(name: "user-agent"), requestID: requestID,
                traceID: String(trace.traceID)))
    }

    /// The endpoint's answer as the client gets it: `Cache-Control: no-store` unless the endpoint set its own, and the
    /// request id; ``ResponseWriter`` adds the framing and `Connection`.
    func answer(_ response: EndpointResponse, allocator: ByteBufferAllocator) -> CompleteResponse {
        var headers = HTTPHeaders()
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        if !headers.contains(name: "cache-control") { headers.add(name: "Cache-Control", value: "no-store") }
        headers.add(name: "X-Request-Id", value: requestID)
        return CompleteResponse(status: response.status, headers: headers, body: allocator.buffer(string: response.body))
    }
}
