import Crypto
import Foundation
import Testing
@testable import GatehouseTokens

/// Every way a presented access token can be wrong (§5), checked against a real key ring.
@Suite struct TokenValidatorTests {
    let now: Int64 = 1_800_000_000
    let expectations = TokenExpectations(tenant: "acme", issuer: "http://acme.test", audience: "acme", clockSkewSeconds: 30)

    func makeValidator(_ key: SigningKey, tenant: String = "acme") -> TokenValidator {
        let keys = KeyDirectory()
        keys.replace(KeyRing(signingKey: key, verificationKeys: []), for: tenant)
        return TokenValidator(keys: keys, revocations: RevocationList(), cache: VerifiedTokenCache())
    }

    func claims(exp: Int64? = nil, iss: String = "http://acme.test", aud: String = "acme", tenant: String = "acme") -> AccessTokenClaims {
        AccessTokenClaims(
            iss: iss, aud: aud, sub: "user-1", email: "a@acme.test", name: "A", roles: ["user"], tenant: tenant, sid: "sid-1", iat: now - 10,
            exp: exp ?? now + 900, jti: "jti-1")
    }

    /// A token with an arbitrary header, signed (or not) by hand.
    func forged(header: String, payload: AccessTokenClaims, signature: (Data) -> Data) throws -> String {
        let input = Base64URL.encode(Data(header.utf8)) + "." + Base64URL.encode(try JSONEncoder().encode(payload))
        return input + "." + Base64URL.encode(signature(Data(input.utf8)))
    }

    @Test(arguments: JWSAlgorithm.allCases)
    func aTokenSignedByTheTenantKeyValidates(_ algorithm: JWSAlgorithm) throws {
        let key = algorithm == .hs256 ? SigningKey.hmac(secret: String(repeating: "s", count: 32)) : try SigningKey.generate(algorithm)
        let token = try CompactJWS.sign(claims(), with: key, type: "at+jwt")
        let result = makeValidator(key).validate(token, for: expectations, now: now)
        #expect(try result.get().sub == "user-1")
    }

    @Test func algNoneIsRefused() throws {
        let key = try SigningKey.generate(.es256)
        let token = try forged(header: #"{"alg":"none","kid":"\#(key.kid)","typ":"at+jwt"}"#, payload: claims()) { _ in Data() }
        #expect(makeValidator(key).validate(token, for: expectations, now: now) == .failure(.malformed))
        let withSignature = try forged(header: #"{"alg":"none","kid":"\#(key.kid)","typ":"at+jwt"}"#, payload: claims()) { _ in Data([1]) }
        #expect(makeValidator(key).validate(withSignature, for: expectations, now: now) == .failure(.algorithmMismatch))
    }

    @Test func hs256SignedWithThePublicKeyIsRefused() throws {
        // The classic key-confusion attack: HMAC keyed with the published EC key.
        let key = try SigningKey.generate(.es256)
        let jwk = try #require(key.verificationKey.publicJWK)
        let publicBytes = Data(jwk["x"]!.utf8) + Data(jwk["y"]!.utf8)
        let token = try forged(header: #"{"alg":"HS256","kid":"\#(key.kid)","typ":"at+jwt"}"#, payload: claims()) { input in
            Data(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: publicBytes)))
        }
        #expect(makeValidator(key).validate(token, for: expectations, now: now) == .failure(.algorithmMismatch))
    }

    @Test func unknownAndHostileKeyIDsAreRefused() throws {
        let key = try SigningKey.generate(.es256)
        let other = try SigningKey.generate(.es256)
        let validator = makeValidator(key)
        #expect(validator.validate(try CompactJWS.sign(claims(), with: other, type: "at+jwt"), for: expectations, now: now) == .failure(.unknownKey))
        let traversal = try forged(header: #"{"alg":"ES256","kid":"../../etc/passwd","typ":"at+jwt"}"#, payload: claims()) { input in
            try! key.sign(input)
        }
        #expect(validator.validate(traversal, for: expectations, now: now) == .failure(.unknownKey))
    }

    @Test func aTamperedPayloadIsRefused() throws {
        let key = try SigningKey.generate(.es256)
        let token = try CompactJWS.sign(claims(), with: key, type: "at+jwt")
        let parts = token.split(separator: ".")
        var tampered = claims()
        tampered.roles = ["admin"]
        let forgedToken = parts[0] + "." + Base64URL.encode(try JSONEncoder().encode(tampered)) + "." + parts[2]
        #expect(makeValidator(key).validate(String(forgedToken), for: expectations, now: now) == .failure(.badSignature))
    }

