/// How a session protects itself (§2's `email.smtp`).
public enum SMTPSecurity: Sendable, Hashable {
    /// `smtp://`: STARTTLS when the server offers it.
    case startTLSWhenOffered
    /// `smtp://...?starttls=required`: refuse to send without it.
    case startTLSRequired
    /// `smtps://`: TLS from the first byte.
    case implicitTLS
}

/// Why a message was not sent, with the stage and the server's reply when there was one. Never holds the
/// credentials or the message.
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Stage: String, Sendable {
        case connect, greeting, ehlo, startTLS = "starttls", authentication, mailFrom = "mail from", recipient = "rcpt to", data, message, quit
    }

    public var stage: Stage
    public var reply: SMTPReply?
    public var reason: String
    /// Whether a later try may succeed (a 4xx, a timeout, a lost connection); a 5xx or a policy refusal is final.
    public var isTransient: Bool

    public var description: String {
        if let reply { return "SMTP \(stage.rawValue): the server answered \(reply.code) \(reply.text)" }
        return "SMTP \(stage.rawValue): \(reason)"
    }
}

/// One message submission (RFC 5321, RFC 6409; STARTTLS RFC 3207; AUTH PLAIN and LOGIN RFC 4954, 4616) as a value
/// type: each reply from the server is an event, and the machine answers with what to do next. The channel handler
/// only reads replies, writes what it is told and starts TLS when asked, so every path is testable without a socket.
struct SMTPSessionStateMachine {
    struct Configuration {
        var security: SMTPSecurity
        /// Sent with AUTH; never over a connection without TLS unless `allowsPlaintextCredentials` (a loopback server).
        var credentials: (user: String, password: String)?
        var allowsPlaintextCredentials: Bool
        /// The name we give in EHLO.
        var clientName: String
        var sender: String
        var recipient: String
        /// The rendered message (``MailMessage/rendered(boundary:)``), CRLF lines.
        var message: [UInt8]
    }

    enum Action: Equatable {
        case send([UInt8])
        /// Put TLS in front of the connection, then report ``tlsEstablished()``.
        case startTLS
        /// The message is accepted (whatever happens to the connection now, it is sent): write `quit`, and close
        /// when it is answered or soon after.
        case accepted(SMTPReply, quit: [UInt8])
        case fail(SMTPError)
        /// The session is over (QUIT answered): close.
        case close
    }

    private enum State {
        case greeting
        case ehlo(tls: Bool)
        case startTLS
        case tlsHandshake
        case authPlain
        case authLoginUser
        case authLoginPassword
        case authLoginDone
        case mailFrom
        case recipient
        case data
        case messageSent
        case quit
        case finished
    }

    private var state = State.greeting
    private var isTLS: Bool
    private let configuration: Configuration

    init(_ configuration: Configuration) {
        self.configuration = configuration
        self.isTLS = configuration.security == .implicitTLS
    }

    /// The TLS handshake asked for by ``Action/startTLS`` is done: greet again (RFC 3207 §4.2).
    mutating func tlsEstablished() -> Action {
        guard case .tlsHandshake = state else { return fail(.startTLS, "TLS was established at an unexpected point of the session") }
        isTLS = true
        state = .ehlo(tls: true)
        return .send(command("EHLO " + configuration.clientName))
    }

