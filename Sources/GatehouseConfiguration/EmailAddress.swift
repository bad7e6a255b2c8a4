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
        // Lower-casing can leave a sequence NFKC composes further (`J` + caron → `j` + caron → `ǰ`): repeat until
        // stable, so the form is a fixed point and a second pass (a lookup, a migration) finds the same key.
        var form = text
        for _ in 0..<4 {
            let next = form.precomposedStringWithCompatibilityMapping.lowercased()
            // Bytes, not `==`: Swift compares strings by canonical equivalence, so NFD would equal its NFC form.
            if next.utf8.elementsEqual(form.utf8) { return form }
            form = next
        }
        return form
    }

    /// RFC 5321 `Dot-string`: atoms of `atext` (and, per RFC 6531, any non-ASCII letter or digit) joined by single dots.
    static func isDotAtom(_ text: Substring) -> Bool {
        // On scalars, not Characters: `.` followed by a combining mark is one Character that is not ".".
        let scalars = text.unicodeScalars
        guard let first = scalars.first, let last = scalars.last, first != ".", last != "." else { return false }
        var previous: Unicode.Scalar?
        for scalar in scalars {
            if scalar == "." {
                if previous == "." { return false }
            } else {
                guard isAtomText(scalar, after: previous) else { return false }
            }
            previous = scalar
        }
        return true
    }

    private static func isAtomText(_ scalar: Unicode.Scalar, after previous: Unicode.Scalar?) -> Bool {
        if scalar.isASCII {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9": return true
            default: return "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(scalar)
            }
        }
        return isInternationalLetterOrDigit(scalar, after: previous)
    }

    /// Letters and digits beyond ASCII, and combining marks right after a letter, digit or mark; never a space, a
    /// control, a format or default-ignorable character (CGJ, variation selectors, Hangul fillers: invisible, so
    /// `kim\u{34F}@` would pass for `kim@`), or a symbol that could look like punctuation.
    private static func isInternationalLetterOrDigit(_ scalar: Unicode.Scalar, after previous: Unicode.Scalar?) -> Bool {
        let properties = scalar.properties
        guard !properties.isDefaultIgnorableCodePoint, !(0x3164 == scalar.value || 0x1160 == scalar.value || 0x115F == scalar.value) else {
            return false
        }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .decimalNumber:
            return true
        case .nonspacingMark, .spacingMark:
            guard let previous, previous != ".", previous != "-" else { return false }
            return previous.properties.isAlphabetic || previous.properties.numericType != nil
                || [.nonspacingMark, .spacingMark].contains(previous.properties.generalCategory)
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
            let scalars = label.unicodeScalars
            guard let first = scalars.first, let last = scalars.last, label.utf8.count <= 63, first != "-", last != "-" else { return false }
            var previous: Unicode.Scalar?
            for scalar in scalars {
                switch scalar {
                case "a"..."z", "0"..."9", "-": break
                default: guard !scalar.isASCII, isInternationalLetterOrDigit(scalar, after: previous) else { return false }
                }
                previous = scalar
            }
            return true
        }
    }
}
