import CoreMetrics
import Prometheus
import Synchronization

/// The swift-metrics backend of a Gatehouse process, and the text it serves at `/metrics`.
///
/// Counters and gauges are swift-prometheus's (one relaxed atomic per update); timers are ``AtomicHistogram``s,
/// because swift-prometheus's histogram locks per observation. Whatever records through swift-metrics with this
/// factory (the gateway's own catalogue, ``GatewayMetrics``, or any library once ``MetricsSystem`` is bootstrapped
/// with it) appears in ``render()``. Creating a series takes a lock; recording into one never does.
public final class MetricsRegistry: MetricsFactory, Sendable {
    /// The media type of ``render()``: the Prometheus text format 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private struct Histograms {
        var help: [String: String] = [:]
        var bounds: [String: [Double]] = [:]
        /// By name, then by rendered labels; in creation order, so a scrape lists them stably.
        var families: [(name: String, series: [(labels: [UInt8], histogram: AtomicHistogram)])] = []
    }

    private let prometheus = PrometheusCollectorRegistry()
    private let descriptions = Mutex<[String: String]>([:])
    private let histograms = Mutex(Histograms())
    /// Run before each render: gauges that are read rather than kept (the store's state, the hashing queue).
    private let collectors = Mutex<[@Sendable () -> Void]>([])
    /// The default buckets of a timer, in seconds: from half a millisecond (a proxied request on loopback) to 30 s
    /// (the upstream timeout).
    public static let defaultDurationBounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    public init() {}

    /// The `# HELP` text of a family, and for a timer its buckets; call before the family's first series is made.
    public func describe(_ name: String, help: String, bounds: [Double]? = nil) {
        descriptions.withLock { $0[name] = help }
        histograms.withLock { state in
            state.help[name] = help
            if let bounds { state.bounds[name] = bounds }
        }
    }

    /// Adds work to run before every render, to bring read-on-demand gauges up to date.
    public func addCollector(_ collector: @escaping @Sendable () -> Void) {
        collectors.withLock { $0.append(collector) }
    }

    /// Every series in the Prometheus text format, followed by the process metrics read from `/proc/self`.
    public func render() -> [UInt8] {
        for collector in collectors.withLock({ $0 }) { collector() }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        prometheus.emit(into: &buffer)
        let (families, help) = histograms.withLock { ($0.families, $0.help) }
        for family in families {
            Exposition.header(into: &buffer, name: family.name, help: help[family.name] ?? family.name, type: "histogram")
            for series in family.series { series.histogram.render(into: &buffer) }
        }
        ProcessMetrics.read().render(into: &buffer)
        return buffer
    }

    private func help(_ name: String) -> String { descriptions.withLock { $0[name] } ?? "" }

    // MARK: MetricsFactory

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        prometheus.makeCounter(name: label, labels: dimensions, help: help(label))
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        prometheus.makeCounter(name: label, labels: dimensions, help: help(label))
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return prometheus.makeGauge(name: label, labels: dimensions, help: help(label)) }
        let buckets = histograms.withLock { $0.bounds[label] } ?? MetricsRegistry.defaultDurationBounds
        return prometheus.makeValueHistogram(name: label, labels: dimensions, buckets: buckets, help: help(label))
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        prometheus.makeGauge(name: label, labels: dimensions, help: help(label))
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        // A library's timer may be named `db.query` or label `http.method`: the exposition format allows neither.
        let label = Self.sanitized(label)
        let dimensions = dimensions.map { (Self.sanitized($0.0), $0.1) }
        return histograms.withLock { state in
            let rendered = Exposition.labels(dimensions)
            if let family = state.families.firstIndex(where: { $0.name == label }) {
                if let existing = state.families[family].series.first(where: { $0.labels == rendered }) { return existing.histogram }
                let histogram = AtomicHistogram(
                    name: label, labels: dimensions, upperBoundsInSeconds: state.bounds[label] ?? MetricsRegistry.defaultDurationBounds)
                state.families[family].series.append((rendered, histogram))
                return histogram
            }
            let histogram = AtomicHistogram(name: label, labels: dimensions, upperBoundsInSeconds: state.bounds[label] ?? MetricsRegistry.defaultDurationBounds)
            state.families.append((label, [(rendered, histogram)]))
            return histogram
        }
    }

    /// A valid metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, other characters replaced by `_`.
    static func sanitized(_ name: String) -> String {
        var result = ""
        for (index, scalar) in name.unicodeScalars.enumerated() {
            let allowed = scalar.isASCII && (scalar == "_" || scalar == ":" || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
                || (index > 0 && ("0"..."9").contains(scalar)))
            result.unicodeScalars.append(allowed ? scalar : "_")
        }
        return result.isEmpty ? "_" : result
    }

    // A series lives as long as the process: a reload that drops a route keeps its totals on /metrics, as a
    // Prometheus counter must not go backwards while the process runs.
    public func destroyCounter(_ handler: any CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    public func destroyMeter(_ handler: any MeterHandler) {}
    public func destroyTimer(_ handler: any TimerHandler) {}
}