    mutating func received(_ reply: SMTPReply) -> Action {
        switch state {
        case .greeting:
            guard reply.code == 220 else { return refused(.greeting, reply) }
            state = .ehlo(tls: isTLS)
            return .send(command("EHLO " + configuration.clientName))
        case .ehlo:
            guard reply.code == 250 else { return refused(.ehlo, reply) }
            return afterEHLO(Self.capabilities(reply))
        case .startTLS:
            guard reply.code == 220 else { return refused(.startTLS, reply) }
            state = .tlsHandshake
            return .startTLS
        case .tlsHandshake:
            return fail(.startTLS, "the server spoke before the TLS handshake")
        case .authPlain, .authLoginDone:
            guard reply.code == 235 else { return refused(.authentication, reply) }
            return mailFrom()
        case .authLoginUser:
            guard reply.code == 334, let (user, _) = configuration.credentials else { return refused(.authentication, reply) }
            state = .authLoginPassword
            return .send(command(Base64.encode(Array(user.utf8))))
        case .authLoginPassword:
            guard reply.code == 334, let (_, password) = configuration.credentials else { return refused(.authentication, reply) }
            state = .authLoginDone
            return .send(command(Base64.encode(Array(password.utf8))))
        case .mailFrom:
            guard reply.code == 250 else { return refused(.mailFrom, reply) }
            state = .recipient
            return .send(command("RCPT TO:<" + configuration.recipient + ">"))
        case .recipient:
            guard reply.code == 250 || reply.code == 251 else { return refused(.recipient, reply) }
            state = .data
            return .send(command("DATA"))
        case .data:
            guard reply.code == 354 else { return refused(.data, reply) }
            state = .messageSent
            return .send(Self.dotStuffed(configuration.message))
        case .messageSent:
            guard reply.code == 250 else { return refused(.message, reply) }
            state = .quit
            return .accepted(reply, quit: command("QUIT"))
        case .quit, .finished:
            // Whatever QUIT gets does not change that the message was accepted.
            state = .finished
            return .close
        }
    }

    private mutating func afterEHLO(_ capabilities: Set<String>) -> Action {
        if !isTLS && configuration.security != .implicitTLS {
            if capabilities.contains("STARTTLS") {
                state = .startTLS
                return .send(command("STARTTLS"))
            }
            if configuration.security == .startTLSRequired {
                return fail(.startTLS, "the server does not offer STARTTLS, and the configuration requires it (starttls=required)", transient: false)
            }
        }
        guard let (user, password) = configuration.credentials else { return mailFrom() }
        guard isTLS || configuration.allowsPlaintextCredentials else {
            return fail(
                .authentication, "credentials are sent only over TLS or to a loopback server, and this server offers no STARTTLS", transient: false)
        }
        if capabilities.contains("AUTH PLAIN") {
            state = .authPlain
            return .send(command("AUTH PLAIN " + Base64.encode(Array(("\0" + user + "\0" + password).utf8))))
        }
        if capabilities.contains("AUTH LOGIN") {
            state = .authLoginUser
            return .send(command("AUTH LOGIN"))
        }
        return fail(.authentication, "the server offers neither AUTH PLAIN nor AUTH LOGIN", transient: false)
    }

    private mutating func mailFrom() -> Action {
        state = .mailFrom
        return .send(command("MAIL FROM:<" + configuration.sender + ">"))
    }

    /// The EHLO keywords, upper case; `AUTH` as one entry per mechanism (`AUTH PLAIN`, `AUTH LOGIN`).
    static func capabilities(_ reply: SMTPReply) -> Set<String> {
        var capabilities: Set<String> = []
        for line in reply.lines.dropFirst() {
            let words = line.uppercased().split(separator: " ").map(String.init)
            guard let keyword = words.first else { continue }
            if keyword == "AUTH" || keyword.hasPrefix("AUTH=") {
                let mechanisms = keyword == "AUTH" ? Array(words.dropFirst()) : [String(keyword.dropFirst(5))] + words.dropFirst()
                for mechanism in mechanisms { capabilities.insert("AUTH " + mechanism) }
            } else {
                capabilities.insert(keyword)
            }
        }
        return capabilities
    }

    /// The message for DATA: a `.` at a line start doubled (RFC 5321 §4.5.2), ending with CRLF `.` CRLF.
    static func dotStuffed(_ message: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(message.count + 64)
        var atLineStart = true
        for byte in message {
            if atLineStart && byte == UInt8(ascii: ".") { output.append(UInt8(ascii: ".")) }
            output.append(byte)
            atLineStart = byte == 10
        }
        if !(output.suffix(2) == [13, 10]) { output += [13, 10] }
        return output + Array(".\r\n".utf8)
    }

    private func command(_ text: String) -> [UInt8] { Array((text + "\r\n").utf8) }

    private mutating func refused(_ stage: SMTPError.Stage, _ reply: SMTPReply) -> Action {
        state = .finished
        return .fail(SMTPError(stage: stage, reply: reply, reason: "", isTransient: !(500..<600).contains(reply.code)))
    }

    private mutating func fail(_ stage: SMTPError.Stage, _ reason: String, transient: Bool = true) -> Action {
        state = .finished
        return .fail(SMTPError(stage: stage, reply: nil, reason: reason, isTransient: transient))
    }
}
