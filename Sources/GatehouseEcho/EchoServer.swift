import Crypto
import GatehouseHTTP
import NIOCore
import NIOHTTP1
import NIOPosix

/// `gatehouse echo`: a tiny upstream that answers every request with JSON describing it — method, path,
/// query, headers, body length and body SHA-256 — so you can see exactly what the gateway forwarded.
/// The body is hashed as it streams, so it can be any size.
public enum EchoServer {
    public static func bind(host: String, port: Int, group: EventLoopGroup) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var hasher = SHA256()
    private var bodyLength = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            hasher = SHA256()
            bodyLength = 0
        case .body(let buffer):
            bodyLength += buffer.readableBytes
            buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let digest = hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var headerFields: [(String, [String])] = []
        for (name, value) in head.headers {
            let lower = name.lowercased()
            if let index = headerFields.firstIndex(where: { $0.0 == lower }) {
                headerFields[index].1.append(value)
            } else {
                headerFields.append((lower, [value]))
            }
        }
        let headersJSON = headerFields.map { "\(quote($0.0)):\(quote($0.1.joined(separator: ", ")))" }.joined(separator: ",")
        let body = """
            {"method":\(quote(head.method.rawValue)),"path":\(quote(String(parts[0]))),"query":\(parts.count > 1 ? quote(String(parts[1])) : "null"),\
            "headers":{\(headersJSON)},"body_length":\(bodyLength),"body_sha256":\(quote(digest))}

            """
        let response = CompleteResponse(
            status: .ok, headers: ["Content-Type": "application/json"], body: context.channel.allocator.buffer(string: body))
        ResponseWriter.write(response, answering: head, context: context)
    }

    private func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case let control where control.value < 0x20:
                let hex = String(control.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
