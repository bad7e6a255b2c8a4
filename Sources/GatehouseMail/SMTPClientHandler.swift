import NIOCore
import NIOSSL
import NIOTLS

/// Runs an ``SMTPSessionStateMachine`` on a connection: splits the bytes into reply lines, feeds the replies to the
/// machine and carries out its actions (write, start TLS, finish). Each command gets `replyTimeout` for its answer.
final class SMTPClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: SMTPSessionStateMachine
    private var parser = SMTPReplyParser()
    private var line: [UInt8] = []
    private let result: EventLoopPromise<SMTPReply>
    private let tls: (context: NIOSSLContext, serverName: String?)?
    private let replyTimeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var stage = SMTPError.Stage.greeting
    private var finished = false

    init(machine: SMTPSessionStateMachine, tls: (context: NIOSSLContext, serverName: String?)?, replyTimeout: TimeAmount, result: EventLoopPromise<SMTPReply>) {
        self.machine = machine
        self.tls = tls
        self.replyTimeout = replyTimeout
        self.result = result
    }

    func channelActive(context: ChannelHandlerContext) {
        armTimer(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        while let byte = buffer.readInteger(as: UInt8.self) {
            if byte == 10 {
                if line.last == 13 { line.removeLast() }
                let complete = line
                line.removeAll(keepingCapacity: true)
                do {
                    if let reply = try parser.consume(complete) {
                        timer?.cancel()
                        run(machine.received(reply), context: context)
                    }
                } catch {
                    run(.fail(SMTPError(stage: stage, reply: nil, reason: "\(error)", isTransient: true)), context: context)
                }
                if finished { return }
            } else {
                line.append(byte)
                if line.count > SMTPReplyParser.maximumLineBytes {
                    run(.fail(SMTPError(stage: stage, reply: nil, reason: "the server sent a line over 4096 bytes", isTransient: true)), context: context)
                    return
                }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent, stage == .startTLS {
            run(machine.tlsEstablished(), context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        complete(.failure(SMTPError(stage: stage, reply: nil, reason: "the server closed the connection", isTransient: true)))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A certificate the configuration does not trust will not become trusted by trying again.
        let transient = !(error is NIOSSLError || error is BoringSSLError)
        run(.fail(SMTPError(stage: stage, reply: nil, reason: "\(error)", isTransient: transient)), context: context)
    }

    private func run(_ action: SMTPSessionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .send(let bytes):
            stage = Self.stage(after: bytes, current: stage)
            armTimer(context: context)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        case .startTLS:
            guard let tls else {
                run(.fail(SMTPError(stage: .startTLS, reply: nil, reason: "TLS is not configured", isTransient: false)), context: context)
                return
            }
            do {
                let handler = try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName)
                try context.pipeline.syncOperations.addHandler(handler, position: .first)
                armTimer(context: context)
            } catch {
                run(.fail(SMTPError(stage: .startTLS, reply: nil, reason: "\(error)", isTransient: false)), context: context)
            }
        case .accepted(let reply, let quit):
            // Sent, whatever QUIT gets: the answer to QUIT, or the timer, closes the connection.
            complete(.success(reply))
            stage = .quit
            armTimer(context: context)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: quit)), promise: nil)
        case .fail(let error):
            complete(.failure(error))
            context.close(promise: nil)
        case .close:
            timer?.cancel()
            context.close(promise: nil)
        }
    }

    /// What the command just written starts waiting for, for error messages.
    private static func stage(after command: [UInt8], current: SMTPError.Stage) -> SMTPError.Stage {
        let prefix = String(decoding: command.prefix(10), as: UTF8.self).uppercased()
        if prefix.hasPrefix("EHLO") { return .ehlo }
        if prefix.hasPrefix("STARTTLS") { return .startTLS }
        if prefix.hasPrefix("AUTH") { return .authentication }
        if prefix.hasPrefix("MAIL FROM") { return .mailFrom }
        if prefix.hasPrefix("RCPT TO") { return .recipient }
        if prefix.hasPrefix("DATA") { return .data }
        if prefix.hasPrefix("QUIT") { return .quit }
        // The message itself, or an AUTH LOGIN continuation.
        return current == .data ? .message : current
    }

    private func armTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        let stage = self.stage
        let timeout = replyTimeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            complete(.failure(SMTPError(stage: stage, reply: nil, reason: "no answer within \(timeout.nanoseconds / 1_000_000_000) s", isTransient: true)))
            context.close(promise: nil)
        }
    }

    private func complete(_ outcome: Result<SMTPReply, SMTPError>) {
        guard !finished else { return }
        finished = true
        switch outcome {
        case .success(let reply): result.succeed(reply)
        case .failure(let error): result.fail(error)
        }
    }
}
