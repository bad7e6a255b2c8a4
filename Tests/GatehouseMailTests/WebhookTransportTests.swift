import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import GatehouseTestSupport
import Testing

@testable import GatehouseMail

/// The webhook against a real HTTP server of the test: what it receives, and what each answer means.
@Suite struct WebhookTransportTests {
    /// Records each request's method, path, content type and body, and answers with `status`.
    final class Receiver: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let received: NIOLockedValueBox<[(head: HTTPRequestHead, body: [UInt8])]>
        let status: HTTPResponseStatus
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(received: NIOLockedValueBox<[(head: HTTPRequestHead, body: [UInt8])]>, status: HTTPResponseStatus) {
            self.received = received
            self.status = status
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body(let buffer): body += buffer.readableBytesView
            case .end:
                if let head { received.withLockedValue { $0.append((head, body)) } }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "0")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }

    static func receiver(_ status: HTTPResponseStatus) async throws -> (Channel, NIOLockedValueBox<[(head: HTTPRequestHead, body: [UInt8])]>) {
        let received = NIOLockedValueBox<[(head: HTTPRequestHead, body: [UInt8])]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Receiver(received: received, status: status))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, received)
    }

    static let mail = OutgoingMail(
        tenant: "acme", kind: .verify,
        message: MailMessage(
            from: try! MailAddress("no-reply@acme.test"), to: try! MailAddress("ann@acme.test", displayName: "Ann"), subject: "Verify your address ✓",
            text: "Code: 12345678", html: "<p>Code: <b>12345678</b></p>"))

    @Test func theMessageIsPostedAsJSON() async throws {
        let (channel, received) = try await Self.receiver(.accepted)
        defer { channel.close(promise: nil) }
        let url = URL(string: "http://127.0.0.1:\(channel.localAddress!.port!)/send?key=1")!
        try await WebhookTransport(url: url, group: MultiThreadedEventLoopGroup.singleton).send(Self.mail)
        let requests = received.withLockedValue { $0 }
        try #require(requests.count == 1)
        #expect(requests[0].head.method == .POST)
        #expect(requests[0].head.uri == "/send?key=1")
        #expect(requests[0].head.headers["content-type"] == ["application/json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(requests[0].body)) as? [String: String])
        #expect(object == [
            "tenant": "acme", "kind": "verify", "to": "ann@acme.test", "subject": "Verify your address ✓", "text": "Code: 12345678",
            "html": "<p>Code: <b>12345678</b></p>",
        ])
    }

    @Test(arguments: [(HTTPResponseStatus.internalServerError, true), (.serviceUnavailable, true), (.tooManyRequests, true), (.badRequest, false), (.notFound, false)])
    func eachAnswerSaysWhetherToTryAgain(_ status: HTTPResponseStatus, _ transient: Bool) async throws {
        let (channel, _) = try await Self.receiver(status)
        defer { channel.close(promise: nil) }
        let url = URL(string: "http://127.0.0.1:\(channel.localAddress!.port!)/send")!
        do {
            try await WebhookTransport(url: url, group: MultiThreadedEventLoopGroup.singleton).send(Self.mail)
            Issue.record("no error for \(status.code)")
        } catch let error as MailDeliveryError {
            #expect(error.isTransient == transient)
            #expect(error.reason == "webhook: answered \(status.code)")
        }
    }

    @Test func aWebhookThatIsDownOrSilentIsTriedAgainLater() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = silent.localAddress!.port!
        do {
            try await WebhookTransport(url: URL(string: "http://127.0.0.1:\(port)/")!, group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(1))
                .send(Self.mail)
            Issue.record("no error")
        } catch let error as MailDeliveryError {
            #expect(error.isTransient)
        }
        try await silent.close()
        let closed = try freeLoopbackPort()
        do {
            try await WebhookTransport(url: URL(string: "http://127.0.0.1:\(closed)/")!, group: MultiThreadedEventLoopGroup.singleton).send(Self.mail)
            Issue.record("no error")
        } catch let error as MailDeliveryError {
            #expect(error.isTransient)
            #expect(error.reason.hasPrefix("webhook: cannot connect to 127.0.0.1:\(closed)"), "\(error.reason)")
        }
        #expect(throws: WebhookTransport.InvalidURL.self) { try WebhookTransport(url: URL(string: "ftp://x/")!, group: MultiThreadedEventLoopGroup.singleton) }
    }
}
