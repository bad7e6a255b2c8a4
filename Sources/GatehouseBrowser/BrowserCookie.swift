/// The gateway's browser cookies: reading them from `Cookie` and writing `Set-Cookie` (RFC 6265).
public enum BrowserCookie {
    /// The session cookie of §7. Never passed upstream.
    public static let session = "gatehouse_session"
    /// Binds the login and signup forms' CSRF tokens to one browser; only sent to `/auth/`.
    public static let formBinding = "gatehouse_csrf"

    /// The first value of cookie `name` in these `Cookie` header values.
    public static func value(named name: String, in headers: [String]) -> String? {
        values(named: name, in: headers).first
    }

    /// Every value of cookie `name` in these `Cookie` header values, in order: a browser sends several cookies of
    /// one name when they differ in `Domain` or `Path`, and which one comes first is up to it (§7).
    public static func values(named name: String, in headers: [String]) -> [String] {
        var values: [String] = []
        for header in headers {
            for pair in header.split(separator: ";") {
                let pair = pair.drop(while: { $0 == " " })
                guard let equals = pair.firstIndex(of: "="), pair[..<equals] == name else { continue }
                var value = pair[pair.index(after: equals)...]
                while value.last == " " { value = value.dropLast() }
                if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
                values.append(String(value))
            }
        }
        return values
    }

    /// `Set-Cookie` for the session: HttpOnly, SameSite=Lax, Path=/, Secure when served over TLS. It lasts until the
    /// session's absolute end; the idle timeout is enforced by the gateway, which cannot be fooled by the browser.
    public static func setSession(_ value: String, maxAge: Int64, secure: Bool) -> String {
        attributes("\(session)=\(value)", path: "/", maxAge: max(0, maxAge), secure: secure)
    }

    /// `Set-Cookie` that removes the session cookie.
    public static func clearSession(secure: Bool) -> String {
        attributes("\(session)=", path: "/", maxAge: 0, secure: secure)
    }

    /// `Set-Cookie` for the forms' CSRF binding: for this browser session only, and only sent to `/auth/`.
    public static func setFormBinding(_ value: String, secure: Bool) -> String {
        attributes("\(formBinding)=\(value)", path: "/auth/", maxAge: nil, secure: secure)
    }

    private static func attributes(_ pair: String, path: String, maxAge: Int64?, secure: Bool) -> String {
        var cookie = pair + "; Path=" + path
        if let maxAge { cookie += "; Max-Age=\(maxAge)" }
        cookie += "; HttpOnly; SameSite=Lax"
        if secure { cookie += "; Secure" }
        return cookie
    }
}
