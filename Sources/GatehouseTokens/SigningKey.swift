import Crypto
import Foundation
import _CryptoExtras

/// The JWS algorithms Gatehouse signs with (RFC 7518). `none` is not one of them, and nothing else is accepted.
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable, Codable {
    case es256 = "ES256"
    case edDSA = "EdDSA"
    case rs256 = "RS256"
    case hs256 = "HS256"
}

/// A tenant's key that signs tokens. Its algorithm is fixed when it is made: verification uses the key's
/// algorithm, never the one a token claims.
public struct SigningKey: Sendable {
    enum Material: @unchecked Sendable {
        case es256(P256.Signing.PrivateKey)
        case edDSA(Curve25519.Signing.PrivateKey)
        case rs256(_RSA.Signing.PrivateKey)
        case hs256(SymmetricKey)
    }

    public let kid: String
    public let algorithm: JWSAlgorithm
    let material: Material

    /// A new random key. RS256 keys are 2048-bit (generation takes a while: call off the event loop).
    public static func generate(_ algorithm: JWSAlgorithm) throws -> SigningKey {
        let material: Material
        switch algorithm {
        case .es256: material = .es256(P256.Signing.PrivateKey())
        case .edDSA: material = .edDSA(Curve25519.Signing.PrivateKey())
        case .rs256: material = .rs256(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        case .hs256: material = .hs256(SymmetricKey(size: .bits256))
        }
        return SigningKey(kid: Self.randomKid(), algorithm: algorithm, material: material)
    }

    /// The HS256 key of a tenant, from its configured secret. Its key id is derived from the secret (a hash,
    /// which reveals nothing), so it stays the same across restarts and replicas.
    public static func hmac(secret: String) -> SigningKey {
        let digest = SHA256.hash(data: Data(("gatehouse-kid:" + secret).utf8))
        return SigningKey(kid: "hs-" + Base64URL.encode(Array(digest.prefix(12))), algorithm: .hs256, material: .hs256(SymmetricKey(data: Data(secret.utf8))))
    }

    /// Restores a key from `privateRepresentation`.
    public init(kid: String, algorithm: JWSAlgorithm, privateRepresentation data: Data) throws {
        self.kid = kid
        self.algorithm = algorithm
        switch algorithm {
        case .es256: material = .es256(try P256.Signing.PrivateKey(rawRepresentation: data))
        case .edDSA: material = .edDSA(try Curve25519.Signing.PrivateKey(rawRepresentation: data))
        case .rs256: material = .rs256(try _RSA.Signing.PrivateKey(derRepresentation: data))
        case .hs256: material = .hs256(SymmetricKey(data: data))
        }
    }

    init(kid: String, algorithm: JWSAlgorithm, material: Material) {
        self.kid = kid
        self.algorithm = algorithm
        self.material = material
    }

    /// The private key's bytes, to be sealed with the master key before they are stored.
    public var privateRepresentation: Data {
        switch material {
        case .es256(let key): return key.rawRepresentation
        case .edDSA(let key): return key.rawRepresentation
        case .rs256(let key): return key.derRepresentation
        case .hs256(let key): return key.withUnsafeBytes { Data($0) }
        }
    }

    public func sign(_ data: Data) throws -> Data {
        switch material {
        case .es256(let key): return ECDSALowS.normalize(try key.signature(for: data).rawRepresentation)
        case .edDSA(let key): return try key.signature(for: data)
        case .rs256(let key): return try key.signature(for: data, padding: .insecurePKCS1v1_5).rawRepresentation
        case .hs256(let key): return Data(HMAC<SHA256>.authenticationCode(for: data, using: key))
        }
    }

    /// The key that checks this key's signatures.
    public var verificationKey: VerificationKey {
        switch material {
        case .es256(let key): return VerificationKey(kid: kid, key: .es256(key.publicKey))
        case .edDSA(let key): return VerificationKey(kid: kid, key: .edDSA(key.publicKey))
        case .rs256(let key): return VerificationKey(kid: kid, key: .rs256(key.publicKey))
        case .hs256(let key): return VerificationKey(kid: kid, key: .hs256(key))
        }
    }

    static func randomKid() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

/// The public half of a signing key (or, for HS256, the shared secret, which is never published).
public struct VerificationKey: Sendable {
    enum Key: @unchecked Sendable {
        case es256(P256.Signing.PublicKey)
        case edDSA(Curve25519.Signing.PublicKey)
        case rs256(_RSA.Signing.PublicKey)
        case hs256(SymmetricKey)
    }

    public let kid: String
    let key: Key

    public var algorithm: JWSAlgorithm {
        switch key {
        case .es256: return .es256
        case .edDSA: return .edDSA
        case .rs256: return .rs256
        case .hs256: return .hs256
        }
    }

    /// Checks `signature` over `data` with this key's own algorithm.
    public func isValidSignature(_ signature: Data, for data: Data) -> Bool {
        switch key {
        case .es256(let key):
            guard ECDSALowS.isLowS(signature), let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: data)
        case .edDSA(let key):
            return key.isValidSignature(signature, for: data)
        case .rs256(let key):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: data, padding: .insecurePKCS1v1_5)
        case .hs256(let key):
            // Constant time.
            return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: data, using: key)
        }
    }

    /// The RFC 7517 JWK of the public key; nil for a shared secret, which is never published.
    public var publicJWK: [String: String]? {
        switch key {
        case .es256(let key):
            let raw = key.rawRepresentation
            return [
                "kty": "EC", "crv": "P-256", "x": Base64URL.encode(raw.prefix(32)), "y": Base64URL.encode(raw.suffix(32)),
                "kid": kid, "alg": "ES256", "use": "sig",
            ]
        case .edDSA(let key):
            return ["kty": "OKP", "crv": "Ed25519", "x": Base64URL.encode(key.rawRepresentation), "kid": kid, "alg": "EdDSA", "use": "sig"]
        case .rs256(let key):
            guard let primitives = try? key.getKeyPrimitives() else { return nil }
            return [
                "kty": "RSA", "n": Base64URL.encode(primitives.modulus), "e": Base64URL.encode(primitives.publicExponent), "kid": kid,
                "alg": "RS256", "use": "sig",
            ]
        case .hs256:
            return nil
        }
    }
}
