/// A `host:port` to listen on. `:8080` and `0.0.0.0:8080` listen on every IPv4 interface.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func parse(_ text: String) -> ListenAddress? {
        var authority = Substring(text)
        if authority.hasPrefix(":") { authority = "0.0.0.0" + authority }
        guard let (host, port) = splitHostPort(authority, defaultPort: nil), !host.isEmpty else { return nil }
        return ListenAddress(host: host, port: port)
    }
}
