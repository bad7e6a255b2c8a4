import GatehouseProxy

/// Request targets: parsing never traps, and what it accepts is normal (§6.1, §6.8): absolute, idempotent, and free of
/// the forms upstreams read differently.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let target = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard case .success(let parsed) = RequestTarget.parse(target) else { return 0 }
    let path = parsed.path
    precondition(path.utf8.first == UInt8(ascii: "/"), "not absolute: \(path)")
    precondition(!path.utf8.contains(UInt8(ascii: ";")), "a ';' survived: \(path)")
    precondition(!path.contains("/../") && !path.hasSuffix("/..") && !path.contains("//"), "unresolved: \(path)")
    guard case .success(let again) = PathNormalizer.normalize(Substring(path)) else {
        preconditionFailure("a normal path is refused on a second pass: \(path)")
    }
    precondition(again == path, "not idempotent: \(path) -> \(again)")
    return 0
}
