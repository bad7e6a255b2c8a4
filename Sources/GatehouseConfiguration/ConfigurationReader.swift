import Yams

/// Reads typed values out of one YAML file, collecting every problem as `file:line: message` instead of
/// stopping at the first, and substituting `${NAME}` in scalars.
final class ConfigurationReader {
    /// A YAML mapping whose keys are plain strings, with the node of each key for line numbers.
    struct Mapping {
        let line: Int
        private(set) var values: [String: Node] = [:]
        private(set) var keyLines: [String: Int] = [:]
        private(set) var orderedKeys: [String] = []

        init(line: Int) { self.line = line }

        subscript(key: String) -> Node? { values[key] }

        mutating func insert(key: String, line: Int, value: Node) {
            values[key] = value
            keyLines[key] = line
            orderedKeys.append(key)
        }
    }

    let file: String
    let environment: [String: String]
    private(set) var diagnostics: [ConfigurationDiagnostic] = []

    init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    static func line(of node: Node?) -> Int { node?.mark?.line ?? 1 }

    func error(line: Int, _ message: String) {
        diagnostics.append(ConfigurationDiagnostic(file: file, line: line, message: message))
    }

    func error(at node: Node?, _ message: String) {
        error(line: Self.line(of: node), message)
    }

    /// Parses the whole document; a syntax error becomes a diagnostic with Yams' line.
    func document(_ text: String) -> Node? {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                error(line: 1, "the file is empty")
                return nil
            }
            return node
        } catch let yamlError as YamlError {
            error(line: Self.line(of: yamlError), "YAML syntax error: \(Self.describe(yamlError))")
        } catch {
            self.error(line: 1, "YAML syntax error: \(error)")
        }
        return nil
    }

    /// A mapping with only `allowedKeys`: an unknown key is an error, because a typo must never silently
    /// switch a security setting off.
    func mapping(_ node: Node, context: String, allowedKeys: [String]) -> Mapping? {
        guard case .mapping(let yamlMapping) = node else {
            error(at: node, "\(context) must be a mapping of keys to values")
            return nil
        }
        var result = Mapping(line: Self.line(of: node))
        for (keyNode, value) in yamlMapping {
            guard case .scalar(let key) = keyNode else {
                error(at: keyNode, "\(context): keys must be plain strings")
                continue
            }
            let keyLine = Self.line(of: keyNode)
            if result[key.string] != nil {
                error(line: keyLine, "duplicate key '\(key.string)' in \(context)")
                continue
            }
            if !allowedKeys.contains(key.string) {
                let suggestion = Self.closest(to: key.string, among: allowedKeys).map { " (did you mean '\($0)'?)" } ?? ""
                error(line: keyLine, "unknown key '\(key.string)' in \(context)\(suggestion)")
                continue
            }
            result.insert(key: key.string, line: keyLine, value: value)
        }
        return result
    }

    /// Whether a node is YAML null (`~`, `null` or nothing at all).
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// A scalar as a string with `${NAME}` substituted. `secret` keeps the value out of any message.
    func string(_ node: Node, field: String, secret: Bool = false) -> String? {
        guard case .scalar(let scalar) = node else {
            error(at: node, "'\(field)' must be a single value, not a list or mapping")
            return nil
        }
        if Self.isNull(node) { return "" }
        switch EnvironmentSubstitution.expand(scalar.string, environment: environment) {
        case .success(let value):
            return value
        case .failure(.missingVariable(let name)):
            error(at: node, "'\(field)': environment variable \(name) is not set (write ${\(name):-default} to make it optional)")
        case .failure(.malformed(let reason)):
            error(at: node, "'\(field)': \(secret ? "malformed variable reference" : reason)")
        }
        return nil
    }

    func bool(_ node: Node, field: String) -> Bool? {
        guard let text = string(node, field: field) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error(at: node, "'\(field)' must be true or false, not '\(text)'")
            return nil
        }
    }

    func integer(_ node: Node, field: String, range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, field: field) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            error(at: node, "'\(field)' must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
            return nil
        }
        return value
    }

    func duration(_ node: Node, field: String, minimum: Duration = .zero) -> Duration? {
        guard let text = string(node, field: field) else { return nil }
        guard let value = ConfigurationValues.duration(text) else {
            error(at: node, "'\(field)': '\(text)' is not a duration (write e.g. 500ms, 30s, 15m, 12h, 30d)")
            return nil
        }
        guard value >= minimum, value > .zero else {
            error(at: node, "'\(field)' must be more than \(ConfigurationValues.format(minimum))")
            return nil
        }
        return value
    }

    func byteCount(_ node: Node, field: String) -> Int? {
        guard let text = string(node, field: field) else { return nil }
        guard let value = ConfigurationValues.byteCount(text), value > 0 else {
            error(at: node, "'\(field)': '\(text)' is not a size in bytes (write e.g. 65536, 64KiB, 10MiB)")
            return nil
        }
        return value
    }

    /// A list of strings; a single scalar is not accepted, so `hosts: a.test` is reported rather than guessed.
    func stringList(_ node: Node, field: String) -> [(value: String, node: Node)]? {
        if Self.isNull(node) { return [] }
        guard case .sequence(let sequence) = node else {
            error(at: node, "'\(field)' must be a list, e.g. [a, b]")
            return nil
        }
        var result: [(String, Node)] = []
        for item in sequence {
            guard let value = string(item, field: field) else { continue }
            result.append((value, item))
        }
        return result
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _):
            return [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
        default:
            return "\(error)"
        }
    }

    private static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _):
            return mark.line
        default:
            return 1
        }
    }

    /// The allowed key nearest to a misspelt one, if it is close enough to be a plausible typo.
    static func closest(to key: String, among candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
        guard let (candidate, distance) = scored, distance <= max(1, key.count / 3) else { return nil }
        return candidate
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
