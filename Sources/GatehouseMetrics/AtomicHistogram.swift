import Atomics
import CoreMetrics

/// A duration histogram whose `record` is three relaxed atomic additions: no lock and no allocation, so every
/// event loop can record into one shared series. (swift-prometheus's own histogram takes a lock per observation.)
///
/// Buckets are counted individually and made cumulative when rendered; `count` is the sum of the buckets, so a
/// scrape racing a record may see `sum` a moment ahead of the buckets, never a bucket above `count`.
public final class AtomicHistogram: TimerHandler, Sendable {
    let name: String
    /// `name="value",...` rendered once, escaped; empty without labels.
    let renderedLabels: [UInt8]
    /// Upper bounds in nanoseconds, ascending; a last, implicit bucket is +Inf.
    let upperBounds: [Int64]
    /// The same bounds as Prometheus `le` values in seconds.
    private let renderedBounds: [[UInt8]]
    private let buckets: [ManagedAtomic<Int>]
    private let sumNanoseconds = ManagedAtomic<Int64>(0)

    init(name: String, labels: [(String, String)], upperBoundsInSeconds: [Double]) {
        self.name = name
        self.renderedLabels = Exposition.labels(labels)
        self.upperBounds = upperBoundsInSeconds.map { Int64(($0 * 1e9).rounded()) }
        self.renderedBounds = upperBoundsInSeconds.map { Array(Exposition.number($0).utf8) }
        self.buckets = (0...upperBoundsInSeconds.count).map { _ in ManagedAtomic(0) }
    }

    public func recordNanoseconds(_ duration: Int64) {
        let duration = max(0, duration)
        var index = 0
        while index < upperBounds.count && duration > upperBounds[index] { index += 1 }
        buckets[index].wrappingIncrement(ordering: .relaxed)
        sumNanoseconds.wrappingIncrement(by: duration, ordering: .relaxed)
    }

    /// The observations so far: cumulative counts per bound (the last is +Inf, the total) and the sum in seconds.
    public var snapshot: (cumulative: [Int], sumSeconds: Double) {
        var running = 0
        let cumulative = buckets.map { bucket in
            running += bucket.load(ordering: .relaxed)
            return running
        }
        return (cumulative, Double(sumNanoseconds.load(ordering: .relaxed)) / 1e9)
    }

    func render(into buffer: inout [UInt8]) {
        let (cumulative, sum) = snapshot
        for (index, count) in cumulative.enumerated() {
            buffer.append(contentsOf: name.utf8)
            buffer.append(contentsOf: "_bucket{".utf8)
            if !renderedLabels.isEmpty {
                buffer.append(contentsOf: renderedLabels)
                buffer.append(UInt8(ascii: ","))
            }
            buffer.append(contentsOf: #"le=""#.utf8)
            if index < renderedBounds.count { buffer.append(contentsOf: renderedBounds[index]) } else { buffer.append(contentsOf: "+Inf".utf8) }
            buffer.append(contentsOf: "\"} ".utf8)
            buffer.append(contentsOf: String(count).utf8)
            buffer.append(UInt8(ascii: "\n"))
        }
        for (suffix, value) in [("_sum", Exposition.number(sum)), ("_count", String(cumulative.last ?? 0))] {
            buffer.append(contentsOf: name.utf8)
            buffer.append(contentsOf: suffix.utf8)
            if !renderedLabels.isEmpty {
                buffer.append(UInt8(ascii: "{"))
                buffer.append(contentsOf: renderedLabels)
                buffer.append(UInt8(ascii: "}"))
            }
            buffer.append(UInt8(ascii: " "))
            buffer.append(contentsOf: value.utf8)
            buffer.append(UInt8(ascii: "\n"))
        }
    }
}

/// The pieces of the Prometheus text format (0.0.4) Gatehouse writes itself.
enum Exposition {
    /// `a="x",b="y"`, label values escaped as the format requires (backslash, double quote, line feed).
    static func labels(_ labels: [(String, String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (index, (name, value)) in labels.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: name.utf8)
            bytes.append(contentsOf: #"=""#.utf8)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
                case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\n"): bytes.append(contentsOf: #"\n"#.utf8)
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
        return bytes
    }

    /// A sample value: integers without a fraction, others in Swift's shortest round-trip form (`0.005`, `2.5`).
    static func number(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value.isNaN { return "NaN" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    static func header(into buffer: inout [UInt8], name: String, help: String, type: String) {
        buffer.append(contentsOf: "# HELP \(name) ".utf8)
        for byte in help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): buffer.append(contentsOf: #"\n"#.utf8)
            default: buffer.append(byte)
            }
        }
        buffer.append(contentsOf: "\n# TYPE \(name) \(type)\n".utf8)
    }
}
