import Foundation

/// Why a presented access token was refused. Every case answers 401 `error="invalid_token"`; the description is
/// for logs and problem details and never echoes the token.
public enum TokenRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed
    /// The header uses `crit`, `b64`, `jku`, `jwk`, `x5u` or `x5c` (§5).
    case unsupportedHeader
    case unknownKey
    case algorithmMismatch
    case badSignature
    case wrongType
    case wrongIssuer
    case wrongAudience
    case expired
    case notYetValid
    case revoked

    public var description: String {
        switch self {
        case .malformed: return "The access token is malformed."
        case .unsupportedHeader: return "The access token's header uses crit, b64, jku, jwk, x5u or x5c, which Gatehouse does not accept."
        case .unknownKey: return "The access token is not signed by a key of this tenant."
        case .algorithmMismatch: return "The access token's algorithm does not match its key."
        case .badSignature: return "The access token's signature is invalid."
        case .wrongType: return "The token is not an access token."
        case .wrongIssuer: return "The access token was issued for another issuer."
        case .wrongAudience: return "The access token was issued for another audience."
        case .expired: return "The access token has expired."
        case .notYetValid: return "The access token is not valid yet."
        case .revoked: return "The access token has been revoked."
        }
    }
}

/// What a tenant's tokens must say.
public struct TokenExpectations: Sendable {
    public var tenant: String
    public var issuer: String
    public var audience: String
    public var clockSkew: Int64

    public init(tenant: String, issuer: String, audience: String, clockSkewSeconds: Int64) {
        self.tenant = tenant
        self.issuer = issuer
        self.audience = audience
        self.clockSkew = clockSkewSeconds
    }
}

/// Validates access tokens synchronously (§5): on the event loop, with no hop and no database access.
public struct TokenValidator: Sendable {
    public static let accessTokenType = "at+jwt"

    public let keys: KeyDirectory
    public let revocations: RevocationList
    public let cache: VerifiedTokenCache

    public init(keys: KeyDirectory, revocations: RevocationList, cache: VerifiedTokenCache) {
        self.keys = keys
        self.revocations = revocations
        self.cache = cache
    }

    public func validate(_ token: String, for expected: TokenExpectations, now: Int64 = Int64(Date().timeIntervalSince1970))
        -> Result<AccessTokenClaims, TokenRejection>
    {
        if let hit = cache.lookup(token) {
            // Cached under another tenant's expectations: not this tenant's token, whatever its signature.
            guard hit.tenant == expected.tenant, hit.issuer == expected.issuer, hit.audience == expected.audience else {
                return .failure(.unknownKey)
            }
            if now > hit.claims.exp + expected.clockSkew {
                cache.remove(token)
                return .failure(.expired)
            }
            if revocations.isRevoked(tokenID: hit.claims.jti, login: hit.claims.sid) { return .failure(.revoked) }
            return .success(hit.claims)
        }
        let result = verify(token, for: expected, now: now)
        if case .success(let claims) = result {
            cache.insert(
                token, .init(tenant: expected.tenant, issuer: expected.issuer, audience: expected.audience, claims: claims), now: now)
        }
        return result
    }

    private func verify(_ token: String, for expected: TokenExpectations, now: Int64) -> Result<AccessTokenClaims, TokenRejection> {
        guard let parts = CompactJWS.split(token) else { return .failure(.malformed) }
        guard !parts.header.hasForbiddenMember else { return .failure(.unsupportedHeader) }
        // The key is found by kid alone, and its algorithm decides: `none`, or HS256 with a public key, never verify.
        guard let kid = parts.header.kid, Self.isPlausibleKid(kid), let key = keys.ring(for: expected.tenant).verificationKeys[kid] else {
            return .failure(.unknownKey)
        }
        guard parts.header.alg == key.algorithm.rawValue else { return .failure(.algorithmMismatch) }
        guard key.isValidSignature(parts.signature, for: parts.signingInput) else { return .failure(.badSignature) }
        guard parts.header.typ == Self.accessTokenType else { return .failure(.wrongType) }
        guard let claims = try? JSONDecoder().decode(AccessTokenClaims.self, from: parts.payload) else { return .failure(.malformed) }
        guard claims.iss == expected.issuer, claims.tenant == expected.tenant else { return .failure(.wrongIssuer) }
        guard claims.aud.contains(expected.audience) else { return .failure(.wrongAudience) }
        guard now <= claims.exp + expected.clockSkew else { return .failure(.expired) }
        if let nbf = claims.nbf, nbf > now + expected.clockSkew { return .failure(.notYetValid) }
        guard claims.iat <= now + expected.clockSkew else { return .failure(.notYetValid) }
        if revocations.isRevoked(tokenID: claims.jti, login: claims.sid) { return .failure(.revoked) }
        return .success(claims)
    }

    /// Key ids are short base64url strings; anything else (`../`, spaces, very long) is refused before lookup.
    static func isPlausibleKid(_ kid: String) -> Bool {
        let utf8 = kid.utf8
        return !utf8.isEmpty && utf8.count <= 64
            && utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
    }
}
