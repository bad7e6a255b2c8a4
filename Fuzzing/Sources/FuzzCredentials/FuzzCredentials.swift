import GatehouseBrowser
import GatehouseTokens

/// The bearer and cookie parsers on arbitrary header values: nothing traps, a token has no blanks, and every cookie
/// value found is a substring of the header.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let value = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if case .bearer(let token) = BearerCredential.parse(authorization: value) {
        precondition(!token.isEmpty && !token.contains(" "), "bad token: \(token.debugDescription)")
        precondition(value.contains(token))
    }
    for cookie in BrowserCookie.values(named: BrowserCookie.session, in: [value, value]) {
        precondition(cookie.isEmpty || value.contains(cookie), "a cookie value not in the header: \(cookie.debugDescription)")
    }
    return 0
}
