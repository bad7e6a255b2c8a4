import Foundation

/// One security event of §10: a row in the store, written in the transaction of the change it records, and a JSON
/// line on the audit log. It names who, where from and what happened, never a password, hash, token, code, cookie
/// or key: nothing in it is a secret, so a test can grep every byte of the trail for the secrets it used.
public struct AuditEvent: Sendable, Equatable {
    /// The store's row id; nil before it is stored.
    public var id: Int64?
    /// Milliseconds since 1970.
    public var time: Int64
    public var tenant: String
    public var event: AuditEventKind
    public var userID: String?
    public var email: String?
    /// The login (`sid`) the event concerns.
    public var sid: String?
    public var ip: String?
    public var userAgent: String?
    public var requestID: String?
    public var traceID: String?
    public var actor: AuditActor
    /// Why it failed, for the `_error` events (`invalid_credentials`, `locked`, ...).
    public var error: String?
    /// A few more facts (roles set, users imported, a key id); never a secret.
    public var details: [String: String]?

    public init(
        _ event: AuditEventKind, tenant: String, context: AuditContext, userID: String? = nil, email: String? = nil, sid: String? = nil,
        error: String? = nil, details: [String: String]? = nil, time: Int64 = AuditEvent.nowMilliseconds()
    ) {
        self.time = time
        self.tenant = tenant
        self.event = event
        self.userID = userID
        self.email = email
        self.sid = sid
        self.ip = context.ip
        self.userAgent = context.userAgent
        self.requestID = context.requestID
        self.traceID = context.traceID
        self.actor = context.actor
        self.error = error
        self.details = details
    }

    public static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// `details` as stored: a JSON object with sorted keys, or nil.
    public var encodedDetails: String? {
        guard let details, !details.isEmpty else { return nil }
        let data = try? JSONSerialization.data(withJSONObject: details, options: [.sortedKeys])
        return data.map { String(decoding: $0, as: UTF8.self) }
    }

    public static func decodeDetails(_ text: String?) -> [String: String]? {
        guard let text, let data = text.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: String]
    }

    /// The audit-log line (§10): `{"type":"audit","time":...}` with every field, `null` where unknown, and `error`
    /// and `details` only when present. Ends with a line feed.
    public var jsonLine: String {
        var fields: [(String, Any)] = [
            ("type", "audit"), ("time", Self.timestamp(time)), ("tenant", tenant), ("event", event.rawValue),
            ("user_id", userID as Any), ("email", email as Any), ("sid", sid as Any), ("ip", ip as Any), ("user_agent", userAgent as Any),
            ("request_id", requestID as Any), ("trace_id", traceID as Any), ("actor", actor.rawValue),
        ]
        if let error { fields.append(("error", error)) }
        if let details, !details.isEmpty { fields.append(("details", details)) }
        var line = "{"
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { line += "," }
            line += Self.quoted(key) + ":" + Self.json(value)
        }
        return line + "}\n"
    }

    private static func json(_ value: Any) -> String {
        switch value {
        case let text as String: return quoted(text)
        case let object as [String: String]:
            return "{" + object.keys.sorted().map { quoted($0) + ":" + quoted(object[$0]!) }.joined(separator: ",") + "}"
        case let optional as String?: return optional.map(quoted) ?? "null"
        default: return "null"
        }
    }

    /// A JSON string: quotes, backslashes and every control character escaped, so no value can break the line.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min,
            parts.tm_sec, Int32(milliseconds % 1000))
    }
}

/// The events of §10.
public enum AuditEventKind: String, Sendable, CaseIterable {
    case signup, signupError = "signup_error", login, loginError = "login_error", lockout, logout
    case refreshReuse = "refresh_reuse", passwordChange = "password_change", passwordResetRequest = "password_reset_request"
    case passwordReset = "password_reset", emailVerified = "email_verified", sessionStart = "session_start", sessionEnd = "session_end"
    case userAdded = "user_added", userDisabled = "user_disabled", rolesChanged = "roles_changed", usersImported = "users_imported"
    case keyRotated = "key_rotated"
    /// A message of §11 that could not be delivered: refused by the server, or still failing when its retries ran out.
    case emailDeliveryError = "email_delivery_error"
}

/// Who caused an event: a user's request, an operator's command, or the gateway itself.
public enum AuditActor: String, Sendable {
    case user, cli, system
}

/// Where an event came from: the request (client address after `trusted_proxies`, `User-Agent`, request and trace
/// ids) or the command line.
public struct AuditContext: Sendable, Equatable {
    public var actor: AuditActor
    public var ip: String?
    public var userAgent: String?
    public var requestID: String?
    public var traceID: String?

    public init(actor: AuditActor, ip: String? = nil, userAgent: String? = nil, requestID: String? = nil, traceID: String? = nil) {
        self.actor = actor
        self.ip = ip
        self.userAgent = userAgent
        self.requestID = requestID
        self.traceID = traceID
    }

    /// A command of `gatehouse` (users, keys).
    public static let cli = AuditContext(actor: .cli)
    /// The gateway on its own account.
    public static let system = AuditContext(actor: .system)

    /// A user-agent string is the client's to choose: kept to 256 bytes on a character boundary.
    public static func request(ip: String?, userAgent: String?, requestID: String?, traceID: String?) -> AuditContext {
        var agent = userAgent
        if let text = agent, text.utf8.count > 256 {
            var cut = ""
            for character in text {
                if cut.utf8.count + character.utf8.count > 256 { break }
                cut.append(character)
            }
            agent = cut
        }
        return AuditContext(actor: .user, ip: ip, userAgent: agent, requestID: requestID, traceID: traceID)
    }
}

/// What `gatehouse audit` asks for: a tenant's events, optionally of one address or kind, since a time; the newest
/// `limit` of them, returned oldest first.
public struct AuditQuery: Sendable, Equatable {
    public var tenant: String
    public var email: String?
    public var event: AuditEventKind?
    /// Milliseconds since 1970; nil: all.
    public var since: Int64?
    public var limit: Int

    public init(tenant: String, email: String? = nil, event: AuditEventKind? = nil, since: Int64? = nil, limit: Int = 100) {
        self.tenant = tenant
        self.email = email
        self.event = event
        self.since = since
        self.limit = limit
    }
}
