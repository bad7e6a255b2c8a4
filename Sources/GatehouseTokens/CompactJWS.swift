import Foundation

/// JWS compact serialisation (RFC 7515 §7.1): `header.payload.signature`, each base64url.
public enum CompactJWS {
    /// The protected header fields Gatehouse reads.
    struct Header: Codable {
        var alg: String
        var kid: String?
        var typ: String?
        /// Whether the header has a member that changes how a token must be read or whose key it names (§5): `crit`
        /// (extensions the recipient must understand), `b64` (RFC 7797 unencoded payloads), and `jku`, `jwk`,
        /// `x5u`, `x5c` (keys chosen by the token itself). Gatehouse supports none of them, so such a token is
        /// refused rather than read as if they were absent.
        var hasForbiddenMember = false

        static let forbiddenMembers: Set<String> = ["crit", "b64", "jku", "jwk", "x5u", "x5c"]

        init(alg: String, kid: String?, typ: String?) {
            self.alg = alg
            self.kid = kid
            self.typ = typ
        }

        private enum CodingKeys: String, CodingKey { case alg, kid, typ }

        private struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            alg = try container.decode(String.self, forKey: .alg)
            kid = try container.decodeIfPresent(String.self, forKey: .kid)
            typ = try container.decodeIfPresent(String.self, forKey: .typ)
            hasForbiddenMember = try decoder.container(keyedBy: AnyKey.self).allKeys.contains { Self.forbiddenMembers.contains($0.stringValue) }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(alg, forKey: .alg)
            try container.encodeIfPresent(kid, forKey: .kid)
            try container.encodeIfPresent(typ, forKey: .typ)
        }
    }

    /// A token split into its parts; nothing is verified yet.
    struct Parts {
        var header: Header
        var payload: Data
        var signingInput: Data
        var signature: Data
    }

    /// Tokens longer than this are refused before any parsing.
    static let maximumLength = 8192

    static func split(_ token: String) -> Parts? {
        guard token.utf8.count <= maximumLength else { return nil }
        let pieces = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard pieces.count == 3, !pieces[0].isEmpty, !pieces[1].isEmpty, !pieces[2].isEmpty,
            let headerBytes = Base64URL.decode(Substring(pieces[0])),
            let header = try? JSONDecoder().decode(Header.self, from: headerBytes),
            let payload = Base64URL.decode(Substring(pieces[1])),
            let signature = Base64URL.decode(Substring(pieces[2]))
        else { return nil }
        let input = Data(token.utf8.prefix(pieces[0].count + 1 + pieces[1].count))
        return Parts(header: header, payload: payload, signingInput: input, signature: signature)
    }

    /// Signs `claims` with `key`; the header carries the key's own algorithm and id.
    public static func sign<Claims: Encodable>(_ claims: Claims, with key: SigningKey, type: String) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let header = try encoder.encode(Header(alg: key.algorithm.rawValue, kid: key.kid, typ: type))
        let payload = try encoder.encode(claims)
        let input = Base64URL.encode(header) + "." + Base64URL.encode(payload)
        let signature = try key.sign(Data(input.utf8))
        return input + "." + Base64URL.encode(signature)
    }
}
