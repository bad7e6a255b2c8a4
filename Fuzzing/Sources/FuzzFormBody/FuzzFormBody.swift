import GatehouseBrowser

/// The form body parser (`application/x-www-form-urlencoded`): nothing traps, and a parsed form has no field that
/// appeared twice in the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let form = FormBody.parse(text) else { return 0 }
    let pairs = text.split(separator: "&", omittingEmptySubsequences: true)
    precondition(form.count == pairs.count, "a repeated field was accepted: \(text.debugDescription)")
    return 0
}