    @Test func lifetimeIsCheckedWithTheClockSkew() throws {
        let key = try SigningKey.generate(.es256)
        let validator = makeValidator(key)
        let withinSkew = try CompactJWS.sign(claims(exp: now - 20), with: key, type: "at+jwt")
        #expect(throws: Never.self) { try validator.validate(withinSkew, for: expectations, now: now).get() }
        let expired = try CompactJWS.sign(claims(exp: now - 31), with: key, type: "at+jwt")
        #expect(validator.validate(expired, for: expectations, now: now) == .failure(.expired))
        var early = claims()
        early.nbf = now + 120
        #expect(validator.validate(try CompactJWS.sign(early, with: key, type: "at+jwt"), for: expectations, now: now) == .failure(.notYetValid))
    }

    @Test func issuerAudienceTypeAndTenantMustMatch() throws {
        let key = try SigningKey.generate(.es256)
        let validator = makeValidator(key)
        #expect(
            validator.validate(try CompactJWS.sign(claims(iss: "http://evil.test"), with: key, type: "at+jwt"), for: expectations, now: now)
                == .failure(.wrongIssuer))
        #expect(
            validator.validate(try CompactJWS.sign(claims(aud: "other"), with: key, type: "at+jwt"), for: expectations, now: now)
                == .failure(.wrongAudience))
        // An identity assertion (typ JWT) is not an access token.
        #expect(validator.validate(try CompactJWS.sign(claims(), with: key, type: "JWT"), for: expectations, now: now) == .failure(.wrongType))
    }

    @Test func aTokenOfAnotherTenantIsRefusedEvenWhenCached() throws {
        let acmeKey = try SigningKey.generate(.es256)
        let globexKey = try SigningKey.generate(.es256)
        let keys = KeyDirectory()
        keys.replace(KeyRing(signingKey: acmeKey, verificationKeys: []), for: "acme")
        keys.replace(KeyRing(signingKey: globexKey, verificationKeys: []), for: "globex")
        let validator = TokenValidator(keys: keys, revocations: RevocationList(), cache: VerifiedTokenCache())
        let globex = TokenExpectations(tenant: "globex", issuer: "http://globex.test", audience: "globex", clockSkewSeconds: 30)
        let globexToken = try CompactJWS.sign(claims(iss: "http://globex.test", aud: "globex", tenant: "globex"), with: globexKey, type: "at+jwt")
        #expect(throws: Never.self) { try validator.validate(globexToken, for: globex, now: now).get() }  // now cached
        #expect(validator.validate(globexToken, for: expectations, now: now) == .failure(.unknownKey))
    }

    @Test func revocationAppliesToCachedTokens() throws {
        let key = try SigningKey.generate(.es256)
        let validator = makeValidator(key)
        let token = try CompactJWS.sign(claims(), with: key, type: "at+jwt")
        #expect(throws: Never.self) { try validator.validate(token, for: expectations, now: now).get() }
        #expect(validator.cache.count == 1)
        validator.revocations.revoke(.login, "sid-1", until: now + 1000)
        #expect(validator.validate(token, for: expectations, now: now) == .failure(.revoked))
        // Past its exp, a cached token is refused and dropped.
        let other = try CompactJWS.sign(claims(exp: now + 5), with: key, type: "at+jwt")
        let fresh = makeValidator(key)
        #expect(throws: Never.self) { try fresh.validate(other, for: expectations, now: now).get() }
        #expect(fresh.validate(other, for: expectations, now: now + 100) == .failure(.expired))
        #expect(fresh.cache.count == 0)
    }

    @Test(arguments: ["", "garbage", "a.b", "a.b.c.d", "....", "eyJhbGciOiJFUzI1NiJ9..sig", String(repeating: "a", count: 9000)])
    func garbageIsMalformed(_ token: String) throws {
        #expect(makeValidator(try SigningKey.generate(.es256)).validate(token, for: expectations, now: now) == .failure(.malformed))
    }

    @Test func theCacheStaysBounded() throws {
        let cache = VerifiedTokenCache(capacity: 3)
        for index in 0..<10 {
            cache.insert("t\(index)", .init(tenant: "a", issuer: "i", audience: "a", claims: claims()), now: now)
        }
        #expect(cache.count <= 3)
    }
    @Test(arguments: [
        #""crit":["exp"]"#, #""crit":["b64"],"b64":false"#, #""b64":false"#, #""jku":"https://evil.test/jwks.json""#,
        #""jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#, #""x5u":"https://evil.test/cert.pem""#, #""x5c":["MIIB"]"#,
    ])
    func headersThatChangeHowATokenIsReadAreRefused(member: String) throws {
        let key = try SigningKey.generate(.es256)
        let token = try forged(header: #"{"alg":"ES256","kid":"\#(key.kid)","typ":"at+jwt",\#(member)}"#, payload: claims()) { input in
            try! key.sign(input)
        }
        #expect(makeValidator(key).validate(token, for: expectations, now: now) == .failure(.unsupportedHeader), "\(member)")
    }

    @Test func onlyTheLowSFormOfAnECDSASignatureVerifies() throws {
        let key = try SigningKey.generate(.es256)
        let validator = makeValidator(key)
        for index in 0..<64 {
            var payload = claims()
            payload.jti = "jti-\(index)"
            let token = try CompactJWS.sign(payload, with: key, type: "at+jwt")
            let pieces = token.split(separator: ".")
            let signature = try #require(Base64URL.decode(pieces[2]))
            #expect(ECDSALowS.isLowS(signature), "Gatehouse signs low-S only")
            #expect(try validator.validate(token, for: expectations, now: now).get().jti == "jti-\(index)")
            // The same signature with s replaced by n - s is mathematically valid, and must be refused.
            let flipped = ECDSALowS.complement(signature)
            #expect(!ECDSALowS.isLowS(flipped))
            guard case .es256(let publicKey) = key.verificationKey.key else { return }
            let raw = try P256.Signing.ECDSASignature(rawRepresentation: flipped)
            #expect(publicKey.isValidSignature(raw, for: Data((pieces[0] + "." + pieces[1]).utf8)), "the high-S copy is a valid ECDSA signature")
            let highS = pieces[0] + "." + pieces[1] + "." + Base64URL.encode(flipped)
            #expect(validator.validate(highS, for: expectations, now: now) == .failure(.badSignature))
            #expect(ECDSALowS.normalize(flipped) == signature, "normalizing gives the signature back")
        }
    }

    /// Base64url has one spelling per byte string: a last character with its unused bits set decodes to the same
    /// bytes in lenient decoders, and is refused here, so a token has exactly one encoding.
    @Test func aSignatureWithUnusedBitsSetIsRefused() throws {
        let key = try SigningKey.generate(.es256)
        let token = try CompactJWS.sign(claims(), with: key, type: "at+jwt")
        #expect(try makeValidator(key).validate(token, for: expectations, now: now).get().sub == "user-1")
        // 64 signature bytes are 86 characters: the last one carries 2 bits, its low 4 are unused.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let last = token.last!
        let index = alphabet.firstIndex(of: last)!
        let twin = token.dropLast() + String(alphabet[index | 0x01])
        #expect(twin != token)
        #expect(makeValidator(key).validate(String(twin), for: expectations, now: now) == .failure(.malformed))
        #expect(Base64URL.decode("AB") == nil && Base64URL.decode("AA") == Data([0]))
    }

    @Test func everyClaimOfTheCatalogueHasAValue() {
        let token = claims()
        for claim in AccessTokenClaim.allCases {
            #expect(!token.value(of: claim).isEmpty, "\(claim)")
        }
        #expect(token.value(of: .aud) == "acme")
        #expect(token.value(of: .exp) == String(now + 900))
    }

}

