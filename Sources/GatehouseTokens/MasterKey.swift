import Crypto
import Foundation

/// The process-wide key that encrypts signing keys at rest (AES-256-GCM), so replicas sharing a store share keys
/// while a copy of the database alone reveals nothing.
public struct MasterKey: Sendable {
    private let key: SymmetricKey

    public enum Failure: Error, CustomStringConvertible {
        case malformed
        case cannotDecrypt

        public var description: String {
            switch self {
            case .malformed: return "the master key must be base64 of exactly 32 bytes"
            case .cannotDecrypt: return "a stored signing key cannot be decrypted with this master key (was master_key changed?)"
            }
        }
    }

    public init(base64: String) throws {
        guard let bytes = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            throw Failure.malformed
        }
        self.key = SymmetricKey(data: bytes)
    }

    /// A key for one purpose (HKDF-SHA256), so the master key itself only ever encrypts.
    public func derivedKey(purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Data(purpose.utf8), outputByteCount: 32)
    }

    /// A fresh random key, as base64.
    public static func generateBase64() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// Encrypts `plaintext`, binding it to `context` (tenant and key id) so a sealed key cannot be moved to another row.
    public func seal(_ plaintext: Data, context: String) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw Failure.cannotDecrypt }
        return combined
    }

    public func open(_ sealed: Data, context: String) throws -> Data {
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Data(context.utf8))
        } catch {
            throw Failure.cannotDecrypt
        }
    }
}
