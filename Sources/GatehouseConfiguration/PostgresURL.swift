import Foundation

/// `store: postgres://user:pass@host:5432/db?sslmode=...&sslrootcert=path` (§2, §9), parsed and checked for
/// syntax only: whether the server answers is found out when the store opens.
///
/// The password is kept out of ``description`` (and so out of every log line and error that prints the URL).
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    /// How the connection is protected, with libpq's names and meanings.
    public enum SSLMode: String, Sendable, Hashable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS or no connection; the certificate is not checked (as libpq's `require` without a root certificate).
        case require
        /// TLS, with the certificate checked against `sslrootcert` (or the system's roots) and the host name.
        case verifyFull = "verify-full"
    }

    public var username: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode
    /// A PEM file of the certificate authorities to trust (resolved against the configuration file's folder).
    public var sslRootCertificatePath: String?

    public init(
        username: String, password: String?, host: String, port: Int = 5432, database: String, sslMode: SSLMode = .disable,
        sslRootCertificatePath: String? = nil
    ) {
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.sslMode = sslMode
        self.sslRootCertificatePath = sslRootCertificatePath
    }

    /// The URL with the password replaced by `***`: safe for logs and errors.
    public var description: String {
        var text = "postgres://" + Self.percentEncode(username)
        if password != nil { text += ":***" }
        let printedHost = host.contains(":") ? "[\(host)]" : host
        text += "@\(printedHost):\(port)/\(Self.percentEncode(database))?sslmode=\(sslMode.rawValue)"
        if let sslRootCertificatePath { text += "&sslrootcert=\(sslRootCertificatePath)" }
        return text
    }

    /// Parses `text`; relative `sslrootcert` paths are resolved against `directory`. Errors never repeat the password.
    public static func parse(_ text: String, relativeTo directory: String) -> Result<PostgresURL, ParseError> {
        let scheme: String
        if text.hasPrefix("postgres://") {
            scheme = "postgres://"
        } else if text.hasPrefix("postgresql://") {
            scheme = "postgresql://"
        } else {
            return .failure(ParseError("must start with postgres://"))
        }
        var rest = Substring(text.dropFirst(scheme.count))
        if rest.contains("#") { return .failure(ParseError("must not have a #fragment")) }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            return .failure(ParseError("names no database (postgres://user:pass@host:5432/DATABASE)"))
        }
        let authority = rest[..<slash]
        guard let database = percentDecode(rest[rest.index(after: slash)...]), !database.isEmpty, !database.contains("/") else {
            return .failure(ParseError("names no database (postgres://user:pass@host:5432/DATABASE)"))
        }
        guard let at = authority.lastIndex(of: "@") else {
            return .failure(ParseError("names no user (postgres://USER:pass@host:5432/db)"))
        }
        let userInfo = authority[..<at]
        let hostPort = authority[authority.index(after: at)...]
        let username: String
        var password: String?
        if let colon = userInfo.firstIndex(of: ":") {
            guard let user = percentDecode(userInfo[..<colon]), let secret = percentDecode(userInfo[userInfo.index(after: colon)...]) else {
                return .failure(ParseError("has a malformed %-escape in its user or password"))
            }
            username = user
            password = secret
        } else {
            guard let user = percentDecode(userInfo) else { return .failure(ParseError("has a malformed %-escape in its user")) }
            username = user
        }
        guard !username.isEmpty else { return .failure(ParseError("names no user (postgres://USER:pass@host:5432/db)")) }
        guard let (host, port) = parseHostPort(hostPort) else {
            return .failure(ParseError("has a malformed host or port (postgres://user:pass@HOST:PORT/db, port 1-65535)"))
        }
        var url = PostgresURL(username: username, password: password, host: host, port: port, database: database)
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard parts.count == 2, let value = percentDecode(parts[1]), !value.isEmpty else {
                // Neither the name nor the value is repeated: a password with an unescaped `?` ends up here.
                return .failure(ParseError("has a query parameter without a value (known: sslmode, sslrootcert)"))
            }
            switch name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    return .failure(ParseError("sslmode must be one of disable, require, verify-full"))
                }
                url.sslMode = mode
            case "sslrootcert":
                url.sslRootCertificatePath = FilePath.resolve(value, against: directory)
            default:
                return .failure(ParseError("has an unknown query parameter (known: sslmode, sslrootcert; a password with ?, @ or / must be %-escaped)"))
            }
        }
        if url.sslRootCertificatePath != nil, url.sslMode == .disable {
            return .failure(ParseError("sslrootcert needs sslmode=require or verify-full"))
        }
        return .success(url)
    }

    /// Why a URL was refused; never contains the password.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    private static func parseHostPort(_ text: Substring) -> (String, Int)? {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || "-._:".contains($0) }) else { return nil }
        var port = 5432
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII), let value = Int(portText), (1...65535).contains(value)
            else { return nil }
            port = value
        }
        return (String(host), port)
    }

    private static func percentDecode(_ text: Substring) -> String? {
        // nil for a malformed escape such as `%zz`.
        String(text).removingPercentEncoding
    }

    private static func percentEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
