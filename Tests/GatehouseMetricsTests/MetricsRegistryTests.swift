import CoreMetrics
import Foundation
import GatehouseMetrics
import GatehouseTestSupport
import Testing

@Suite struct MetricsRegistryTests {
    @Test func aHistogramCountsEachObservationInItsBucketAndRendersThemCumulatively() throws {
        let registry = MetricsRegistry()
        registry.describe("test_seconds", help: "A test \\ histogram.", bounds: [0.001, 0.01, 0.1])
        let timer = Timer(label: "test_seconds", dimensions: [("route", "/a\"b\\c\nd")], factory: registry)
        for nanoseconds: Int64 in [500_000, 1_000_000, 5_000_000, 50_000_000, 2_000_000_000, -5] { timer.recordNanoseconds(nanoseconds) }
        let text = String(decoding: registry.render(), as: UTF8.self)
        #expect(ExpositionFormat.problems(text).isEmpty, "\(ExpositionFormat.problems(text))")
        let scrape = MetricsScrape(text)
        let labels = #"route="/a\"b\\c\nd""#
        #expect(scrape.samples["test_seconds_bucket{\(labels),le=\"0.001\"}"] == 3, "0, 0.5 ms and exactly 1 ms")
        #expect(scrape.samples["test_seconds_bucket{\(labels),le=\"0.01\"}"] == 4)
        #expect(scrape.samples["test_seconds_bucket{\(labels),le=\"0.1\"}"] == 5)
        #expect(scrape.samples["test_seconds_bucket{\(labels),le=\"+Inf\"}"] == 6)
        #expect(scrape.samples["test_seconds_count{\(labels)}"] == 6)
        #expect(abs((scrape.samples["test_seconds_sum{\(labels)}"] ?? 0) - 2.0565) < 1e-9)
        #expect(text.contains("# HELP test_seconds A test \\\\ histogram.\n# TYPE test_seconds histogram\n"))
        #expect(try PrometheusClientParser.parse(text)["test_seconds"] == "histogram")
    }

    @Test func aSeriesIsMadeOnceWhateverAsksForItAgain() {
        let registry = MetricsRegistry()
        let metrics = GatewayMetrics(registry: registry, version: "1")
        let first = metrics.route(tenant: "acme", path: "/api")
        let again = metrics.route(tenant: "acme", path: "/api")
        first.record(method: .get, status: 200, totalNanoseconds: 1000, upstreamNanoseconds: 500)
        again.record(method: .get, status: 200, totalNanoseconds: 1000, upstreamNanoseconds: nil)
        let scrape = MetricsScrape(String(decoding: registry.render(), as: UTF8.self))
        #expect(scrape.samples[#"gatehouse_requests_total{tenant="acme",route="/api",method="GET",code="200"}"#] == 2)
        #expect(scrape.samples[#"gatehouse_request_duration_seconds_count{tenant="acme",route="/api"}"#] == 2)
        #expect(scrape.samples[#"gatehouse_upstream_duration_seconds_count{tenant="acme",route="/api"}"#] == 1)
        #expect(first.requestCounter(method: .get, status: 200) === first.requestCounter(method: .get, status: 200), "found, not made again")
    }

    @Test func statusCodesOutsideTheRangeShareOneSeriesAndMethodsOutsideTheListAreOther() {
        let registry = MetricsRegistry()
        let route = GatewayMetrics(registry: registry, version: "1").route(tenant: "t", path: "/")
        for status: UInt in [0, 99, 600, 999, 1_000_000] { route.record(method: MethodLabel("BREW"), status: status, totalNanoseconds: 1, upstreamNanoseconds: nil) }
        for method in ["GET", "get", "PROPFIND", "M-SEARCH", ""] { route.record(method: MethodLabel(method), status: 599, totalNanoseconds: 1, upstreamNanoseconds: nil) }
        let scrape = MetricsScrape(String(decoding: registry.render(), as: UTF8.self))
        let requests = scrape.series(prefix: "gatehouse_requests_total")
        #expect(
            requests == [
                #"gatehouse_requests_total{tenant="t",route="/",method="OTHER",code="other"}"#,
                #"gatehouse_requests_total{tenant="t",route="/",method="OTHER",code="599"}"#,
                #"gatehouse_requests_total{tenant="t",route="/",method="GET",code="599"}"#,
            ])
        #expect(scrape.value(#"gatehouse_requests_total{tenant="t",route="/",method="OTHER",code="other"}"#) == 5)
        #expect(scrape.value(#"gatehouse_requests_total{tenant="t",route="/",method="OTHER",code="599"}"#) == 4)
    }

    @Test func recordingFromManyThreadsLosesNothing() async {
        let registry = MetricsRegistry()
        let route = GatewayMetrics(registry: registry, version: "1").route(tenant: "t", path: "/")
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in 0..<10_000 {
                        route.record(method: .get, status: UInt(200 + (index + worker) % 3), totalNanoseconds: Int64(index), upstreamNanoseconds: 1)
                    }
                }
            }
        }
        let scrape = MetricsScrape(String(decoding: registry.render(), as: UTF8.self))
        let total = scrape.series(prefix: "gatehouse_requests_total").map(scrape.value).reduce(0, +)
        #expect(total == 80_000)
        #expect(scrape.value(#"gatehouse_request_duration_seconds_count{tenant="t",route="/"}"#) == 80_000)
        #expect(scrape.value(#"gatehouse_upstream_duration_seconds_sum{tenant="t",route="/"}"#) == 80_000 / 1e9)
    }

    @Test func theValidatorCatchesBrokenExpositions() {
        let broken = [
            "a 1", "9a 1\n", "a{b=\"c} 1\n", "a{b=\"c\"} x\n", "a{b=\"\\q\"} 1\n", "a{b=\"1\",b=\"2\"} 1\n",
            "# TYPE a counter\n# TYPE a counter\na 1\n", "a 1\na 1\n", "# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 0\n",
        ]
        for text in broken { #expect(!ExpositionFormat.problems(text).isEmpty, "\(text.debugDescription)") }
        #expect(ExpositionFormat.problems("# HELP a x\n# TYPE a counter\na{b=\"\\\"\\\\\\n\"} 1\n").isEmpty)
    }
}
