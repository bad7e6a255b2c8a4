import Foundation
import GatehouseConfiguration
import GatehouseProxy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing
@testable import GatehouseServer

/// The request handler on embedded channels, no socket: the client side takes request parts and gives response
/// parts; every upstream connection is an embedded channel with the real HTTP codec, so a test reads the bytes the
/// upstream would get and writes the bytes it answers. These are the ugly transitions of the two state machines,
/// run for real.
@Suite struct GatewayRequestHandlerTests {
    static let tenant = """
        hosts: [acme.test]
        routes:
          - {path: /private, upstream: "http://upstream.test:8080"}
          - {path: /, upstream: "http://upstream.test:8080", require: public}
        """

    /// The gateway's shared state from a real configuration and SQLite store, a handler on an embedded client
    /// channel, and a pool whose connections are embedded channels (kept in `upstreams`, in the order opened).
    struct Harness {
        let loop: NIOAsyncTestingEventLoop
        let client: NIOAsyncTestingChannel
        let upstreams: NIOLockedValueBox<[NIOAsyncTestingChannel]>
        let root: URL

        static func make() async throws -> Harness {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-handler-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("config"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
            // The store goes beside the config folder (../data), in this test's own directory.
            try "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ntenants: ../tenants\naccess_log: false\naudit_log: ../audit.log\n"
                .write(to: root.appendingPathComponent("config/gatehouse.yaml"), atomically: true, encoding: .utf8)
            try GatewayRequestHandlerTests.tenant.write(to: root.appendingPathComponent("tenants/acme.yaml"), atomically: true, encoding: .utf8)
            let loaded = try ConfigurationLoader.load(configPath: root.appendingPathComponent("config/gatehouse.yaml").path, environment: [:]).get()
            let server = try GatewayServer(
                configuration: loaded, environment: [:], group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
            try await server.state.identity.store.prepare()
            let loop = NIOAsyncTestingEventLoop()
            let client = NIOAsyncTestingChannel(loop: loop)
            let upstreams = NIOLockedValueBox<[NIOAsyncTestingChannel]>([])
            let state = server.state
            try await loop.submit {
                let pool = UpstreamConnectionPool(
                    eventLoop: loop, configuration: .init(connectTimeout: .seconds(1), idleTimeout: .seconds(60))
                ) { _, _, _, initialize in
                    let channel = NIOAsyncTestingChannel(loop: loop)
                    do {
                        try initialize(channel)
                    } catch {
                        return loop.makeFailedFuture(error)
                    }
                    upstreams.withLockedValue { $0.append(channel) }
                    return channel.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 8080)).map { channel }
                }
                let handler = GatewayRequestHandler(
                    state: state, pool: pool, connection: ClientConnectionInfo(peerAddress: "127.0.0.1", peerIsTrusted: false, scheme: "http"),
                    isHTTP2: false, timeouts: nil)
                try client.pipeline.syncOperations.addHandler(handler)
            }.get()
            try await client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).get()
            return Harness(loop: loop, client: client, upstreams: upstreams, root: root)
        }

        func finish() async {
            _ = try? await client.close()
            for upstream in upstreams.withLockedValue({ $0 }) { _ = try? await upstream.close() }
            try? FileManager.default.removeItem(at: root)
        }

        func send(_ uri: String) async throws {
            try await send(.GET, uri)
        }

