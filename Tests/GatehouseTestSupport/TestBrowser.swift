import Foundation

/// Just enough of a browser for end-to-end tests of §7: a cookie jar fed by `Set-Cookie`, `Accept: text/html` on
/// navigation, an `Origin` on form posts, and the CSRF token read from the last page.
public struct TestBrowser: Sendable {
    public let port: Int
    public var host = "acme.test"
    /// Cookie name to value, as the gateway set them.
    public var cookies: [String: String] = [:]
    /// The `csrf_token` of the last page that had a form.
    public var csrfToken = ""

    public init(port: Int, host: String = "acme.test") {
        self.port = port
        self.host = host
    }

    public var origin: String { "http://\(host):\(port)" }

    /// A navigation: `GET` asking for HTML, with the jar's cookies.
    public mutating func open(_ path: String, headers: [(String, String)] = []) async throws -> TestResponse {
        let response = try await requestOffThread(
            port: port, path, host: host, headers: [("Accept", "text/html,application/xhtml+xml;q=0.9")] + cookieHeader + headers)
        take(response)
        return response
    }

    /// Submits a form the way a browser does: urlencoded, with `Origin`, the cookies and (unless given) the page's token.
    public mutating func submit(_ path: String, _ fields: [(String, String)], origin: String?? = nil, headers: [(String, String)] = [])
        async throws -> TestResponse
    {
        var fields = fields
        if !fields.contains(where: { $0.0 == "csrf_token" }) { fields.append(("csrf_token", csrfToken)) }
        let body = fields.map { "\(Self.formEscaped($0.0))=\(Self.formEscaped($0.1))" }.joined(separator: "&")
        var sent = [("Content-Type", "application/x-www-form-urlencoded")] + cookieHeader + headers
        if let origin = origin ?? self.origin { sent.append(("Origin", origin)) }
        let response = try await requestOffThread(port: port, path, method: "POST", host: host, headers: sent, body: body)
        take(response)
        return response
    }

    /// Any other request, with the jar's cookies.
    public func send(_ path: String, method: String = "GET", headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
        try await requestOffThread(port: port, path, method: method, host: host, headers: cookieHeader + headers, body: body)
    }

    public var cookieHeader: [(String, String)] {
        cookies.isEmpty ? [] : [("Cookie", cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))]
    }

    private mutating func take(_ response: TestResponse) {
        for setCookie in response.headers("set-cookie") {
            let pair = setCookie.split(separator: ";")[0]
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]) : ""
            if setCookie.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = value }
        }
        if let token = Self.formField("csrf_token", in: response.text) { csrfToken = token }
    }

    /// The `value` of the hidden input `name` in a page.
    public static func formField(_ name: String, in html: String) -> String? {
        guard let start = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        let rest = html[start.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    public static func formEscaped(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}
