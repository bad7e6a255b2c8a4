import GatehouseMetrics
import GatehouseProxy
import NIOCore

/// Where an answered request is counted (its route's §10 series) and written down (the access log, when on): one
/// call per request, whatever answered it (the upstream, an endpoint, or the gateway with a problem).
struct RequestLog {
    let accessLog: AccessLogger?

    /// A proxied request, once: later calls for the same exchange do nothing.
    func record(_ exchange: ProxyExchange, status: UInt) {
        guard !exchange.logged else { return }
        exchange.logged = true
        var upstreamTime: Int64?
        if let begin = exchange.upstreamStart {
            upstreamTime = ((exchange.upstreamEnd ?? .now()) - begin).nanoseconds
        }
        record(
            metrics: exchange.route.metrics, tenant: exchange.tenant.id, route: exchange.route.path, method: exchange.clientHead.method.rawValue,
            path: exchange.path, status: status, upstream: upstreamTime, start: exchange.start, requestID: exchange.requestID, trace: exchange.trace,
            bytes: exchange.bytesSent)
    }

    /// A request to one of the gateway's endpoints, counted under the tenant's endpoint series.
    func record(_ call: EndpointCall, status: UInt, bytes: Int) {
        record(
            metrics: call.tenant.metrics.endpoints, tenant: call.tenant.id, route: call.path, method: call.head.method.rawValue, path: call.path,
            status: status, upstream: nil, start: call.start, requestID: call.requestID, trace: call.trace, bytes: bytes)
    }

    func record(
        metrics: RouteMetrics, tenant: String?, route: String?, method: String, path: String, status: UInt, upstream: Int64?, start: NIODeadline,
        requestID: String, trace: TraceContext, bytes: Int
    ) {
        let total = (NIODeadline.now() - start).nanoseconds
        metrics.record(method: MethodLabel(method), status: status, totalNanoseconds: total, upstreamNanoseconds: upstream)
        guard let accessLog else { return }
        accessLog.log(
            AccessLogger.Entry(
                tenant: tenant, route: route, method: method, path: path, status: status, upstreamNanoseconds: upstream,
                totalNanoseconds: total, requestID: requestID, traceparent: trace.traceparent, bytesSent: bytes))
    }
}
