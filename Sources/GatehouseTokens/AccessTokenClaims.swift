import Foundation

/// Every claim a Gatehouse access token carries: the one catalogue that tenant files (`identity_headers`), header
/// injection and the discovery document (`claims_supported`) all use, so a claim cannot be accepted by one and
/// missing in another.
public enum AccessTokenClaim: String, CaseIterable, Sendable, Hashable {
    case iss, aud, sub, email, emailVerified = "email_verified", name, roles, tenant, sid, iat, exp, jti
}

/// The claims of a Gatehouse access token (§5).
public struct AccessTokenClaims: Sendable, Codable, Hashable {
    public var iss: String
    /// Gatehouse writes one audience; a token listing several is accepted when one of them is this tenant's.
    public var aud: [String]
    public var sub: String
    public var email: String
    /// Whether the user proved the address (§11).
    public var emailVerified: Bool
    public var name: String
    public var roles: [String]
    public var tenant: String
    public var sid: String
    public var iat: Int64
    public var exp: Int64
    public var nbf: Int64?
    public var jti: String

    public init(
        iss: String, aud: String, sub: String, email: String, emailVerified: Bool = false, name: String, roles: [String], tenant: String, sid: String,
        iat: Int64, exp: Int64, jti: String
    ) {
        self.emailVerified = emailVerified
        self.iss = iss
        self.aud = [aud]
        self.sub = sub
        self.email = email
        self.name = name
        self.roles = roles
        self.tenant = tenant
        self.sid = sid
        self.iat = iat
        self.exp = exp
        self.nbf = nil
        self.jti = jti
    }

    enum CodingKeys: String, CodingKey { case iss, aud, sub, email, emailVerified = "email_verified", name, roles, tenant, sid, iat, exp, nbf, jti }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        iss = try container.decode(String.self, forKey: .iss)
        if let single = try? container.decode(String.self, forKey: .aud) {
            aud = [single]
        } else {
            aud = try container.decode([String].self, forKey: .aud)
        }
        sub = try container.decode(String.self, forKey: .sub)
        email = try container.decodeIfPresent(String.self, forKey: .email) ?? ""
        emailVerified = try container.decodeIfPresent(Bool.self, forKey: .emailVerified) ?? false
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
        roles = try container.decodeIfPresent([String].self, forKey: .roles) ?? []
        tenant = try container.decode(String.self, forKey: .tenant)
        sid = try container.decode(String.self, forKey: .sid)
        iat = try container.decode(Int64.self, forKey: .iat)
        exp = try container.decode(Int64.self, forKey: .exp)
        nbf = try container.decodeIfPresent(Int64.self, forKey: .nbf)
        jti = try container.decode(String.self, forKey: .jti)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(iss, forKey: .iss)
        if aud.count == 1 { try container.encode(aud[0], forKey: .aud) } else { try container.encode(aud, forKey: .aud) }
        try container.encode(sub, forKey: .sub)
        try container.encode(email, forKey: .email)
        try container.encode(emailVerified, forKey: .emailVerified)
        try container.encode(name, forKey: .name)
        try container.encode(roles, forKey: .roles)
        try container.encode(tenant, forKey: .tenant)
        try container.encode(sid, forKey: .sid)
        try container.encode(iat, forKey: .iat)
        try container.encode(exp, forKey: .exp)
        try container.encodeIfPresent(nbf, forKey: .nbf)
        try container.encode(jti, forKey: .jti)
    }

    /// The value of a claim, as identity headers carry it; lists are joined with ",". Exhaustive: a claim added to
    /// the catalogue does not compile until it has a value here.
    public func value(of claim: AccessTokenClaim) -> String {
        switch claim {
        case .iss: return iss
        case .aud: return aud.joined(separator: ",")
        case .sub: return sub
        case .email: return email
        case .emailVerified: return emailVerified ? "true" : "false"
        case .name: return name
        case .roles: return roles.joined(separator: ",")
        case .tenant: return tenant
        case .sid: return sid
        case .iat: return String(iat)
        case .exp: return String(exp)
        case .jti: return jti
        }
    }
}
