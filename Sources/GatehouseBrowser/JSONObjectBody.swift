import Foundation

/// A JSON object request body with typed access to its string fields (the JSON endpoints of §4). Every refusal
/// says precisely what is wrong, for a 400 `detail`; nothing of the body's content is echoed.
public struct JSONObjectBody: Sendable {
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case notJSON
        case notAnObject
        case missing(String)
        case notAString(String)

        public var description: String {
            switch self {
            case .notJSON: return "The body is not valid JSON."
            case .notAnObject: return "The body must be a JSON object."
            case .missing(let field): return "'\(field)' is missing."
            case .notAString(let field): return "'\(field)' must be a string."
            }
        }
    }

    private let strings: [String: String]
    /// Fields present with another type (or null), so a lookup can say which it was.
    private let others: Set<String>

    public init(bytes: some Sequence<UInt8>) throws(Problem) {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(bytes), options: []) else { throw .notJSON }
        guard let object = parsed as? [String: Any] else { throw .notAnObject }
        var strings: [String: String] = [:]
        var others: Set<String> = []
        for (key, value) in object {
            if let text = value as? String { strings[key] = text } else { others.insert(key) }
        }
        self.strings = strings
        self.others = others
    }

    public func string(_ field: String) throws(Problem) -> String {
        if let text = strings[field] { return text }
        throw others.contains(field) ? .notAString(field) : .missing(field)
    }

    /// nil when the field is absent or null.
    public func optionalString(_ field: String) throws(Problem) -> String? {
        if let text = strings[field] { return text }
        guard others.contains(field) else { return nil }
        throw .notAString(field)
    }
}
