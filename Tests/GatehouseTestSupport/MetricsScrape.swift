import Foundation

/// A scrape of `/metrics`, parsed strictly enough for tests: every sample line is `name{labels} value` with the
/// labels in the order the gateway writes them, which is how a test names a series (`name{a="x",b="y"}`).
public struct MetricsScrape: Sendable {
    public let text: String
    /// Series key (`name` or `name{labels}`) to value.
    public let samples: [String: Double]
    /// Family name to its `# TYPE`.
    public let types: [String: String]

    public init(_ text: String) {
        self.text = text
        var samples: [String: Double] = [:]
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " ") else { continue }
            samples[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        self.samples = samples
        self.types = types
    }

    /// The value of a series, 0 when it does not exist (yet).
    public func value(_ series: String) -> Double { samples[series] ?? 0 }

    /// The keys of every sample of the families whose name starts with `prefix`.
    public func series(prefix: String) -> Set<String> { Set(samples.keys.filter { $0.hasPrefix(prefix) }) }

    /// How much each series grew from `earlier` to this scrape (only those that changed).
    public func delta(since earlier: MetricsScrape, prefix: String) -> [String: Double] {
        var changes: [String: Double] = [:]
        for (key, value) in samples where key.hasPrefix(prefix) {
            let change = value - (earlier.samples[key] ?? 0)
            if change != 0 { changes[key] = change }
        }
        return changes
    }
}

/// Scrapes the admin listener.
public func scrapeMetrics(adminPort: Int) async throws -> MetricsScrape {
    let response = try await requestOffThread(port: adminPort, "/metrics", host: "127.0.0.1")
    precondition(response.status == 200, "/metrics answered \(response.status)")
    return MetricsScrape(response.text)
}
