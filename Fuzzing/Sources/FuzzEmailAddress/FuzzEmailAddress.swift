import GatehouseConfiguration

/// The address canonicaliser: nothing traps; what it accepts is canonical (idempotent), plain ASCII-safe around the
/// `@`, and free of what a mail parser would read as another address.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let address = EmailAddress(text) else { return 0 }
    let canonical = address.canonical
    precondition(EmailAddress(canonical)?.canonical == canonical, "not idempotent: \(canonical.debugDescription)")
    precondition(EmailAddress.canonicalize(canonical) == canonical)
    precondition(canonical.utf8.filter { $0 == UInt8(ascii: "@") }.count == 1, "not one @: \(canonical.debugDescription)")
    for forbidden in ["<", ">", "(", ")", "[", "]", ";", ",", "\\", "\"", " ", "\u{0}", "\n", "\r", "\t"] {
        precondition(!canonical.contains(forbidden), "\(forbidden.debugDescription) in \(canonical.debugDescription)")
    }
    precondition(!canonical.unicodeScalars.contains { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format })
    return 0
}
