import Foundation

/// The rules of the Prometheus text exposition format 0.0.4 that a scrape must obey, checked line by line: names
/// and label names in their alphabets, label values escaped, one `# TYPE` per family before its samples, a family's
/// lines together, no series twice, and histograms with ascending `le`, cumulative buckets and `+Inf` equal to
/// `_count`. Returns one message per problem (empty: the text obeys them).
public enum ExpositionFormat {
    public static func problems(_ text: String) -> [String] {
        var problems: [String] = []
        guard text.isEmpty || text.hasSuffix("\n") else { return ["the text does not end with a line feed"] }
        var types: [String: String] = [:]
        var helps: Set<String> = []
        var finishedFamilies: Set<String> = []
        var currentFamily: String?
        var seen: Set<String> = []
        // Histogram series (name + labels without le) -> (last le, last count)
        var buckets: [String: (le: Double, count: Double)] = [:]
        var infinity: [String: Double] = [:]
        var counts: [String: Double] = [:]

        func enter(_ family: String, line: Int) {
            guard family != currentFamily else { return }
            if let currentFamily { finishedFamilies.insert(currentFamily) }
            if finishedFamilies.contains(family) { problems.append("line \(line): family \(family) is split") }
            currentFamily = family
        }

        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let number = index + 1
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, parts[0] == "#" else { continue }  // a comment
                let name = String(parts[2])
                guard isMetricName(name) else {
                    problems.append("line \(number): bad metric name \(name)")
                    continue
                }
                if parts[1] == "TYPE" {
                    let type = parts.count == 4 ? String(parts[3]) : ""
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(type) { problems.append("line \(number): bad type \(type)") }
                    if types[name] != nil { problems.append("line \(number): second TYPE for \(name)") }
                    if seen.contains(where: { Self.family(of: String($0.prefix { $0 != "{" }), types: types) == name }) { problems.append("line \(number): TYPE after samples of \(name)") }
                    types[name] = type
                    enter(name, line: number)
                } else if parts[1] == "HELP" {
                    if !helps.insert(name).inserted { problems.append("line \(number): second HELP for \(name)") }
                    enter(name, line: number)
                }
                continue
            }
            guard let sample = Self.parseSample(String(line)) else {
                problems.append("line \(number): not a sample: \(line)")
                continue
            }
            let family = Self.family(of: sample.name, types: types)
            enter(family, line: number)
            let key = sample.name + "{" + sample.labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
            if !seen.insert(key).inserted { problems.append("line \(number): series twice: \(key)") }
            if types[family] == "histogram" {
                let series = family + "{" + sample.labels.filter { $0.0 != "le" }.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
                if sample.name == family + "_bucket" {
                    guard let le = sample.labels.first(where: { $0.0 == "le" }).flatMap({ Double($0.1 == "+Inf" ? "inf" : $0.1) }) else {
                        problems.append("line \(number): a bucket without a numeric le")
                        continue
                    }
                    if let previous = buckets[series] {
                        if le <= previous.le { problems.append("line \(number): le not ascending in \(series)") }
                        if sample.value < previous.count { problems.append("line \(number): buckets not cumulative in \(series)") }
                    }
                    buckets[series] = (le, sample.value)
                    if le == .infinity { infinity[series] = sample.value }
                } else if sample.name == family + "_count" {
                    counts[series] = sample.value
                }
            }
            if types[family] == "counter" && sample.value < 0 { problems.append("line \(number): negative counter") }
        }
        for (series, count) in counts where infinity[series] != count {
            problems.append("\(series): +Inf bucket \(infinity[series].map { "\($0)" } ?? "missing") differs from _count \(count)")
        }
        return problems
    }

    /// The family a sample belongs to: histogram samples carry `_bucket`, `_sum` and `_count`.
    static func family(of name: String, types: [String: String]) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if types[base] == "histogram" || types[base] == "summary" { return base }
        }
        return name
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first == ":" || (first.isASCII && CharacterSet.letters.contains(first)) else {
            return false
        }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || $0 == ":" || CharacterSet.alphanumerics.contains($0)) }
    }

    static func isLabelName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains(":") && isMetricName(name)
    }

    struct Sample {
        var name: String
        var labels: [(String, String)]
        var value: Double
    }

    /// `name{a="x",b="y"} value [timestamp]`, with label values unescaped; nil when the line breaks a rule.
    static func parseSample(_ line: String) -> Sample? {
        let scalars = Array(line.unicodeScalars)
        var index = 0
        var name = ""
        while index < scalars.count, scalars[index] != "{", scalars[index] != " " {
            name.unicodeScalars.append(scalars[index])
            index += 1
        }
        guard isMetricName(name) else { return nil }
        var labels: [(String, String)] = []
        if index < scalars.count, scalars[index] == "{" {
            index += 1
            while index < scalars.count, scalars[index] != "}" {
                var label = ""
                while index < scalars.count, scalars[index] != "=" {
                    label.unicodeScalars.append(scalars[index])
                    index += 1
                }
                guard isLabelName(label), !labels.contains(where: { $0.0 == label }), index + 1 < scalars.count, scalars[index + 1] == "\"" else { return nil }
                index += 2
                var value = ""
                while index < scalars.count, scalars[index] != "\"" {
                    if scalars[index] == "\\" {
                        guard index + 1 < scalars.count else { return nil }
                        switch scalars[index + 1] {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: return nil
                        }
                        index += 2
                    } else {
                        value.unicodeScalars.append(scalars[index])
                        index += 1
                    }
                }
                guard index < scalars.count else { return nil }
                index += 1
                labels.append((label, value))
                if index < scalars.count, scalars[index] == "," { index += 1 }
            }
            guard index < scalars.count else { return nil }
            index += 1
        }
        guard index < scalars.count, scalars[index] == " " else { return nil }
        let rest = String(String.UnicodeScalarView(scalars[(index + 1)...])).split(separator: " ")
        guard (1...2).contains(rest.count) else { return nil }
        let text = String(rest[0])
        let value: Double?
        switch text {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default: value = text.allSatisfy({ "0123456789.eE+-".contains($0) }) ? Double(text) : nil
        }
        guard let value else { return nil }
        if rest.count == 2, Int64(rest[1]) == nil { return nil }
        return Sample(name: name, labels: labels, value: value)
    }
}

/// Python's `prometheus_client.parser` (Debian's python3-prometheus-client, which `scripts/install-deps.sh`
/// installs): a parser that shares no code with ours.
public enum PrometheusClientParser {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The families it found, name to type; throws with its error when it rejects the text.
    public static func parse(_ text: String) throws -> [String: String] {
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(sys.stdin.read()):
                for sample in family.samples:
                    float(sample.value)
                print(family.name, family.type)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let complaint = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "prometheus_client rejected the text: " + String(decoding: complaint, as: UTF8.self))
        }
        var families: [String: String] = [:]
        for line in String(decoding: printed, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { families[String(parts[0])] = String(parts[1]) }
        }
        return families
    }
}
