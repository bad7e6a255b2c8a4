import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// `email.webhook`: each message POSTed as JSON `{tenant, kind, to, subject, text, html}` to one URL, for operators
/// whose mail goes through a service of their own. A 2xx is delivered; a 5xx, a timeout or a lost connection is
/// tried again later; any other answer is final.
public struct WebhookTransport: MailTransport {
    public let url: URL
    public let group: EventLoopGroup
    public let timeout: TimeAmount
    private let sslContext: NIOSSLContext?

    public struct InvalidURL: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public init(url: URL, group: EventLoopGroup, timeout: TimeAmount = .seconds(10)) throws {
        // Schemes are case-insensitive (RFC 3986 §3.1), as the configuration's check of this URL is.
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
            throw InvalidURL(description: "the webhook must be an http:// or https:// URL")
        }
        self.url = url
        self.group = group
        self.timeout = timeout
        self.sslContext = scheme == "https" ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
    }

    /// The body the webhook receives.
    public static func body(of mail: OutgoingMail) -> [UInt8] {
        let object: [String: String] = [
            "tenant": mail.tenant, "kind": mail.kind.rawValue, "to": mail.message.to.address, "subject": mail.message.subject,
            "text": mail.message.text, "html": mail.message.html,
        ]
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    public func send(_ mail: OutgoingMail) async throws {
        let host = url.host ?? "localhost"
        let port = url.port ?? (sslContext == nil ? 80 : 443)
        var path = url.path.isEmpty ? "/" : url.path
        if let query = url.query { path += "?" + query }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Connection", value: "close")
        let body = Self.body(of: mail)
        headers.add(name: "Content-Length", value: String(body.count))
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
        let loop = group.next()
        let status = loop.makePromise(of: HTTPResponseStatus.self)
        let sslContext = self.sslContext
        let serverName = host
        let deadline = loop.scheduleTask(in: timeout) {
            status.fail(MailDeliveryError(reason: "webhook: no answer within \(timeout.nanoseconds / 1_000_000_000) s", isTransient: true))
        }
        defer { deadline.cancel() }
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(WebhookResponseHandler(status: status))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            let failure = MailDeliveryError(reason: "webhook: cannot connect to \(host):\(port) (\(error))", isTransient: true)
            status.fail(failure)
            throw failure
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let answer: HTTPResponseStatus
        do {
            answer = try await status.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        channel.close(promise: nil)
        switch answer.code {
        case 200..<300: return
        case 500..<600, 408, 429: throw MailDeliveryError(reason: "webhook: answered \(answer.code)", isTransient: true)
        default: throw MailDeliveryError(reason: "webhook: answered \(answer.code)", isTransient: false)
        }
    }
}

/// Completes with the status of the response head; a connection lost before it fails the delivery (transient).
private final class WebhookResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let status: EventLoopPromise<HTTPResponseStatus>

    init(status: EventLoopPromise<HTTPResponseStatus>) {
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { status.succeed(head.status) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(MailDeliveryError(reason: "webhook: the connection closed before an answer", isTransient: true))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        status.fail(MailDeliveryError(reason: "webhook: \(error)", isTransient: !(error is NIOSSLError)))
        context.close(promise: nil)
    }
}
