import Foundation
import GatehouseMail
import Logging
import ServiceLifecycle

/// The background half of §11, one per process: works through the forgot and resend requests the endpoints
/// queued, and sends the store's outbox through the transport, off the event loops. A message is claimed for a
/// while before it is sent, so replicas sharing the store never send it twice at once; one that fails for a
/// reason that may pass is tried again with exponential backoff (2 s doubling to 5 min) until its give-up time, at
/// least 10 minutes after it was queued. Every failure is logged, and a final one audited.
public struct AccountMailService: Service {
    let identity: IdentityService
    let transport: any MailTransport
    let logger: Logger
    /// How often the outbox is looked at without a ring (messages queued by other replicas, retries falling due).
    let pollInterval: Duration
    /// How long a claimed message is left to this process before another may try it.
    let lease: Int64

    public init(identity: IdentityService, transport: any MailTransport, pollInterval: Duration = .seconds(1), lease: Int64 = 120, logger: Logger) {
        self.identity = identity
        self.transport = transport
        self.pollInterval = pollInterval
        self.lease = lease
        self.logger = logger
    }

    /// Runs until cancelled. Not on graceful shutdown: ``GatewayService`` cancels it after the drain, so requests
    /// answered during the drain are still worked on. Requests still queued in memory when it stops are lost (the
    /// user asks again); queued messages are in the store and are sent after the restart.
    public func run() async throws {
        let identity = self.identity
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await request in identity.accountMail.requests.stream {
                    await identity.processAccountCodeRequest(request)
                }
            }
            group.addTask {
                var lastPurge = ContinuousClock.now
                while !Task.isCancelled {
                    await deliverDue()
                    if ContinuousClock.now - lastPurge > .seconds(60) {
                        lastPurge = ContinuousClock.now
                        await purgeExpiredCodes()
                    }
                    await identity.accountMail.outboxBell.wait(timeout: pollInterval)
                }
            }
        }
    }

    /// A whole delivery ends within this, well inside the claim's lease, so no other replica sends the message while
    /// this one still might (an SMTP session of many slow replies could otherwise outlast it).
    var deliveryDeadline: Duration { .seconds(max(10, lease / 2)) }

    private func send(_ mail: OutgoingMail) async throws {
        let transport = self.transport
        let deadline = deliveryDeadline
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await transport.send(mail) }
            group.addTask {
                try await Task.sleep(for: deadline)
                throw MailDeliveryError(reason: "the delivery took longer than \(deadline)", isTransient: true)
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Sends every message that is due now, a batch at a time, concurrently within a batch.
    func deliverDue() async {
        let store = identity.store
        let messages: [OutboxMessage]
        do {
            messages = try await store.claimMail(now: IdentityService.now(), lease: lease, limit: 16)
        } catch {
            logger.warning("the mail outbox cannot be read; trying again shortly", metadata: ["error": "\(IdentityStoreError.reason(of: error))"])
            return
        }
        await withDiscardingTaskGroup { group in
            for message in messages { group.addTask { await deliver(message) } }
        }
    }

    private func deliver(_ queued: OutboxMessage) async {
        var logger = self.logger
        logger[metadataKey: "tenant"] = "\(queued.tenant)"
        logger[metadataKey: "kind"] = "\(queued.kind)"
        logger[metadataKey: "message_id"] = "\(queued.id)"
        let attempt = queued.attempts + 1
        do {
            let message: MailMessage
            do {
                message = try identity.accountMail.open(queued.sealedMessage)
            } catch {
                // Sealed under another master key: it can never be sent.
                try await giveUp(queued, error: "unreadable", reason: "the message cannot be opened with this master key", logger: logger)
                return
            }
            do {
                try await send(OutgoingMail(tenant: queued.tenant, kind: OutgoingMail.Kind(rawValue: queued.kind) ?? .changed, message: message))
                try await identity.store.finishMail(id: queued.id, audit: [])
                logger.info("account e-mail sent", metadata: ["attempt": "\(attempt)"])
            } catch let failure as MailDeliveryError {
                let now = IdentityService.now()
                if !failure.isTransient {
                    try await giveUp(queued, error: "rejected", reason: failure.reason, logger: logger)
                } else if now >= queued.giveUpAt {
                    try await giveUp(queued, error: "gave_up", reason: failure.reason, logger: logger)
                } else {
                    let next = now + Self.backoff(afterAttempt: attempt)
                    try await identity.store.retryMail(id: queued.id, attempts: attempt, nextAttemptAt: next, lastError: failure.reason)
                    logger.warning(
                        "account e-mail not delivered; trying again", metadata: ["attempt": "\(attempt)", "retry_in_s": "\(next - now)", "error": "\(failure.reason)"])
                }
            }
        } catch {
            // The store failed: the claim lapses and the message is tried again after its lease.
            logger.warning("the mail outbox could not record a delivery attempt", metadata: ["error": "\(IdentityStoreError.reason(of: error))"])
        }
    }

    private func giveUp(_ queued: OutboxMessage, error: String, reason: String, logger: Logger) async throws {
        let event = AuditEvent(
            .emailDeliveryError, tenant: queued.tenant, context: .system, userID: queued.userID, email: queued.email, error: error,
            details: ["kind": queued.kind, "reason": String(reason.prefix(300)), "attempts": String(queued.attempts + 1)])
        try await identity.store.finishMail(id: queued.id, audit: [event])
        identity.auditLog.write([event])
        logger.error("account e-mail given up", metadata: ["reason": "\(error)", "error": "\(reason)"])
    }

    private func purgeExpiredCodes() async {
        do {
            _ = try await identity.store.deleteAccountCodes(expiredBy: IdentityService.now())
        } catch {
            logger.warning("expired account codes could not be purged", metadata: ["error": "\(IdentityStoreError.reason(of: error))"])
        }
    }

    /// Seconds before the next attempt: 2, 4, 8, ... up to 5 minutes.
    static func backoff(afterAttempt attempt: Int) -> Int64 {
        min(300, Int64(2) << Int64(min(attempt - 1, 10)))
    }
}
