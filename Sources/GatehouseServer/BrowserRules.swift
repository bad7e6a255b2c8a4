import GatehouseBrowser
import GatehouseProxy
import NIOHTTP1

/// The request handler's decisions about browsers and bodies that need nothing of its state.
enum BrowserRules {
    /// 302 to the tenant's login page with the way back (§6.3); a session cookie that did not work is cleared.
    static func loginRedirect(_ target: RequestTarget, clearingCookie: Bool, secure: Bool) -> ProblemResponse {
        var back = target.path
        if let query = target.query { back += "?" + query }
        var headers = [("Location", "/auth/login?rd=" + BrowserPages.queryEscaped(back))]
        if clearingCookie { headers.append(("Set-Cookie", BrowserCookie.clearSession(secure: secure))) }
        return ProblemResponse(.found, "Sign in first: this route requires authentication.", headers: headers)
    }

    /// Every method but GET, HEAD and OPTIONS (§7): a cookie-authenticated request with one of them must come
    /// from the tenant's own site. An allow-list of safe methods, so WebDAV's PROPFIND or MKCOL, PURGE, or any
    /// extension method is covered too.
    static func needsSameSiteOrigin(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS: return false
        default: return true
        }
    }

    /// Whether a request we answer without reading carries so much body that closing beats draining it.
    static func hasLargeBody(_ facts: RequestHeaderFacts) -> Bool {
        if let length = facts.contentLength { return length > 1 << 20 }
        return facts.hasTransferEncoding
    }
}
