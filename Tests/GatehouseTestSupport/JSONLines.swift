import Foundation

/// JSON lines (the audit and access logs, `gatehouse audit`), parsed; a line that is not a JSON object is left out.
public enum JSONLines {
    public static func parse(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The lines of a file; none when it does not exist (yet).
    public static func read(_ path: String) -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return parse(String(decoding: data, as: UTF8.self))
    }
}
