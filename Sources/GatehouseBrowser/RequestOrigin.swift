import Foundation

/// The site an unsafe browser request came from, for the Origin/Referer rule of §7.
public enum RequestOrigin {
    /// The `host[:port]` of `Origin`, or, lacking it, of `Referer`; nil when neither names an http(s) origin
    /// (absent, `null`, or not a URL).
    public static func host(origin: String?, referer: String?) -> String? {
        if let origin {
            return authority(of: origin)
        }
        return referer.flatMap(authority(of:))
    }

    private static func authority(of text: String) -> String? {
        guard let components = URLComponents(string: text.trimmingCharacters(in: .whitespaces)),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            var host = components.host, !host.isEmpty, components.user == nil, components.password == nil
        else { return nil }
        if host.contains(":"), !host.hasPrefix("[") { host = "[" + host + "]" }
        if let port = components.port { return host + ":" + String(port) }
        return host
    }
}
