import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import GatehouseProxy
import GatehouseTestSupport

/// The upstream connection writes requests with its own ``UpstreamRequestEncoder``, which trusts
/// ``UpstreamRequestPlan``'s framing as the stock encoder does with `automaticallySetFramingHeaders` off. On generated
/// requests: its bytes are the stock encoder's, byte for byte, and what an upstream's parser reads
/// from them equals what it reads from the stock encoder framing a request itself: the fast path is the slow path.
@Suite struct UpstreamEncodingEquivalenceTests {
    struct Seen: Equatable {
        var method: HTTPMethod
        var uri: String
        var headers: [String]
        var body: [UInt8]
        var requests: Int
    }

    /// The bytes of head, body parts and end from the stock encoder with one configuration.
    func stockBytes(_ head: HTTPRequestHead, _ parts: [[UInt8]], trailers: HTTPHeaders? = nil, automaticFraming: Bool) throws -> ByteBuffer {
        var configuration = HTTPRequestEncoder.Configuration()
        configuration.automaticallySetFramingHeaders = automaticFraming
        let encoder = EmbeddedChannel(handler: HTTPRequestEncoder(configuration: configuration))
        try encoder.writeOutbound(HTTPClientRequestPart.head(head))
        for part in parts { try encoder.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: part)))) }
        try encoder.writeOutbound(HTTPClientRequestPart.end(trailers))
        var wire = ByteBuffer()
        while var chunk = try encoder.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&chunk) }
        _ = try encoder.finish()
        return wire
    }

    /// The bytes the upstream connection's own encoder writes for the same parts, flushed once at the end.
    func handlerBytes(_ head: HTTPRequestHead, _ parts: [[UInt8]], trailers: HTTPHeaders? = nil) throws -> ByteBuffer {
        let channel = EmbeddedChannel(handler: UpstreamRequestEncoder())
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        for part in parts { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: part))), promise: nil) }
        channel.write(HTTPClientRequestPart.end(trailers), promise: nil)
        channel.flush()
        var wire = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&chunk) }
        _ = try channel.finish()
        return wire
    }

    /// Encodes head, body parts and end with one encoder configuration, then decodes the bytes afresh.
    func upstreamView(_ head: HTTPRequestHead, _ parts: [[UInt8]], automaticFraming: Bool) throws -> Seen {
        try decode(stockBytes(head, parts, automaticFraming: automaticFraming))
    }

    func decode(_ wire: ByteBuffer) throws -> Seen {
        let decoder = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
        try decoder.writeInbound(wire)
        var seen = Seen(method: .GET, uri: "", headers: [], body: [], requests: 0)
        while let part = try decoder.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let decoded):
                seen.requests += 1
                seen.method = decoded.method
                seen.uri = decoded.uri
                // Framing headers are where the two encoders may differ; everything else must not.
                seen.headers = decoded.headers.filter { !["content-length", "transfer-encoding"].contains($0.name.lowercased()) }
                    .map { "\($0.name.lowercased()): \($0.value)" }
            case .body(let buffer): seen.body += buffer.readableBytesView
            case .end: break
            }
        }
        _ = try decoder.finish()
        return seen
    }

    @Test func theUntouchedFramingIsTheStockEncodersFraming() throws {
        var state: UInt64 = 0x0dd5eed
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        let policy = ForwardingHeaders.RequestPolicy(reservedHeaderNames: ["x-user-id"], forwardAuthorization: false)
        let connection = ClientConnectionInfo(peerAddress: "192.0.2.1", peerIsTrusted: false, scheme: "http")
        for index in 0..<500 {
            let body = (0..<next(400)).map { _ in UInt8(truncatingIfNeeded: next(256)) }
            let framing: RequestFraming = [.none, .contentLength(body.count), .chunked][next(3)]
            let sent = framing == .none ? [] : body
            var parts: [[UInt8]] = []
            var offset = 0
            while offset < sent.count {
                let size = min(sent.count - offset, 1 + next(120))
                parts.append(Array(sent[offset..<offset + size]))
                offset += size
            }
            var incoming = HTTPHeaders([("Host", "acme.test"), ("X-Request-Id", "client")])
            let connectionTokens = ["content-length", "transfer-encoding", "host", "keep-alive", "x-custom"]
            if next(2) == 0 { incoming.add(name: "Connection", value: connectionTokens[next(connectionTokens.count)]) }
            if next(2) == 0 { incoming.add(name: "Content-Length", value: String(next(1000))) }
            if next(3) == 0 { incoming.add(name: "Transfer-Encoding", value: "chunked") }
            if next(2) == 0 { incoming.add(name: "X-Custom", value: "c\(index)") }
            let plan = UpstreamRequestPlan(
                method: [.GET, .POST, .PUT, .DELETE][next(4)], uri: "/r/\(index)", framing: framing, isWebSocketUpgrade: false,
                identityHeaders: [("X-User-Id", "u\(index)")])
            let head = plan.makeHead(from: incoming, facts: RequestHeaderFacts(incoming), policy: policy, connection: connection, requestID: "r\(index)")

            let fast = try upstreamView(head, parts, automaticFraming: false)
            let slow = try upstreamView(head, parts, automaticFraming: true)
            #expect(fast == slow, "case \(index): \(framing)")
            #expect(fast.requests == 1 && fast.body == sent, "case \(index): one request carrying exactly the body")
        }
    }

    @Test func theConnectionHandlerWritesTheStockEncodersBytes() throws {
        var generator = SeededGenerator(seed: 0x5e71a112e)
        func next(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &generator) }
        let methods: [HTTPMethod] = [.GET, .POST, .PUT, .DELETE, .HEAD, .OPTIONS, .PATCH, .RAW(value: "PROPFIND")]
        for index in 0..<400 {
            let chunked = next(2) == 0
            let version: HTTPVersion = next(8) == 0 ? .http1_0 : .http1_1
            var headers = HTTPHeaders([("Host", "acme.test"), ("X-Request-Id", "r\(index)")])
            for extra in 0..<next(6) { headers.add(name: "X-Extra-\(extra)", value: String(repeating: "v", count: next(40))) }
            // Parts small (copied into one buffer) and large (written as they are), empty ones too.
            var parts: [[UInt8]] = []
            for _ in 0..<next(5) {
                let size = [0, 1 + next(200), UpstreamRequestEncoder.uncopiedBodyPart + next(5000)][next(3)]
                parts.append((0..<size).map { _ in UInt8(truncatingIfNeeded: next(256)) })
            }
            let total = parts.reduce(0) { $0 + $1.count }
            if chunked { headers.add(name: "Transfer-Encoding", value: "chunked") } else if total > 0 {
                headers.add(name: "Content-Length", value: String(total))
            }
            let trailers: HTTPHeaders? = chunked && next(3) == 0 ? HTTPHeaders([("X-Checksum", "c\(index)")]) : nil
            let head = HTTPRequestHead(
                version: version, method: methods[next(methods.count)], uri: "/r/\(index)?q=\(next(100))", headers: headers)
            let stock = try stockBytes(head, parts, trailers: trailers, automaticFraming: false)
            let own = try handlerBytes(head, parts, trailers: trailers)
            #expect(own == stock, "case \(index): \(chunked ? "chunked" : "length"), \(parts.map(\.count)) bytes")
        }
    }
}
