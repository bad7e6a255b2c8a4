import GatehouseBrowser

/// The JSON body reader of the JSON endpoints: nothing traps, and each field is either a string, reported missing,
/// or reported as another type, consistently between the required and the optional lookup.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    guard let body = try? JSONObjectBody(bytes: UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    for field in ["email", "password", "name", "refresh_token", "current_password", "new_password", ""] {
        let required = Result<String, JSONObjectBody.Problem> { () throws(JSONObjectBody.Problem) in try body.string(field) }
        let optional = Result<String?, JSONObjectBody.Problem> { () throws(JSONObjectBody.Problem) in try body.optionalString(field) }
        switch (required, optional) {
        case (.success(let one), .success(let other)): precondition(one == other)
        case (.failure(.missing), .success(nil)): break
        case (.failure(.notAString), .failure(.notAString)): break
        default: preconditionFailure("\(field): \(required) but \(optional)")
        }
    }
    return 0
}
