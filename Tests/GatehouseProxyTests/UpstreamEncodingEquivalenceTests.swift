import Foundation
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

    /// Encodes head, body parts and end with the stock encoder in one configuration, then decodes the bytes afresh.
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

    /// The plan's framing, written by the gateway's encoder, reads as the stock encoder framing the request itself.
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

            let fast = try decode(handlerBytes(head, parts))
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
                // Random bytes for the small ones; a large one repeats a random byte (a byte per draw would make this
                // test spend seconds of the cooperative pool, which other suites' timeouts share).
                switch next(3) {
                case 0: parts.append([])
                case 1: parts.append((0..<1 + next(200)).map { _ in UInt8(truncatingIfNeeded: next(256)) })
                default: parts.append([UInt8](repeating: UInt8(truncatingIfNeeded: next(256)), count: UpstreamRequestEncoder.uncopiedBodyPart + next(5000)))
                }
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

    /// Removed for a tunnel with bytes not yet flushed: they still go, before anything the tunnel writes.
    @Test func bytesPendingWhenTheEncoderIsRemovedStillGo() throws {
        let encoder = UpstreamRequestEncoder()
        let channel = EmbeddedChannel(handler: encoder)
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws", headers: ["Host": "acme.test", "Upgrade": "websocket"])
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.end(nil), promise: nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "held until the flush")
        try channel.pipeline.syncOperations.removeHandler(encoder).wait()
        channel.write(ByteBuffer(string: "tunnelled"), promise: nil)
        channel.flush()
        var wire = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&chunk) }
        #expect(String(buffer: wire) == "GET /ws HTTP/1.1\r\nHost: acme.test\r\nUpgrade: websocket\r\n\r\ntunnelled")
        _ = try channel.finish()
    }

    /// What h11 (the parser of Python's servers) read from the encoder's bytes.
    struct PythonView: Decodable {
        struct Request: Decodable, Equatable {
            var method: String
            var target: String
            var headers: [[String]]
            var body: String
            var trailers: [[String]]
        }

        var requests: [Request]
        var error: String?
        var leftover: Int
    }

    /// The upstream's view through a parser that is neither swift-nio's nor llhttp: generated requests, one connection
    /// after another as the pool reuses it, each exactly as sent (bodies are ASCII, and h11's body comes back as text), with bodies that are themselves requests, and
    /// nothing left over.
    @Test func aPythonServerReadsEveryRequestAsItWasSent() async throws {
        var generator = SeededGenerator(seed: 0x0011_a11e)
        func next(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &generator) }
        let channel = EmbeddedChannel(handler: UpstreamRequestEncoder())
        var expected: [PythonView.Request] = []
        for index in 0..<200 {
            let method = ["GET", "POST", "PUT", "DELETE", "PATCH"][next(5)]
            let chunked = next(2) == 0
            var parts: [String] = []
            for _ in 0..<next(4) {
                switch next(4) {
                case 0: parts.append("GET /admin HTTP/1.1\r\nHost: acme.test\r\nX-User-Id: forged\r\n\r\n")
                case 1: parts.append("0\r\n\r\n")
                case 2: parts.append(String(repeating: "b", count: UpstreamRequestEncoder.uncopiedBodyPart + next(3000)))
                default: parts.append(String(repeating: "a", count: next(100)))
                }
            }
            let body = parts.joined()
            var headers: [(String, String)] = [("Host", "acme.test"), ("X-Request-Id", "r\(index)"), ("X-User-Id", "u\(index)")]
            if chunked { headers.append(("Transfer-Encoding", "chunked")) } else if !body.isEmpty { headers.append(("Content-Length", String(body.utf8.count))) }
            let trailers: [(String, String)] = chunked && next(3) == 0 ? [("X-Checksum", "c\(index)")] : []
            let uri = "/r/\(index)?q=\(next(100))"
            channel.write(
                HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: uri, headers: HTTPHeaders(headers))),
                promise: nil)
            for part in parts { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: part))), promise: nil) }
            channel.write(HTTPClientRequestPart.end(trailers.isEmpty ? nil : HTTPHeaders(trailers)), promise: nil)
            channel.flush()
            expected.append(
                PythonView.Request(
                    method: method, target: uri, headers: headers.map { [$0.0.lowercased(), $0.1] },
                    body: body, trailers: trailers.map { [$0.0.lowercased(), $0.1] }))
        }
        var wire = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&chunk) }
        _ = try channel.finish()

        let script = repositoryRoot.appendingPathComponent("scripts/h11-read.py").path
        let result = try await runOnOwnThread("/usr/bin/python3", [script], input: String(buffer: wire))
        #expect(result.status == 0, "\(result.error)")
        let view = try JSONDecoder().decode(PythonView.self, from: Data(result.output.utf8))
        #expect(view.error == nil && view.leftover == 0, "\(view.error ?? "") \(view.leftover) bytes left over")
        #expect(view.requests.count == expected.count, "one request per request sent, no more")
        for (index, (seen, sent)) in zip(view.requests, expected).enumerated() {
            #expect(seen == sent, "request \(index)")
        }
    }
}
