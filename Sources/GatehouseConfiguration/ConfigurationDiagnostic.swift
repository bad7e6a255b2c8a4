/// One problem found in a configuration file, reported as `file:line: message`.
public struct ConfigurationDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file as the operator named it (relative paths stay relative, so messages stay short).
    public var file: String
    /// 1-based line of the offending key or value.
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { "\(file):\(line): \(message)" }
}

/// Every problem of every file, collected so that one run of `gatehouse check` shows them all.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigurationDiagnostic]

    public init(_ diagnostics: [ConfigurationDiagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
