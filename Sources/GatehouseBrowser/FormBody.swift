import Foundation

/// An `application/x-www-form-urlencoded` body (RFC 6749 appendix B). A repeated parameter makes it invalid.
public enum FormBody {
    /// The fields of a form body; nil when it is not valid (bad percent-encoding, a repeated name).
    public static func parse(_ text: String) -> [String: String]? {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : "") else { return nil }
            guard result[name] == nil else { return nil }
            result[name] = value
        }
        return result
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
