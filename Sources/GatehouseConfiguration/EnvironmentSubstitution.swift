/// Expands `${NAME}` and `${NAME:-default}` in a configuration value.
///
/// Substitution happens per scalar after YAML parsing, never on the raw text, so a variable's value can
/// not inject YAML structure and line numbers stay exact.
enum EnvironmentSubstitution {
    enum Failure: Error, Equatable {
        case missingVariable(String)
        case malformed(String)
    }

    static func expand(_ text: String, environment: [String: String]) -> Result<String, Failure> {
        guard text.contains("${") else { return .success(text) }
        var output = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            output += rest[rest.startIndex..<start.lowerBound]
            guard let close = rest[start.upperBound...].firstIndex(of: "}") else {
                return .failure(.malformed("unterminated '${' in value"))
            }
            let expression = rest[start.upperBound..<close]
            let name: Substring
            let fallback: Substring?
            if let separator = expression.range(of: ":-") {
                name = expression[expression.startIndex..<separator.lowerBound]
                fallback = expression[separator.upperBound...]
            } else {
                name = expression
                fallback = nil
            }
            guard isVariableName(name) else {
                return .failure(.malformed("'${\(expression)}' is not a variable reference (expected ${NAME} or ${NAME:-default})"))
            }
            if let value = environment[String(name)] {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                return .failure(.missingVariable(String(name)))
            }
            rest = rest[rest.index(after: close)...]
        }
        output += rest
        return .success(output)
    }

    private static func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || isLetter(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isLetter($0) || (0x30...0x39).contains($0) }
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}
