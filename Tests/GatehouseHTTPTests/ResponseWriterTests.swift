import GatehouseHTTP
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The one way responses are written, on an embedded channel: framing, `Connection`, `HEAD`, and the close after
/// the end is written.
@Suite struct ResponseWriterTests {
    /// Runs `ResponseWriter.write` from a handler, as the listeners do, and returns what it wrote.
    final class Answering: ChannelInboundHandler {
        typealias InboundIn = HTTPRequestHead
        let response: CompleteResponse
        init(_ response: CompleteResponse) { self.response = response }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            ResponseWriter.write(response, answering: unwrapInboundIn(data), context: context)
        }
    }

    func answer(_ request: HTTPRequestHead, with response: CompleteResponse) throws -> (parts: [HTTPServerResponsePart], closed: Bool) {
        let channel = EmbeddedChannel(handler: Answering(response))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(request)
        var parts: [HTTPServerResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
        let closed = !channel.isActive
        if !closed { _ = try channel.finish() }
        return (parts, closed)
    }

    static func head(_ parts: [HTTPServerResponsePart]) -> HTTPResponseHead? {
        if case .head(let head) = parts.first { return head }
        return nil
    }

    let json = CompleteResponse(status: .ok, headers: ["Content-Type": "application/json"], body: ByteBuffer(string: #"{"a":1}"#))

    @Test func aKeptAliveHTTP11ResponseIsFramedAndStaysOpen() throws {
        let (parts, closed) = try answer(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), with: json)
        #expect(parts.count == 3)
        let head = try #require(Self.head(parts))
        #expect(head.headers["content-length"] == ["7"])
        #expect(head.headers["connection"] == [])
        #expect(head.headers["content-type"] == ["application/json"])
        #expect(parts[1] == .body(.byteBuffer(ByteBuffer(string: #"{"a":1}"#))))
        #expect(parts[2] == .end(nil))
        #expect(!closed)
    }

    @Test func connectionCloseIsSaidAndDoneOnceTheEndIsWritten() throws {
        let (parts, closed) = try answer(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Connection": "close"]), with: json)
        #expect(Self.head(parts)?.headers["connection"] == ["close"])
        #expect(parts.last == .end(nil))
        #expect(closed)
    }

    @Test func anHTTP10ClientIsToldKeepAliveOnlyWhenItAsked() throws {
        let kept = try answer(HTTPRequestHead(version: .http1_0, method: .GET, uri: "/", headers: ["Connection": "keep-alive"]), with: json)
        #expect(Self.head(kept.parts)?.headers["connection"] == ["keep-alive"])
        #expect(!kept.closed)
        let plain = try answer(HTTPRequestHead(version: .http1_0, method: .GET, uri: "/"), with: json)
        #expect(Self.head(plain.parts)?.headers["connection"] == ["close"])
        #expect(plain.closed)
    }

    @Test func aHeadRequestGetsTheLengthButNoBody() throws {
        let (parts, _) = try answer(HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "/"), with: json)
        #expect(parts.count == 2)
        #expect(Self.head(parts)?.headers["content-length"] == ["7"])
    }

    @Test func statusesWithoutABodyGetNoLength() throws {
        for status in [HTTPResponseStatus.noContent, .notModified] {
            let (parts, _) = try answer(
                HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), with: CompleteResponse(status: status, body: ByteBuffer(string: "x")))
            #expect(Self.head(parts)?.headers["content-length"] == [])
            #expect(parts.count == 2, "no body for \(status)")
        }
    }

    @Test func theWriterOwnsFramingAndConnection() {
        var response = json
        response.headers.add(name: "Content-Length", value: "999")
        response.headers.add(name: "Connection", value: "keep-alive")
        let head = ResponseWriter.head(of: response, version: .http1_1, keepAlive: false)
        #expect(head.headers["content-length"] == ["7"])
        #expect(head.headers["connection"] == ["close"])
    }

    @Test func http2HasNoConnectionHeader() {
        #expect(ResponseWriter.connectionHeader(version: HTTPVersion(major: 2, minor: 0), keepAlive: false) == nil)
        #expect(ResponseWriter.connectionHeader(version: .http1_1, keepAlive: true) == nil)
    }
}
