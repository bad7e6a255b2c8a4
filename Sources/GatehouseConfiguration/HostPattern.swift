/// A tenant host: an exact name (`api.acme.test`) or a wildcard standing for exactly one leading label
/// (`*.acme.test` matches `eu.acme.test`, not `acme.test` nor `a.eu.acme.test`).
public enum HostPattern: Sendable, Hashable, CustomStringConvertible {
    case exact(String)
    /// The suffix after `*.`, lower-cased.
    case wildcard(suffix: String)

    public var description: String {
        switch self {
        case .exact(let host): return host
        case .wildcard(let suffix): return "*." + suffix
        }
    }

    public var isWildcard: Bool {
        if case .wildcard = self { return true }
        return false
    }

    public static func parse(_ text: String) -> HostPattern? {
        let lowered = text.lowercased()
        if lowered.hasPrefix("*.") {
            let suffix = String(lowered.dropFirst(2))
            guard isValidHostName(suffix), suffix.contains(".") || suffix == "localhost" else { return nil }
            return .wildcard(suffix: suffix)
        }
        guard isValidHostName(lowered) else { return nil }
        return .exact(lowered)
    }

    /// Letters, digits, hyphens and dots, labels of 1 to 63 characters; or a bracketed IPv6 literal.
    static func isValidHostName(_ host: String) -> Bool {
        if host.hasPrefix("["), host.hasSuffix("]") {
            return IPAddressRange.parseAddress(String(host.dropFirst().dropLast())) != nil
        }
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
    }
}