@Suite struct KeyMaterialTests {
    @Test(arguments: [JWSAlgorithm.es256, .edDSA, .rs256])
    func aKeySurvivesSealingAndRestoring(_ algorithm: JWSAlgorithm) throws {
        let master = try MasterKey(base64: MasterKey.generateBase64())
        let key = try SigningKey.generate(algorithm)
        let sealed = try master.seal(key.privateRepresentation, context: "acme:\(key.kid)")
        let restored = try SigningKey(kid: key.kid, algorithm: algorithm, privateRepresentation: try master.open(sealed, context: "acme:\(key.kid)"))
        let signature = try restored.sign(Data("hello".utf8))
        #expect(key.verificationKey.isValidSignature(signature, for: Data("hello".utf8)))
        // Bound to its row, and to this master key.
        #expect(throws: MasterKey.Failure.self) { try master.open(sealed, context: "globex:\(key.kid)") }
        #expect(throws: MasterKey.Failure.self) { try MasterKey(base64: MasterKey.generateBase64()).open(sealed, context: "acme:\(key.kid)") }
    }

    @Test func publicJWKsCarryNoPrivateParts() throws {
        for algorithm in [JWSAlgorithm.es256, .edDSA, .rs256] {
            let jwk = try #require(try SigningKey.generate(algorithm).verificationKey.publicJWK)
            #expect(jwk["d"] == nil && jwk["p"] == nil && jwk["alg"] == algorithm.rawValue)
        }
        #expect(SigningKey.hmac(secret: String(repeating: "k", count: 32)).verificationKey.publicJWK == nil)
    }

    @Test func base64URLIsStrict() {
        #expect(Base64URL.decode("aGk") == Data("hi".utf8))
        #expect(Base64URL.decode("aGk=") == nil)
        #expect(Base64URL.decode("a+b/") == nil)
        #expect(Base64URL.encode(Data([0xfb, 0xff])) == "-_8")
    }
}
