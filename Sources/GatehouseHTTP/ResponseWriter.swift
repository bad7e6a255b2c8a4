import NIOCore
import NIOHTTP1

/// A whole response the process makes itself (a problem, an endpoint's answer, the admin listener's, the echo
/// server's), as opposed to one streamed through from an upstream.
public struct CompleteResponse {
    public var status: HTTPResponseStatus
    /// Everything but the framing and `Connection` headers, which ``ResponseWriter`` sets.
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Writes responses the one way: `Content-Length` from the body (none where a status has no body), `Connection`
/// from the keep-alive decision, no body for `HEAD`, and a close only once the end is written (closing earlier fails
/// whatever the socket has not taken yet). Shared by the gateway, its admin listener and the echo server.
public enum ResponseWriter {
    /// The `Connection` header a response needs: `close` when the connection ends after it, `keep-alive` when an
    /// HTTP/1.0 client's connection stays open (1.0 closes by default), none otherwise, and none over HTTP/2, which
    /// has no such header.
    public static func connectionHeader(version: HTTPVersion, keepAlive: Bool) -> String? {
        guard version.major < 2 else { return nil }
        guard keepAlive else { return "close" }
        return version == .http1_0 ? "keep-alive" : nil
    }

    /// Whether a response of `status` carries a body, and so its length (RFC 9110 §6.4.1, §8.6).
    public static func hasBody(_ status: HTTPResponseStatus) -> Bool {
        !(status.code < 200 || status == .noContent || status == .notModified)
    }

    /// The head of `response` to a request of `version`.
    public static func head(of response: CompleteResponse, version: HTTPVersion, keepAlive: Bool) -> HTTPResponseHead {
        var headers = response.headers
        if hasBody(response.status) { headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes)) }
        if let connection = connectionHeader(version: version, keepAlive: keepAlive) { headers.replaceOrAdd(name: "Connection", value: connection) }
        return HTTPResponseHead(version: version, status: response.status, headers: headers)
    }

    /// Writes the head and the body of `response` (no body for a `HEAD` request), not the end: the caller ends the
    /// response when its connection logic has moved on (``writeEnd(keepAlive:context:)`` does both).
    public static func writeHeadAndBody(
        _ response: CompleteResponse, version: HTTPVersion, isHead: Bool, keepAlive: Bool, context: ChannelHandlerContext
    ) {
        context.write(NIOAny(HTTPServerResponsePart.head(head(of: response, version: version, keepAlive: keepAlive))), promise: nil)
        if !isHead, hasBody(response.status), response.body.readableBytes > 0 {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(response.body))), promise: nil)
        }
    }

    /// Writes and flushes the response's end; without `keepAlive`, closes the connection once it is written.
    public static func writeEnd(keepAlive: Bool, context: ChannelHandlerContext) {
        guard !keepAlive else {
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            return
        }
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Writes all of `response` as the answer to `request`, keeping the connection open when the request asked to.
    public static func write(_ response: CompleteResponse, answering request: HTTPRequestHead, context: ChannelHandlerContext) {
        let keepAlive = request.isKeepAlive
        writeHeadAndBody(response, version: request.version, isHead: request.method == .HEAD, keepAlive: keepAlive, context: context)
        writeEnd(keepAlive: keepAlive, context: context)
    }
}
