import Foundation

/// An account's email address in its one canonical form (§5): Unicode NFKC, then lower case, so two spellings of
/// one address (`K` and the Kelvin sign `K`, `é` composed or not, full-width letters) are one account.
///
/// Only a plain `local@domain` is accepted: the local part RFC 5321 dot-atoms (no quotes, spaces, comments,
/// brackets, angle brackets, backslashes or control characters), the domain a host name. Anything a mail parser
/// could read as another address (`<sam@example.com>`, `sam@example.com(x)`, `kate@example.com;x`) is refused
/// rather than stored and forwarded in `X-User-Email`.
public struct EmailAddress: Sendable, Hashable, CustomStringConvertible {
    /// NFKC, lower case: what is stored, compared and put in tokens.
    public let canonical: String
    /// The part after `@`.
    public var domain: Substring { canonical[canonical.index(after: canonical.lastIndex(of: "@")!)...] }

    public var description: String { canonical }

    /// Addresses longer than this (in UTF-8 bytes, after canonicalisation) are refused (RFC 5321 §4.5.3.1.3).
    public static let maximumLength = 254

    /// The canonical address, or nil when `text` is not a plain `local@domain`.
    public init?(_ text: String) {
        let canonical = Self.canonicalize(text)
        guard canonical.utf8.count <= Self.maximumLength, let at = canonical.lastIndex(of: "@") else { return nil }
        let local = canonical[..<at]
        let domain = canonical[canonical.index(after: at)...]
        guard Self.isDotAtom(local), local.utf8.count <= 64, Self.isHostName(domain) else { return nil }
        self.canonical = canonical
    }

    /// NFKC, then lower case: the key of an address, whether or not it is valid (lookups of what a client typed).
    public static func canonicalize(_ text: String) -> String {
        text.precomposedStringWithCompatibilityMapping.lowercased()
    }

    /// RFC 5321 `Dot-string`: atoms of `atext` (and, per RFC 6531, any non-ASCII letter or digit) joined by single dots.
    static func isDotAtom(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.first != ".", text.last != "." else { return false }
        var previousWasDot = false
        for scalar in text.unicodeScalars {
            if scalar == "." {
                if previousWasDot { return false }
                previousWasDot = true
                continue
            }
            previousWasDot = false
            guard isAtomText(scalar) else { return false }
        }
        return true
    }

    private static func isAtomText(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9": return true
            default: return "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(scalar)
            }
        }
        return isInternationalLetterOrDigit(scalar)
    }

    /// Letters, marks and digits beyond ASCII; never a space, a control, a format character or a symbol that could
    /// look like punctuation.
    private static func isInternationalLetterOrDigit(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .nonspacingMark, .spacingMark,
            .decimalNumber:
            return true
        default:
            return false
        }
    }

    /// A host name of at least two labels: letters, digits (ASCII or not) and inner hyphens, 1 to 63 of them each.
    static func isHostName(_ text: Substring) -> Bool {
        guard text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        return labels.allSatisfy { label in
            guard !label.isEmpty, label.utf8.count <= 63, label.first != "-", label.last != "-" else { return false }
            return label.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "a"..."z", "0"..."9", "-": return true
                default: return !scalar.isASCII && isInternationalLetterOrDigit(scalar)
                }
            }
        }
    }
}
