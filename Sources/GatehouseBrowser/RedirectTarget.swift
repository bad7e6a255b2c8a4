import Foundation

/// Where a browser goes after logging in (`rd`): only a path on this tenant, never another site (§4).
public enum RedirectTarget {
    /// Where to go when `rd` is absent or refused.
    public static let fallback = "/"

    /// `candidate` when it is a path-absolute reference on this host, else ``fallback``.
    ///
    /// Refused: anything with a scheme or an authority (`https://evil`, `//evil`), a backslash anywhere (browsers read
    /// `/\evil` as `//evil`), control characters or spaces (browsers drop tabs and newlines, so `/\t/evil` is
    /// `//evil`), and each of these hidden behind percent-encoding, however many times encoded.
    public static func safe(_ candidate: String?) -> String {
        guard let candidate, !candidate.isEmpty, candidate.utf8.count <= 2048,
            candidate.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return fallback }
        var form = candidate
        for _ in 0..<4 {
            guard isLocalPath(form) else { return fallback }
            guard form.utf8.contains(UInt8(ascii: "%")) else { return candidate }
            guard let decoded = form.removingPercentEncoding else { return fallback }
            if decoded == form { return candidate }
            form = decoded
        }
        // Still changing after four rounds of decoding: no honest link looks like that.
        return fallback
    }

    /// One `/`, then no second `/`, and no backslash or control character anywhere. (A space cannot hide a second
    /// slash: browsers strip spaces only at the ends, and this starts with `/`.)
    private static func isLocalPath(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.first == UInt8(ascii: "/") else { return false }
        if bytes.count > 1, bytes[1] == UInt8(ascii: "/") { return false }
        return !bytes.contains { $0 == UInt8(ascii: "\\") || $0 < 0x20 || $0 == 0x7F }
    }
}
