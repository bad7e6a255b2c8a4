/// Where a route forwards to: `http://host[:port][/base/path]`.
///
/// Only plain HTTP/1.1 upstreams are supported; the gateway usually sits next to the APIs it fronts.
public struct UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// A path prefix to put in front of every forwarded path, without a trailing slash ("" for none).
    public var basePath: String

    public init(host: String, port: Int, basePath: String = "") {
        self.host = host
        self.port = port
        self.basePath = basePath
    }

    /// `http://host:port`, the upstream's origin (the `aud` of an identity assertion).
    public var origin: String {
        let printedHost = host.contains(":") ? "[\(host)]" : host
        return "http://\(printedHost):\(port)"
    }

    public var description: String { origin + basePath }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unsupportedScheme(String)
        case malformed(String)

        public var description: String {
            switch self {
            case .unsupportedScheme(let scheme):
                return "upstream scheme '\(scheme)' is not supported (use http://host:port)"
            case .malformed(let reason):
                return reason
            }
        }
    }

    public static func parse(_ text: String) -> Result<UpstreamURL, ParseError> {
        guard let schemeEnd = text.range(of: "://") else {
            return .failure(.malformed("'\(text)' is not a URL (expected http://host:port)"))
        }
        let scheme = text[text.startIndex..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" else { return .failure(.unsupportedScheme(scheme)) }
        let afterScheme = text[schemeEnd.upperBound...]
        if afterScheme.contains("?") || afterScheme.contains("#") {
            return .failure(.malformed("upstream URL '\(text)' must not have a query or fragment"))
        }
        if afterScheme.contains("@") {
            return .failure(.malformed("upstream URL '\(text)' must not carry credentials"))
        }
        let authority: Substring
        var path: Substring
        if let slash = afterScheme.firstIndex(of: "/") {
            authority = afterScheme[afterScheme.startIndex..<slash]
            path = afterScheme[slash...]
        } else {
            authority = afterScheme
            path = ""
        }
        while path.hasSuffix("/") { path = path.dropLast() }
        guard let (host, port) = splitHostPort(authority, defaultPort: 80), !host.isEmpty else {
            return .failure(.malformed("upstream URL '\(text)' has no valid host[:port]"))
        }
        guard path.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "%" && $0 != "\\" }) else {
            return .failure(.malformed("upstream URL '\(text)' has an invalid path"))
        }
        return .success(UpstreamURL(host: host.lowercased(), port: port, basePath: String(path)))
    }
}

/// Splits `host:port`, `[v6]:port`, `host` (with the default port).
func splitHostPort(_ authority: Substring, defaultPort: Int?) -> (String, Int)? {
    var host: Substring
    var portText: Substring?
    if authority.hasPrefix("[") {
        guard let close = authority.firstIndex(of: "]") else { return nil }
        host = authority[authority.index(after: authority.startIndex)..<close]
        let after = authority[authority.index(after: close)...]
        if after.isEmpty {
            portText = nil
        } else if after.hasPrefix(":") {
            portText = after.dropFirst()
        } else {
            return nil
        }
    } else if let colon = authority.lastIndex(of: ":") {
        host = authority[authority.startIndex..<colon]
        portText = authority[authority.index(after: colon)...]
        if host.contains(":") { return nil }
    } else {
        host = authority
        portText = nil
    }
    let port: Int
    if let portText {
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let value = Int(portText), value <= 65535
        else { return nil }
        port = value
    } else {
        guard let defaultPort else { return nil }
        port = defaultPort
    }
    guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._:".contains($0)) }) else { return nil }
    return (String(host), port)
}
