import Foundation
import GatehouseConfiguration
import Testing
@testable import GatehouseIdentity

@Suite struct EmailAddressTests {
    @Test(arguments: [
        ("Kim@Example.COM", "kim@example.com"),
        ("\u{212A}im@example.com", "kim@example.com"),  // the Kelvin sign is K
        ("jose\u{301}@example.com", "jos\u{e9}@example.com"),  // NFD is NFC
        ("ｋｉｍ@example.com", "kim@example.com"),  // full-width letters
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("J\u{30C}o@example.com", "\u{1F0}o@example.com"),  // lower-casing then composing again: a fixed point
        ("cafe\u{301}@example.com", "caf\u{e9}@example.com"),
    ])
    func oneCanonicalFormPerAddress(text: String, canonical: String) {
        // Compared as bytes: `==` on String would call NFD and NFC equal.
        #expect(EmailAddress(text).map { Array($0.canonical.utf8) } == Array(canonical.utf8), "\(text.debugDescription)")
        #expect(Array(EmailAddress.canonicalize(canonical).utf8) == Array(canonical.utf8), "the canonical form is stable")
    }

    @Test(arguments: [
        "<sam@example.com>", "sam@example.com(x)", "kate@example.com;x", "x@example.com\\", "\"<svg/onload=alert(1)>\"@example.com",
        "a b@example.com", "a@b@example.com", ".a@example.com", "a.@example.com", "a..b@example.com", "a@example", "a@-example.com",
        "a@example-.com", "a@exa_mple.com", "a@[127.0.0.1]", "a@example..com", "@example.com", "a@", "", "a\u{0}b@example.com",
        "a\u{200B}b@example.com", "a@example.com\n", "a,b@example.com", "\u{FEFF}a@example.com",
        String(repeating: "a", count: 65) + "@example.com", "a@" + String(repeating: "b", count: 64) + ".com",
        // Invisible or misplaced scalars that would make a second account look like the first.
        "kim\u{34F}@example.com", "kim\u{FE0F}@example.com", "ki\u{3164}m@example.com", "kim\u{E0100}@example.com",
        ".\u{301}sam@example.com", "sam.\u{301}@example.com", "a.\u{301}.b@example.com", "x@a-\u{301}.com", "\u{301}a@example.com",
    ])
    func addressesAParserCouldReadAsAnotherAreRefused(text: String) {
        #expect(EmailAddress(text) == nil, "\(text.debugDescription)")
    }
}
