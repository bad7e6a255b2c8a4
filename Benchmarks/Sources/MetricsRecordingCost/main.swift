import Dispatch
import GatehouseMetrics
import GatehouseProxy

/// What the proxy path records per request (the route's counter and two histograms, the auth result, a token-cache
/// hit) with metrics on and off, and what a new trace context costs; nanoseconds per request, best of five runs of
/// a million, on one thread and on two at once (the same series, as two event loops share them).
func measure(_ name: String, threads: Int = 1, _ body: @escaping @Sendable (Int) -> Void) {
    let iterations = 1_000_000
    var best = Double.infinity
    for _ in 0..<5 {
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for index in 0..<iterations { body(index) }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations)
        best = min(best, elapsed)
    }
    print("\(name)\t\(threads) thread\(threads == 1 ? "" : "s")\t\(String(format: "%.1f", best)) ns/request")
}

func record(_ metrics: GatewayMetrics) -> @Sendable (Int) -> Void {
    let tenant = metrics.tenant("bench")
    let route = tenant.route("/api")
    return { index in
        route.record(method: MethodLabel("GET"), status: 200, totalNanoseconds: Int64(200_000 + index % 1000), upstreamNanoseconds: 150_000)
        tenant.count(AuthResult.valid)
        metrics.tokenCacheHits.increment()
    }
}

measure("metrics on", record(GatewayMetrics(registry: MetricsRegistry(), version: "bench")))
measure("metrics off", record(.disabled()))
measure("metrics on", threads: 2, record(GatewayMetrics(registry: MetricsRegistry(), version: "bench")))
measure("trace context") { _ in
    var generator = TraceContextGenerator()
    _ = generator.next()
}
let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
measure("traceparent check") { _ in _ = TraceContext(clientValue: valid) }
