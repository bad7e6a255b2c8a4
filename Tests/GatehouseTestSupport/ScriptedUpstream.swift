import NIOCore
import NIOPosix

/// An upstream that misbehaves on purpose, speaking raw bytes so each failure is exactly what a test names.
public enum UpstreamBehaviour: Sendable {
    /// Reads the request and never answers.
    case silent
    /// Starts a 100,000-byte body, sends 1,000 bytes of it, then closes the connection (FIN).
    case closeMidBody
    /// The same, but aborts the connection with a TCP reset (RST) instead of closing it.
    case resetMidBody
    /// Accepts a WebSocket upgrade with 101, then echoes every byte back.
    case upgradeAndEcho
    /// Answers the first request of each connection (keep-alive), then closes when a second one arrives:
    /// the race a pooled connection can lose.
    case closeOnSecondRequest
    /// Answers with hop-by-hop headers that must not reach the client.
    case hopByHopHeaders
    /// Streams `bytes` zero bytes with Content-Length, honouring back-pressure.
    case download(bytes: Int)
    /// Answers 200 after a delay.
    case delayed(TimeAmount)
    /// Answers every request with exactly these bytes.
    case raw(String)
}

public struct ScriptedUpstream {
    public let channel: Channel
    public var port: Int { channel.localAddress!.port! }

    public static func start(_ behaviour: UpstreamBehaviour, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ScriptedUpstream {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedUpstreamHandler(behaviour: behaviour))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedUpstream(channel: channel)
    }

    public func stop() async { try? await channel.close() }
}

final class ScriptedUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let behaviour: UpstreamBehaviour
    private var received: [UInt8] = []
    private var requestsSeen = 0
    private var tunnelling = false
    private var remainingDownload = 0

    init(behaviour: UpstreamBehaviour) { self.behaviour = behaviour }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if tunnelling {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            return
        }
        received += buffer.readableBytesView
        while let end = headEnd() {
            received.removeFirst(end + 4)
            requestsSeen += 1
            respond(context: context)
        }
    }

    private func headEnd() -> Int? {
        guard received.count >= 4 else { return nil }
        for index in 0...(received.count - 4) where received[index] == 13 && received[index + 1] == 10 && received[index + 2] == 13 && received[index + 3] == 10 {
            return index
        }
        return nil
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)), promise: nil)
    }

    private func respond(context: ChannelHandlerContext) {
        switch behaviour {
        case .silent:
            break
        case .closeMidBody, .resetMidBody:
            write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "x", count: 1000), context: context)
            let reset = if case .resetMidBody = behaviour { true } else { false }
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) {
                if reset, let options = context.channel as? SocketOptionProvider {
                    // SO_LINGER with a zero timeout makes close() send RST; on the loop it applies at once.
                    _ = options.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                }
                context.close(promise: nil)
            }
        case .upgradeAndEcho:
            write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", context: context)
            tunnelling = true
            if !received.isEmpty {
                write(String(decoding: received, as: UTF8.self), context: context)
                received.removeAll()
            }
        case .closeOnSecondRequest:
            if requestsSeen == 1 {
                write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", context: context)
            } else {
                context.close(promise: nil)
            }
        case .hopByHopHeaders:
            write(
                "HTTP/1.1 200 OK\r\nConnection: X-Up\r\nX-Up: secret\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
                context: context)
        case .download(let bytes):
            write("HTTP/1.1 200 OK\r\nContent-Length: \(bytes)\r\n\r\n", context: context)
            remainingDownload = bytes
            pump(context: context)
        case .raw(let text):
            write(text, context: context)
        case .delayed(let delay):
            context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
                context.writeAndFlush(
                    NIOAny(context.channel.allocator.buffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ndelayed")), promise: nil)
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context: context) }
    }

    private func pump(context: ChannelHandlerContext) {
        let chunk = context.channel.allocator.buffer(repeating: 0, count: 65536)
        while remainingDownload > 0 && context.channel.isWritable {
            var slice = chunk
            if remainingDownload < slice.readableBytes { slice = slice.getSlice(at: 0, length: remainingDownload)! }
            remainingDownload -= slice.readableBytes
            context.write(wrapOutboundOut(slice), promise: nil)
        }
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
