/// Parsers for the scalar value types that appear in configuration files.
public enum ConfigurationValues {
    /// Parses `500ms`, `30s`, `15m`, `12h`, `30d` and compounds such as `1h30m`.
    public static func duration(_ text: String) -> Duration? {
        // "ms" comes before "m" so that the longer suffix wins.
        let units: [(suffix: String, milliseconds: Int64)] = [
            ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
        ]
        var rest = Substring(text.trimmingSpaces())
        guard !rest.isEmpty else { return nil }
        var total: Int64 = 0
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, digits.count <= 12, let amount = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.suffix) }) else { return nil }
            rest = rest.dropFirst(unit.suffix.count)
            total += amount * unit.milliseconds
        }
        return .milliseconds(total)
    }

    /// Parses a byte count: a plain integer, or one with `KB`/`MB`/`GB` (powers of 1000) or
    /// `KiB`/`MiB`/`GiB` (powers of 1024).
    public static func byteCount(_ text: String) -> Int? {
        let trimmed = text.trimmingSpaces()
        let multipliers: [(suffix: String, factor: Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
            ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1),
        ]
        var number = Substring(trimmed)
        var factor = 1
        if let unit = multipliers.first(where: { trimmed.hasSuffix($0.suffix) }) {
            number = number.dropLast(unit.suffix.count)
            factor = unit.factor
        }
        number = Substring(String(number).trimmingSpaces())
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }), number.count <= 15,
            let value = Int(number)
        else { return nil }
        let (result, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? nil : result
    }

    /// Renders a duration the way it would be written in a file (`15m`, `30s`, `250ms`).
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.milliseconds
        for (suffix, factor) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)]
        where milliseconds % factor == 0 && milliseconds >= factor {
            return "\(milliseconds / factor)\(suffix)"
        }
        return "\(milliseconds)ms"
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}

extension String {
    func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
