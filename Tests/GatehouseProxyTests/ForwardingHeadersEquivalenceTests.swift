import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing
@testable import GatehouseProxy

/// The header paths build `HTTPHeaders` from an array in one go instead of `add`ing field by field (which checks
/// each name for ASCII and for `Connection`). On generated header lists, the fast path must be the slow one: the
/// same fields in the same order with the same keep-alive reading, and the response filter must agree with a
/// naive filter written from §6.2 alone.
@Suite struct ForwardingHeadersEquivalenceTests {
    static let names = [
        "Content-Type", "content-type", "Connection", "connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "TE", "Trailer",
        "Proxy-Connection", "Proxy-Authenticate", "X-Request-Id", "x-request-id", "Set-Cookie", "set-cookie", "Cache-Control", "X-Custom",
        "X-Hop", "x-hop", "ETag", "Vary", "HTTP2-Settings", "Location",
    ]
    static let values = [
        "close", "keep-alive", "Keep-Alive, X-Hop", "x-hop", "upgrade", "text/plain", "a=1", "gatehouse_session=x; Path=/",
        " Gatehouse_Session =y", "gatehouse_csrf=z", "theirs=1; HttpOnly", "chunked", "", "no-store", "w/\"1\"", "X-Custom , close",
    ]

    static func generated(_ count: Int, seed: UInt64) -> [[(String, String)]] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            (0..<Int.random(in: 0...12, using: &random)).map { _ in
                (names.randomElement(using: &random)!, values.randomElement(using: &random)!)
            }
        }
    }

    static func pairs(_ headers: HTTPHeaders) -> [[String]] { headers.map { [$0.name, $0.value] } }

    @Test func headersFromAnArrayEqualHeadersAddedOneByOne() {
        for fields in Self.generated(2000, seed: 1) {
            let fast = HTTPHeaders(fields)
            var slow = HTTPHeaders()
            for (name, value) in fields { slow.add(name: name, value: value) }
            #expect(Self.pairs(fast) == Self.pairs(slow))
            for version in [HTTPVersion.http1_0, .http1_1] {
                #expect(
                    HTTPRequestHead(version: version, method: .GET, uri: "/", headers: fast).isKeepAlive
                        == HTTPRequestHead(version: version, method: .GET, uri: "/", headers: slow).isKeepAlive)
                #expect(
                    HTTPResponseHead(version: version, status: .ok, headers: fast).isKeepAlive
                        == HTTPResponseHead(version: version, status: .ok, headers: slow).isKeepAlive)
            }
        }
    }

    /// §6.2 read plainly: hop-by-hop headers, the ones `Connection` names, the upstream's `X-Request-Id` and its
    /// `Set-Cookie` for a gateway cookie go; everything else stays in order; the gateway's `X-Request-Id` ends it.
    static func naiveResponseFilter(_ fields: [(String, String)], requestID: String) -> [[String]] {
        let hopByHop: Set = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                             "proxy-authenticate", "proxy-authorization", "http2-settings"]
        let listed = Set(fields.filter { $0.0.lowercased() == "connection" }.flatMap { $0.1.split(separator: ",") }
            .map { $0.trimmingCharacters(in: [" ", "\t"]).lowercased() })
        var kept: [[String]] = []
        for (name, value) in fields {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || lower == "x-request-id" || listed.contains(lower) { continue }
            if lower == "set-cookie" {
                let cookie = value.prefix { $0 != "=" && $0 != ";" }.trimmingCharacters(in: [" ", "\t"]).lowercased()
                if ForwardingHeaders.gatewayCookieNames.contains(where: { $0.lowercased() == cookie }) { continue }
            }
            kept.append([name, value])
        }
        return kept + [["X-Request-Id", requestID]]
    }

    @Test func theResponseFilterAgreesWithANaiveOne() {
        for fields in Self.generated(2000, seed: 2) {
            let filtered = ForwardingHeaders.clientResponseHeaders(from: HTTPHeaders(fields), requestID: "rid", keepUpgrade: false)
            #expect(Self.pairs(filtered) == Self.naiveResponseFilter(fields, requestID: "rid"), "\(fields)")
        }
    }

    /// Cookie headers made of the pieces that matter to the session-cookie filter: its name in and out of place,
    /// blanks, empty pairs, quotes and look-alikes.
    static func cookieHeaders(_ count: Int, seed: UInt64) -> [String] {
        let pieces = [
            "gatehouse_session", "=", ";", " ", "\t", "\"", "a", "x=1", "gatehouse_session=v", "gatehouse_sessionX=1", "GATEHOUSE_SESSION=u",
            " gatehouse_session =w", "; ", ";;", "theme=dark", "=v", "gatehouse_csrf=t",
        ]
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            (0..<Int.random(in: 0...8, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
        }
    }

    @Test func theSessionCookieFilterOnBytesEqualsTheOneOnCharacters() {
        for header in Self.cookieHeaders(5000, seed: 3) {
            let fast = ForwardingHeaders.asciiRemovingSessionCookie(header)
            #expect(fast != nil, "plain ASCII takes the byte path")
            #expect(fast ?? nil == ForwardingHeaders.characterRemovingSessionCookie(header), "\(header.debugDescription)")
        }
        // Not plain ASCII: the character path.
        #expect(ForwardingHeaders.asciiRemovingSessionCookie("gatehouse_session=\u{301}x; a=é") == nil)
        #expect(ForwardingHeaders.removingSessionCookie("a=é; gatehouse_session=x") == "a=é")
    }
}
