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
            // Every session-cookie request reads its Cookie header here: bytes, unless the header is not plain ASCII.
            guard let fast = asciiValues(named: name, in: header) else {
                values.append(contentsOf: characterValues(named: name, in: header))
                continue
            }
            values.append(contentsOf: fast)
        }
        return values
    }

    /// ``values(named:in:)`` for one header, by `Character`: the reference, and the path for a header that is not
    /// plain ASCII (where a combining mark after `=` or `;` makes one `Character` of both).
    static func characterValues(named name: String, in header: String) -> [String] {
        var values: [String] = []
        do {
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

    /// ``characterValues(named:in:)`` on the UTF-8 bytes, for a header of printable ASCII and tabs (where each byte
    /// is a `Character`, so the two agree: `BrowserCookieTests` checks them on generated headers); nil otherwise.
    static func asciiValues(named name: String, in header: String) -> [String]? {
        var header = header
        var name = name
        return header.withUTF8 { bytes -> [String]? in
            name.withUTF8 { name -> [String]? in
                guard bytes.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 < 0x7F) }),
                    name.allSatisfy({ $0 >= 0x20 && $0 < 0x7F })
                else { return nil }
                var values: [String] = []
                var start = 0
                while start < bytes.count {
                    var end = start
                    while end < bytes.count, bytes[end] != UInt8(ascii: ";") { end += 1 }
                    defer { start = end + 1 }
                    var first = start
                    while first < end, bytes[first] == UInt8(ascii: " ") { first += 1 }
                    guard let equals = (first..<end).first(where: { bytes[$0] == UInt8(ascii: "=") }),
                        equals - first == name.count, (0..<name.count).allSatisfy({ bytes[first + $0] == name[$0] })
                    else { continue }
                    var valueStart = equals + 1
                    var valueEnd = end
                    while valueEnd > valueStart, bytes[valueEnd - 1] == UInt8(ascii: " ") { valueEnd -= 1 }
                    if valueEnd - valueStart >= 2, bytes[valueStart] == UInt8(ascii: "\""), bytes[valueEnd - 1] == UInt8(ascii: "\"") {
                        valueStart += 1
                        valueEnd -= 1
                    }
                    values.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[valueStart..<valueEnd]), as: UTF8.self))
                }
                return values
            }
        }
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
