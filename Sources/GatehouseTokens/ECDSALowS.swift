import Foundation

/// The low-S rule for P-256 ECDSA signatures (§5). For every valid signature `(r, s)`, `(r, n - s)` is valid too,
/// so a token would have two encodings (two cache keys, two `jti`-less replays that compare unequal). Gatehouse
/// accepts only the form with `s <= n / 2`, and always signs in that form.
enum ECDSALowS {
    /// The order of the P-256 group, big-endian.
    static let order: [UInt8] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    ]
    /// `order / 2`, rounded down, big-endian.
    static let halfOrder: [UInt8] = [
        0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8,
    ]

    /// Whether a raw `r || s` signature (64 bytes) has a low S.
    static func isLowS(_ signature: Data) -> Bool {
        guard signature.count == 64 else { return false }
        let s = Array(signature.suffix(32))
        return !isGreater(s, than: halfOrder)
    }

    /// The same signature in its low-S form.
    static func normalize(_ signature: Data) -> Data {
        guard signature.count == 64, !isLowS(signature) else { return signature }
        return complement(signature)
    }

    /// `(r, n - s)`: the other valid encoding of the same signature.
    static func complement(_ signature: Data) -> Data {
        let s = Array(signature.suffix(32))
        // n - s, big-endian, with borrow; s < n for any signature BoringSSL produced.
        var result = [UInt8](repeating: 0, count: 32)
        var borrow = 0
        for index in stride(from: 31, through: 0, by: -1) {
            var difference = Int(order[index]) - Int(s[index]) - borrow
            borrow = difference < 0 ? 1 : 0
            if difference < 0 { difference += 256 }
            result[index] = UInt8(difference)
        }
        return signature.prefix(32) + Data(result)
    }

    /// Big-endian comparison of two 32-byte numbers. Not constant-time: S is public.
    private static func isGreater(_ value: [UInt8], than other: [UInt8]) -> Bool {
        for (a, b) in zip(value, other) where a != b { return a > b }
        return false
    }
}
