import GatehouseBrowser

/// The login redirect target (`rd`): whatever comes in, what goes out is a path on this host, never another site.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let candidate = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let target = RedirectTarget.safe(candidate)
    let bytes = Array(target.utf8)
    precondition(bytes.first == UInt8(ascii: "/"), "not a path: \(target.debugDescription)")
    precondition(bytes.count < 2 || bytes[1] != UInt8(ascii: "/"), "another site: \(target.debugDescription)")
    precondition(!bytes.contains(UInt8(ascii: "\\")) && !bytes.contains { $0 < 0x21 || $0 == 0x7F }, "unsafe: \(target.debugDescription)")
    precondition(target == RedirectTarget.fallback || target == candidate, "rewritten: \(target.debugDescription)")
    return 0
}
