import GatehouseProxy
import NIOHTTP1

/// The request-header pass (`RequestHeaderFacts`), the framing decision and the upstream request plan on arbitrary
/// header lists (`name: value` lines): nothing traps, and the upstream head is framed exactly once, by the plan, with
/// none of the client's gateway-owned headers.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // Only what NIO's HTTP/1 decoder can deliver: token names, values without control characters but tab.
    var headers = HTTPHeaders()
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = line[..<colon]
        let value = line[line.index(after: colon)...]
        guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte), value.utf8.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            continue
        }
        headers.add(name: String(name), value: String(value))
    }
    let facts = RequestHeaderFacts(headers)
    _ = facts.acceptsHTML
    _ = facts.requestsWebSocket
    guard case .success(let framing) = RequestFraming.decide(facts, version: .http1_1) else { return 0 }
    let policy = ForwardingHeaders.RequestPolicy(reservedHeaderNames: ["x-user-id", "x-user-roles", "x-identity-assertion"], forwardAuthorization: false)
    let connection = ClientConnectionInfo(peerAddress: "192.0.2.1", peerIsTrusted: size % 2 == 0, scheme: "http")
    let plan = UpstreamRequestPlan(
        method: .POST, uri: "/", framing: framing, isWebSocketUpgrade: facts.requestsWebSocket, identityHeaders: [("X-User-Id", "gateway")])
    let head = plan.makeHead(from: headers, facts: facts, policy: policy, connection: connection, requestID: "fuzz")
    let lengths = head.headers["content-length"].count
    let encodings = head.headers["transfer-encoding"].count
    precondition(lengths + encodings <= 1, "framed twice: \(head.headers)")
    switch framing {
    case .none: precondition(lengths + encodings == 0)
    case .contentLength(let length): precondition(head.headers["content-length"] == [String(length)])
    case .chunked: precondition(head.headers["transfer-encoding"] == ["chunked"])
    }
    precondition(head.headers["x-user-id"] == ["gateway"], "a client identity header survived: \(head.headers)")
    precondition(head.headers["x-request-id"] == ["fuzz"])
    precondition(head.headers["host"].count <= 1)
    for (name, _) in head.headers {
        let folded = name.lowercased().replacingOccurrences(of: "_", with: "-")
        precondition(folded != "x-user-roles" && folded != "x-identity-assertion", "a reserved look-alike survived: \(name)")
        precondition(folded != "http2-settings" && (folded != "upgrade" || facts.requestsWebSocket), "an upgrade survived: \(name)")
    }
    return 0
}

private func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return true
    default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}
