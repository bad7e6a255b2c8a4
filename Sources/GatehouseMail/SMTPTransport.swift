import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Where account e-mail goes: SMTP submission or an HTTP webhook (§2 `email`). Both are real implementations of
/// one protocol, chosen where the application is assembled.
public protocol MailTransport: Sendable {
    /// Delivers one message; throws a ``MailDeliveryError`` saying whether trying again may help.
    func send(_ mail: OutgoingMail) async throws
}

/// A message with what a webhook also needs to know: the tenant and the kind of message.
public struct OutgoingMail: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case reset, verify, changed
    }

    public var tenant: String
    public var kind: Kind
    public var message: MailMessage

    public init(tenant: String, kind: Kind, message: MailMessage) {
        self.tenant = tenant
        self.kind = kind
        self.message = message
    }
}

/// A delivery that failed, with a reason fit for a log line (never a credential or the message).
public struct MailDeliveryError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    /// A 4xx, a timeout, a lost or refused connection: try again later. A 5xx or a policy refusal: give up.
    public var isTransient: Bool

    public init(reason: String, isTransient: Bool) {
        self.reason = reason
        self.isTransient = isTransient
    }

    public var description: String { reason }
}

/// SMTP submission over SwiftNIO: one connection per message (account e-mail is rare), STARTTLS or implicit TLS,
/// AUTH PLAIN or LOGIN.
public struct SMTPTransport: MailTransport {
    public struct Server: Sendable {
        public var host: String
        public var port: Int
        public var security: SMTPSecurity
        public var user: String?
        public var password: String?
        /// A PEM file of CAs trusted besides the system's (`?ca=`).
        public var certificateAuthorities: String?

        public init(host: String, port: Int, security: SMTPSecurity, user: String? = nil, password: String? = nil, certificateAuthorities: String? = nil) {
            self.host = host
            self.port = port
            self.security = security
            self.user = user
            self.password = password
            self.certificateAuthorities = certificateAuthorities
        }

        /// Credentials go in the clear only to a loopback server (§2).
        var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }
    }

    public let server: Server
    public let group: EventLoopGroup
    public let connectTimeout: TimeAmount
    public let replyTimeout: TimeAmount
    /// The name this client gives in EHLO.
    public let clientName: String
    private let sslContext: NIOSSLContext

    public init(
        server: Server, group: EventLoopGroup, connectTimeout: TimeAmount = .seconds(10), replyTimeout: TimeAmount = .seconds(30),
        clientName: String = "gatehouse.localhost"
    ) throws {
        self.server = server
        self.group = group
        self.connectTimeout = connectTimeout
        self.replyTimeout = replyTimeout
        self.clientName = clientName
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let authorities = server.certificateAuthorities { tls.additionalTrustRoots = [.file(authorities)] }
        self.sslContext = try NIOSSLContext(configuration: tls)
    }

    public func send(_ mail: OutgoingMail) async throws {
        let message = mail.message
        var credentials: (user: String, password: String)?
        if let user = server.user { credentials = (user, server.password ?? "") }
        let machine = SMTPSessionStateMachine(
            .init(
                security: server.security, credentials: credentials, allowsPlaintextCredentials: server.isLoopback, clientName: clientName,
                sender: message.from.address, recipient: message.to.address, message: message.rendered()))
        let serverName = Self.isIPAddress(server.host) ? nil : server.host
        let tls = (context: sslContext, serverName: serverName)
        let security = server.security
        let timeout = replyTimeout
        let result = group.next().makePromise(of: SMTPReply.self)
        let bootstrap = ClientBootstrap(group: result.futureResult.eventLoop)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if security == .implicitTLS {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(SMTPClientHandler(machine: machine, tls: tls, replyTimeout: timeout, result: result))
                }
            }
        // Cancelled (the process is stopping): the connection closes, so a session waiting on a silent server ends now
        // rather than at its reply timeout, as a transient failure the outbox retries after the restart.
        let connection = NIOLockedValueBox<(channel: Channel?, cancelled: Bool)>((nil, false))
        try await withTaskCancellationHandler {
            do {
                let channel = try await bootstrap.connect(host: server.host, port: server.port).get()
                let cancelled = connection.withLockedValue { state -> Bool in
                    state.channel = channel
                    return state.cancelled
                }
                if cancelled { channel.close(promise: nil) }
            } catch {
                result.fail(SMTPError(stage: .connect, reply: nil, reason: "cannot connect to \(server.host):\(server.port) (\(error))", isTransient: true))
            }
            do {
                _ = try await result.futureResult.get()
            } catch let error as SMTPError {
                throw MailDeliveryError(reason: error.description, isTransient: error.isTransient)
            }
        } onCancel: {
            let channel = connection.withLockedValue { state -> Channel? in
                state.cancelled = true
                return state.channel
            }
            channel?.close(promise: nil)
        }
    }

    private static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
