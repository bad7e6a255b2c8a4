import Foundation
import GatehouseConfiguration
import GatehouseMail
import GatehouseTokens
import Synchronization

/// What the identity service needs to send the messages of §11: the process's sender (nil when it has no transport),
/// the keys that hash codes and seal queued messages, the templates, and the queue of requests the
/// ``AccountMailService`` works through.
public struct AccountMail: Sendable {
    /// The process's `email.from`; nil: no transport, so no account e-mail at all.
    public var defaultFrom: String?
    public var secrets: AccountSecrets
    /// Seals messages in the outbox (they hold a code and a link).
    public var masterKey: MasterKey
    public var templates = AccountMailTemplates()
    /// At most one message per address in this many seconds (§11).
    public var minimumInterval: Int64 = 60
    /// Wrong codes that spend a request (§11).
    public var maximumCodeFailures = 5
    /// Wrong codes per address and purpose in a day after which no code is accepted until the day is over (links
    /// still work): a new request every minute must not buy five more guesses each time.
    public var maximumDailyCodeFailures = 20
    /// Forgot and resend requests, waiting for the service; the endpoint answers 202 without waiting for them.
    public let requests = AccountCodeRequests()
    /// Rung when a message is queued, so the outbox sends it now rather than at its next look.
    public let outboxBell = Doorbell()

    public init(defaultFrom: String?, masterKey: MasterKey) {
        self.defaultFrom = defaultFrom
        self.masterKey = masterKey
        self.secrets = AccountSecrets(key: masterKey.derivedKey(purpose: "gatehouse account codes v1"))
    }

    /// Off: no transport, random keys (for tests and tools that never send mail).
    public static func off() -> AccountMail {
        // A fresh random key: nothing sealed with it outlives the process, and nothing is sealed without a transport.
        AccountMail(defaultFrom: nil, masterKey: (try? MasterKey(base64: MasterKey.generateBase64()))!)
    }

    static let sealContext = "gatehouse outbox v1"

    /// A message as the outbox keeps it, sealed.
    struct SealedMail: Codable {
        var from: String
        var fromName: String?
        var to: String
        var toName: String?
        var subject: String
        var text: String
        var html: String
        var date: Double
        var messageID: String
    }

    func seal(_ message: MailMessage) throws -> Data {
        let sealed = SealedMail(
            from: message.from.address, fromName: message.from.displayName, to: message.to.address, toName: message.to.displayName,
            subject: message.subject, text: message.text, html: message.html, date: message.date.timeIntervalSince1970, messageID: message.messageID)
        return try masterKey.seal(try JSONEncoder().encode(sealed), context: Self.sealContext)
    }

    func open(_ data: Data) throws -> MailMessage {
        let sealed = try JSONDecoder().decode(SealedMail.self, from: try masterKey.open(data, context: Self.sealContext))
        return MailMessage(
            from: try MailAddress(sealed.from, displayName: sealed.fromName), to: try MailAddress(sealed.to, displayName: sealed.toName),
            subject: sealed.subject, text: sealed.text, html: sealed.html, date: Date(timeIntervalSince1970: sealed.date), messageID: sealed.messageID)
    }

    /// The message of `kind` to `user` in the tenant's branding. Throws when the address cannot be written in a
    /// message header (a non-ASCII address: this version does not speak SMTPUTF8).
    func compose(
        _ kind: OutgoingMail.Kind, tenant: TenantConfiguration, user: UserRecord, code: String? = nil, link: String? = nil
    ) throws -> MailMessage {
        let from = try MailAddress.parse(tenant.email.from ?? defaultFrom ?? "")
        // The name only once the address is proven: anyone can sign up with someone else's address, and a name
        // of their choosing must not reach that person's inbox under the tenant's branding.
        let nameIsTheirs = user.emailVerified && !user.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        let recipientName = nameIsTheirs ? user.name : ""
        let to = try MailAddress(user.email, displayName: recipientName.isEmpty ? nil : recipientName)
        let content = templates.render(
            kind,
            .init(
                tenantName: tenant.branding.displayName, accentColor: tenant.branding.accentColor, recipientName: recipientName, code: code,
                link: link, validFor: Self.words(tenant.email.codeTTL)))
        return MailMessage(from: from, to: to, subject: content.subject, text: content.text, html: content.html)
    }

    /// `15 minutes`, `1 hour`, `24 hours`.
    static func words(_ duration: Duration) -> String {
        let minutes = Int(duration.components.seconds / 60)
        if minutes < 120 { return minutes == 1 ? "1 minute" : "\(minutes) minutes" }
        let hours = minutes / 60
        return "\(hours) hours"
    }
}

/// A forgot or resend request waiting to be worked on.
public struct AccountCodeRequest: Sendable {
    public var purpose: AccountCodePurpose
    public var tenant: TenantConfiguration
    public var email: String
    public var context: AuditContext
}

/// The bounded queue between the endpoints and ``AccountMailService``: a request is queued without waiting, so the
/// endpoint's answer takes the same time whatever the address (§11's no oracle). When it is full, a request is
/// dropped with a log line: the requester sees 202 either way, as under a rate limit.
public final class AccountCodeRequests: Sendable {
    public static let capacity = 1024
    let stream: AsyncStream<AccountCodeRequest>
    private let continuation: AsyncStream<AccountCodeRequest>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: AccountCodeRequest.self, bufferingPolicy: .bufferingOldest(Self.capacity))
    }

    /// Whether the request was queued (false: the queue is full).
    func enqueue(_ request: AccountCodeRequest) -> Bool {
        if case .enqueued = continuation.yield(request) { return true }
        return false
    }
}

/// Wakes one waiter early; a ring with nobody waiting is kept for the next wait.
public final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    public func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next ring (or at once if it rang since the last wait), or after `timeout`, or when cancelled.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            group.addTask { await self.waitForRing() }
            await group.next()
            // The other child ends at once: a cancelled sleep throws, a cancelled wait is resumed by its handler.
            group.cancelAll()
        }
    }

    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    if Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