        func send(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)] = [], end: Bool = true) async throws {
            let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders([("Host", "acme.test")] + headers))
            try await client.writeInbound(HTTPServerRequestPart.head(head))
            if end { try await client.writeInbound(HTTPServerRequestPart.end(nil)) }
        }

        func sendBody(_ text: String) async throws {
            try await client.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: text)))
        }

        /// The upstream connection opened `index`-th, once it exists.
        func upstream(_ index: Int) async throws -> NIOAsyncTestingChannel {
            for _ in 0..<400 {
                if let channel = upstreams.withLockedValue({ $0.count > index ? $0[index] : nil }) { return channel }
                try await Task.sleep(for: .milliseconds(5))
            }
            throw HarnessError(description: "no upstream connection #\(index) was opened")
        }

        var upstreamCount: Int { upstreams.withLockedValue { $0.count } }

        /// Everything written to `upstream` so far, as text.
        func received(by upstream: NIOAsyncTestingChannel) async throws -> String {
            var text = ""
            while let data = try await upstream.readOutbound(as: IOData.self) {
                guard case .byteBuffer(let buffer) = data else { continue }
                text += String(buffer: buffer)
            }
            return text
        }

        func answer(_ upstream: NIOAsyncTestingChannel, _ bytes: String) async throws {
            try await upstream.writeInbound(ByteBuffer(string: bytes))
        }

        /// The response parts the client got so far.
        func responseParts() async throws -> [HTTPServerResponsePart] {
            var parts: [HTTPServerResponsePart] = []
            while let part = try await client.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
            return parts
        }

        /// Waits for the next response part the client gets.
        func nextResponsePart() async throws -> HTTPServerResponsePart {
            try await client.waitForOutboundWrite(as: HTTPServerResponsePart.self)
        }

        func waitUntilClosed(_ channel: NIOAsyncTestingChannel) async throws {
            try await channel.closeFuture.get()
        }
    }

    struct HarnessError: Error, CustomStringConvertible {
        var description: String
    }

    static func head(of parts: [HTTPServerResponsePart]) -> HTTPResponseHead? {
        for part in parts { if case .head(let head) = part { return head } }
        return nil
    }

    static func bodyText(of parts: [HTTPServerResponsePart]) -> String {
        parts.reduce(into: "") { text, part in
            if case .body(.byteBuffer(let buffer)) = part { text += String(buffer: buffer) }
        }
    }

    static func hasEnd(_ parts: [HTTPServerResponsePart]) -> Bool {
        parts.contains { if case .end = $0 { true } else { false } }
    }

    @Test func aRequestGoesUpstreamAndTheConnectionIsPooled() async throws {
        let harness = try await Harness.make()
        try await harness.send("/a")
        let upstream = try await harness.upstream(0)
        let request = try await harness.received(by: upstream)
        #expect(request.hasPrefix("GET /a HTTP/1.1\r\n"))
        #expect(request.contains("X-Forwarded-For: 127.0.0.1\r\n"))
        try await harness.answer(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        let parts = try await harness.responseParts()
        #expect(Self.head(of: parts)?.status == .ok)
        #expect(Self.bodyText(of: parts) == "hi")
        #expect(Self.hasEnd(parts))
        // The next request reuses the connection.
        try await harness.send("/b")
        #expect(try await harness.received(by: upstream).hasPrefix("GET /b HTTP/1.1\r\n"))
        #expect(harness.upstreamCount == 1)
        await harness.finish()
    }

    @Test func theUpstreamClosingMidBodyClosesTheClient() async throws {
        let harness = try await Harness.make()
        try await harness.send("/a")
        let upstream = try await harness.upstream(0)
        try await harness.answer(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfour")
        try await upstream.close()
        try await harness.waitUntilClosed(harness.client)
        let parts = try await harness.responseParts()
        #expect(Self.head(of: parts)?.status == .ok)
        #expect(Self.bodyText(of: parts) == "four")
        #expect(!Self.hasEnd(parts), "a truncated body is never presented as complete")
        await harness.finish()
    }

    @Test func aClientHalfClosingDuringAPipelinedRequestGetsBothAnswersThenTheClose() async throws {
        let harness = try await Harness.make()
        try await harness.send("/first")
        try await harness.send("/second")
        harness.client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let upstream = try await harness.upstream(0)
        #expect(try await harness.received(by: upstream).hasPrefix("GET /first "), "the pipelined request waits its turn")
        try await harness.answer(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
        let first = try await harness.responseParts()
        #expect(Self.head(of: first)?.headers["connection"] == [], "a request still waits: the connection stays open for it")
        #expect(Self.hasEnd(first))
        // The second request goes out on the next turn of the loop.
        await harness.loop.run()
        #expect(try await harness.received(by: upstream).hasPrefix("GET /second "))
        try await harness.answer(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
        try await harness.waitUntilClosed(harness.client)
        let second = try await harness.responseParts()
        #expect(Self.head(of: second)?.headers["connection"] == ["close"])
        #expect(Self.bodyText(of: second) == "2")
        await harness.finish()
    }

    @Test func quiesceDuringASessionLookupAnswersTheRequestThenCloses() async throws {
        let harness = try await Harness.make()
        let client = harness.client
        // The cookie is well formed and unknown to memory, so the handler asks the store; the quiesce arrives in the
        // same turn of the loop, before the store's answer can.
        try await harness.loop.executeInContext {
            let head = HTTPRequestHead(
                version: .http1_1, method: .GET, uri: "/private/x",
                headers: ["Host": "acme.test", "Accept": "application/json", "Cookie": "gatehouse_session=" + String(repeating: "A", count: 43)])
            let pipeline = client.pipeline.syncOperations
            pipeline.fireChannelRead(NIOAny(HTTPServerRequestPart.head(head)))
            pipeline.fireChannelRead(NIOAny(HTTPServerRequestPart.end(nil)))
            pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        guard case .head(let head) = try await harness.nextResponsePart() else {
            Issue.record("the first part is not a head")
            return
        }
        #expect(head.status == .unauthorized, "no session: the store answered, and the request was decided with it")
        #expect(head.headers["connection"] == ["close"])
        try await harness.waitUntilClosed(client)
        #expect(harness.upstreamCount == 0)
        await harness.finish()
    }

    @Test func aDeadPooledConnectionIsRetriedOnAFreshOne() async throws {
        let harness = try await Harness.make()
        try await harness.send("/a")
        let first = try await harness.upstream(0)
        _ = try await harness.received(by: first)
        try await harness.answer(first, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        _ = try await harness.responseParts()
        // The pooled connection takes the next request, then dies before answering: a stale keep-alive connection.
        try await harness.send("/b")
        #expect(try await harness.received(by: first).hasPrefix("GET /b "))
        try await first.close()
        let second = try await harness.upstream(1)
        #expect(try await harness.received(by: second).hasPrefix("GET /b "), "the request is sent once more, on a fresh connection")
        try await harness.answer(second, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry")
        let parts = try await harness.responseParts()
        #expect(Self.head(of: parts)?.status == .ok)
        #expect(Self.bodyText(of: parts) == "retry")
        await harness.finish()
    }

    @Test func aPostOnADeadPooledConnectionIsNotRetried() async throws {
        let harness = try await Harness.make()
        try await harness.send("/a")
        let first = try await harness.upstream(0)
        try await harness.answer(first, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        _ = try await harness.responseParts()
        try await harness.send(.POST, "/b", [("Content-Length", "0")])
        try await first.close()
        let parts = try await harness.responseParts()
        #expect(Self.head(of: parts)?.status == .badGateway)
        #expect(harness.upstreamCount == 1, "a POST may have had its effect: never sent twice")
        await harness.finish()
    }

    @Test func aPipelinedRequestWhileTheResponseStreamsThenAResetNeverGoesUpstream() async throws {
        let harness = try await Harness.make()
        try await harness.send("/slow")
        let upstream = try await harness.upstream(0)
        _ = try await harness.received(by: upstream)
        try await harness.answer(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfour")
        try await harness.send("/next")
        harness.client.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "read"))
        try await harness.waitUntilClosed(harness.client)
        try await harness.waitUntilClosed(upstream)
        #expect(try await harness.received(by: upstream) == "", "the queued request never reached the upstream")
        #expect(harness.upstreamCount == 1)
        let parts = try await harness.responseParts()
        #expect(Self.bodyText(of: parts) == "four")
        #expect(!Self.hasEnd(parts))
        await harness.finish()
    }

    @Test func anUpstreamAnsweringBeforeTheBodyEndsAndClosingEndsTheExchange() async throws {
        let harness = try await Harness.make()
        try await harness.send(.POST, "/upload", [("Transfer-Encoding", "chunked")], end: false)
        try await harness.sendBody("part one")
        let upstream = try await harness.upstream(0)
        let request = try await harness.received(by: upstream)
        #expect(request.hasPrefix("POST /upload HTTP/1.1\r\n"))
        #expect(request.hasSuffix("8\r\npart one\r\n"))
        try await harness.answer(upstream, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!")
        // The rest of the body has nowhere to go: the gateway closes the upstream connection (before the upstream
        // does) and the client's once the answer is written.
        try await harness.waitUntilClosed(upstream)
        try await harness.waitUntilClosed(harness.client)
        try await harness.sendBody("part two")
        #expect(try await harness.received(by: upstream) == "")
        let parts = try await harness.responseParts()
        #expect(Self.head(of: parts)?.status == .payloadTooLarge)
        #expect(Self.head(of: parts)?.headers["connection"] == ["close"])
        #expect(Self.bodyText(of: parts) == "big!")
        #expect(Self.hasEnd(parts), "the upstream's answer is complete")
        await harness.finish()
    }

    @Test func bytesFromAnIdleUpstreamConnectionCloseIt() async throws {
        let harness = try await Harness.make()
        try await harness.send("/a")
        let first = try await harness.upstream(0)
        try await harness.answer(first, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        _ = try await harness.responseParts()
        // A response nobody asked for: the connection is confused and never reused.
        try await harness.answer(first, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        try await harness.waitUntilClosed(first)
        try await harness.send("/b")
        let second = try await harness.upstream(1)
        #expect(try await harness.received(by: second).hasPrefix("GET /b "))
        await harness.finish()
    }
}
