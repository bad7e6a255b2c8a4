import GatehouseTestSupport
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import Testing
@testable import GatehouseServer

/// The frame writer folds a response's end into its last `DATA` frame. On generated responses, written with flushes
/// at random points, what a client reads must be what the codec alone sends: the same headers, the same body bytes by
/// every flush, the end in the same place and the same trailers; and never more frames.
@Suite struct HTTP2ResponseFrameWriterTests {
    /// What an HTTP/2 client makes of a stream's frames: header blocks, body bytes between them, and where it ended.
    struct ClientView: Equatable {
        var events: [String] = []
        var frames = 0

        mutating func read(_ payload: HTTP2Frame.FramePayload) {
            frames += 1
            switch payload {
            case .headers(let headers):
                events.append("headers " + headers.headers.map { "\($0.name)=\($0.value)" }.joined(separator: ","))
                if headers.endStream { events.append("end") }
            case .data(let data):
                guard case .byteBuffer(let bytes) = data.data else { Issue.record("file region"); return }
                if bytes.readableBytes > 0 {
                    // Consecutive DATA frames are one body to the client.
                    if let last = events.last, last.hasPrefix("body ") {
                        events[events.count - 1] = last + String(decoding: bytes.readableBytesView, as: UTF8.self)
                    } else {
                        events.append("body " + String(decoding: bytes.readableBytesView, as: UTF8.self))
                    }
                }
                if data.endStream { events.append("end") }
            default:
                events.append("other")
            }
        }
    }

    enum Step {
        case part(HTTPServerResponsePart)
        case flush
    }

    /// The view after each flush, through `handlers` (the codec alone, or the writer in front of it).
    func views(_ steps: [Step], writer: Bool) throws -> [ClientView] {
        let channel = EmbeddedChannel()
        if writer { try channel.pipeline.syncOperations.addHandler(HTTP2ResponseFrameWriter()) }
        try channel.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
        var view = ClientView()
        var seen: [ClientView] = []
        for step in steps {
            switch step {
            case .part(let part): channel.write(part, promise: nil)
            case .flush:
                channel.flush()
                while let payload = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) { view.read(payload) }
                seen.append(view)
            }
        }
        _ = try channel.finish()
        return seen
    }

    @Test func whatTheClientReadsIsTheCodecsOwnFramesWithNoMoreFrames() throws {
        var generator = SeededGenerator(seed: 0xf1a77e)
        func next(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &generator) }
        for index in 0..<500 {
            var steps: [Step] = []
            func maybeFlush() { if next(3) == 0 { steps.append(.flush) } }
            var headers = HTTPHeaders([("content-type", "text/plain"), ("x-request-id", "r\(index)")])
            if next(2) == 0 { headers.add(name: "content-length", value: String(next(100))) }
            if next(4) == 0 { steps.append(.part(.head(HTTPResponseHead(version: .http2, status: .continue)))); maybeFlush() }
            steps.append(.part(.head(HTTPResponseHead(version: .http2, status: [.ok, .notFound, .noContent][next(3)], headers: headers))))
            maybeFlush()
            for part in 0..<next(4) {
                let text = next(5) == 0 ? "" : "p\(part)-" + String(repeating: "x", count: next(30))
                steps.append(.part(.body(.byteBuffer(ByteBuffer(string: text)))))
                maybeFlush()
            }
            let trailers: HTTPHeaders? = next(4) == 0 ? HTTPHeaders([("x-checksum", "c\(index)")]) : nil
            steps.append(.part(.end(trailers)))
            steps.append(.flush)
            let stock = try views(steps, writer: false)
            let folded = try views(steps, writer: true)
            #expect(folded.map(\.events) == stock.map(\.events), "case \(index): after every flush")
            #expect(folded.last!.frames <= stock.last!.frames, "case \(index): never more frames")
        }
    }

    @Test func aSmallResponseIsTwoFrames() throws {
        let steps: [Step] = [
            .part(.head(HTTPResponseHead(version: .http2, status: .ok, headers: ["content-length": "2"]))),
            .part(.body(.byteBuffer(ByteBuffer(string: "ok")))), .part(.end(nil)), .flush,
        ]
        let stock = try views(steps, writer: false)
        let folded = try views(steps, writer: true)
        #expect(stock.last!.frames == 3)
        #expect(folded.last!.frames == 2)
        #expect(folded.last!.events == ["headers :status=200,content-length=2", "body ok", "end"])
    }

    @Test func theEndsPromiseAndTheBodysBothComplete() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2ResponseFrameWriter())
        try channel.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http2, status: .ok)), promise: nil)
        let body = channel.eventLoop.makePromise(of: Void.self)
        let end = channel.eventLoop.makePromise(of: Void.self)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "hi"))), promise: body)
        channel.write(HTTPServerResponsePart.end(nil), promise: end)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(throws: Never.self) { try body.futureResult.wait() }
        #expect(throws: Never.self) { try end.futureResult.wait() }
        _ = try channel.finish()
    }

    @Test func theRequestIDIsNotIndexedAndACookieNeverIs() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2ResponseFrameWriter())
        try channel.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
        let headers: HTTPHeaders = ["Content-Type": "text/plain", "X-Request-Id": "r-1", "Set-Cookie": "gatehouse_session=secret"]
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers)))
        guard case .headers(let frame) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            Issue.record("no HEADERS frame")
            return
        }
        let indexing = Dictionary(uniqueKeysWithValues: frame.headers.map { ($0.name, "\($0.indexable)") })
        #expect(indexing == [
            ":status": "\(HPACKIndexing.indexable)", "content-type": "\(HPACKIndexing.indexable)",
            "x-request-id": "\(HPACKIndexing.nonIndexable)", "set-cookie": "\(HPACKIndexing.neverIndexed)",
        ])
        #expect(frame.headers.map(\.value) == ["200", "text/plain", "r-1", "gatehouse_session=secret"], "values and order kept")
        _ = try channel.finish()
    }
}
