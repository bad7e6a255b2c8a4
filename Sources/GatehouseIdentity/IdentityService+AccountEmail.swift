import Foundation
import GatehouseConfiguration
import GatehouseMail
import GatehouseTokens
import Logging

/// How a request names the code it uses: the address and the 8 digits typed by hand, or the link's token.
public enum AccountCodeSelector: Sendable {
    case code(email: String, code: String)
    case token(String)
}

/// Address verification and password reset (§11).
extension IdentityService {
    // MARK: Requests (forgot, resend)

    /// Queues a reset or verification request for the ``AccountMailService`` and returns at once: the caller answers
    /// 202 with the same body and after the same work whether the address exists, is disabled or is rate limited.
    public func requestAccountCode(_ purpose: AccountCodePurpose, tenant: TenantConfiguration, email: String, context: AuditContext, logger: Logger) {
        guard accountMail.requests.enqueue(AccountCodeRequest(purpose: purpose, tenant: tenant, email: email, context: context)) else {
            logger.warning("account e-mail requests are queued to capacity; this one is dropped", metadata: ["purpose": "\(purpose.rawValue)"])
            return
        }
    }

    /// Works on one request: issues a code and link and queues the message, when the tenant sends this kind of
    /// message, the address belongs to an enabled user (not yet verified, for a verification), and no message went
    /// to it in the last minute. Anything else is recorded (a reset request for nobody is worth an audit line) and
    /// sends nothing. Returns whether a message was queued.
    @discardableResult
    public func processAccountCodeRequest(_ request: AccountCodeRequest) async -> Bool {
        let tenant = request.tenant
        let purpose = request.purpose
        guard accountMail.defaultFrom != nil, purpose == .reset ? tenant.email.passwordResetEnabled : tenant.email.sendsVerification else { return false }
        guard let address = EmailAddress(request.email) else { return false }
        do {
            guard let user = try await store.user(tenant: tenant.id, email: address.canonical) else {
                if purpose == .reset { await refuseResetRequest(tenant: tenant, email: address.canonical, reason: "unknown_address", context: request.context) }
                return false
            }
            guard !user.disabled else {
                if purpose == .reset { await refuseResetRequest(tenant: tenant, email: user.email, reason: "disabled", context: request.context, userID: user.id) }
                return false
            }
            if purpose == .verify && user.emailVerified { return false }
            return try await issueAccountCode(purpose, tenant: tenant, user: user, context: request.context)
        } catch {
            logger.error(
                "account e-mail request failed; nothing was sent",
                metadata: ["tenant": "\(tenant.id)", "purpose": "\(purpose.rawValue)", "error": "\(IdentityStoreError.reason(of: error))"])
            return false
        }
    }

    /// Issues a code and link for `user` and queues its message, unless one went to the address within the minute.
    @discardableResult
    func issueAccountCode(_ purpose: AccountCodePurpose, tenant: TenantConfiguration, user: UserRecord, context: AuditContext) async throws -> Bool {
        let now = Self.now()
        let code = AccountSecrets.newCode()
        let token = AccountSecrets.newToken()
        let secrets = accountMail.secrets
        let record = AccountCodeRecord(
            tenant: tenant.id, emailKey: user.emailKey, purpose: purpose, userID: user.id,
            codeHash: secrets.codeHash(code, tenant: tenant.id, purpose: purpose, emailKey: user.emailKey),
            tokenHash: secrets.tokenHash(token, tenant: tenant.id, purpose: purpose), createdAt: now,
            expiresAt: now + Int64(tenant.email.codeTTL.components.seconds))
        let path = purpose == .reset ? "/auth/password/reset" : "/auth/verify-email"
        let link = Self.origin(of: tenant) + path + "?token=" + token
        let kind: OutgoingMail.Kind = purpose == .reset ? .reset : .verify
        let mail: OutboxMessage
        do {
            mail = try outboxMessage(kind, tenant: tenant, user: user, code: code, link: link, now: now)
        } catch {
            logger.error("the message cannot be written for this address; nothing was sent", metadata: ["tenant": "\(tenant.id)", "error": "\(error)"])
            await recordEvents([
                AuditEvent(.emailDeliveryError, tenant: tenant.id, context: context, userID: user.id, email: user.email, error: "undeliverable_address",
                    details: ["kind": kind.rawValue])
            ])
            return false
        }
        let audit = purpose == .reset ? [AuditEvent(.passwordResetRequest, tenant: tenant.id, context: context, userID: user.id, email: user.email)] : []
        guard try await store.issueAccountCode(record, mail: mail, minimumInterval: accountMail.minimumInterval, audit: audit) else {
            if purpose == .reset { await refuseResetRequest(tenant: tenant, email: user.email, reason: "rate_limited", context: context, userID: user.id) }
            return false
        }
        auditLog.write(audit)
        accountMail.outboxBell.ring()
        return true
    }

    private func refuseResetRequest(tenant: TenantConfiguration, email: String, reason: String, context: AuditContext, userID: String? = nil) async {
        await recordRefusal(AuditEvent(.passwordResetRequest, tenant: tenant.id, context: context, userID: userID, email: email, error: reason))
    }

    // MARK: Using a code

    /// Sets a new password with a reset code or link (§11): every login and session of the user is revoked on every
    /// replica, the address counts as verified, the lockout is cleared and a "password changed" notice is queued. It
    /// does not sign the user in. A password that breaks the rules is refused before the code is looked at, so the
    /// code still works.
    public func resetPassword(tenant: TenantConfiguration, using selector: AccountCodeSelector, newPassword: String, context: AuditContext = .system)
        async throws
    {
        guard tenant.email.passwordResetEnabled else { throw IdentityError.passwordResetDisabled }
        try Self.checkPassword(newPassword, tenant: tenant)
        let code = try await liveCode(.reset, tenant: tenant, selector: selector, context: context)
        let hash = try await hashOnPool(newPassword)
        guard let user = try await store.user(tenant: tenant.id, id: code.userID), !user.disabled else { throw IdentityError.invalidAccountCode }
        let now = Self.now()
        var audit = [AuditEvent(.passwordReset, tenant: tenant.id, context: context, userID: user.id, email: user.email)]
        if !user.emailVerified { audit.append(AuditEvent(.emailVerified, tenant: tenant.id, context: context, userID: user.id, email: user.email)) }
        var notices: [OutboxMessage] = []
        do {
            // Written as of after the reset, which proves the address.
            var proven = user
            proven.emailVerified = true
            notices.append(try outboxMessage(.changed, tenant: tenant, user: proven, now: now))
        } catch {
            logger.error("the password-changed notice cannot be written for this address", metadata: ["tenant": "\(tenant.id)", "error": "\(error)"])
        }
        let until = revocationHorizon(tenant, now: now)
        let completion = AccountCodeCompletion(
            passwordHash: hash, clearsLoginFailures: true, revokeLoginsUntil: until, mail: notices, audit: audit)
        guard let revoked = try await store.completeAccountCode(code, now: now, completion: completion) else { throw IdentityError.invalidAccountCode }
        for sid in revoked { revocations.revoke(.login, sid, until: until) }
        sessions.removeAll(userID: user.id)
        auditLog.write(audit)
        accountMail.outboxBell.ring()
    }

    /// Marks the address verified with a verification code or link.
    public func verifyEmail(tenant: TenantConfiguration, using selector: AccountCodeSelector, context: AuditContext = .system) async throws {
        let code = try await liveCode(.verify, tenant: tenant, selector: selector, context: context)
        let audit = [AuditEvent(.emailVerified, tenant: tenant.id, context: context, userID: code.userID, email: code.emailKey)]
        guard try await store.completeAccountCode(code, now: Self.now(), completion: AccountCodeCompletion(audit: audit)) != nil
        else { throw IdentityError.invalidAccountCode }
        sessions.removeAll(userID: code.userID)
        auditLog.write(audit)
    }

    /// The live request a selector names, or ``IdentityError/invalidAccountCode``. A wrong code counts towards the
    /// five that spend the request; a token of the other purpose or tenant hashes to nothing stored.
    private func liveCode(_ purpose: AccountCodePurpose, tenant: TenantConfiguration, selector: AccountCodeSelector, context: AuditContext = .system)
        async throws -> AccountCodeRecord
    {
        let secrets = accountMail.secrets
        let now = Self.now()
        switch selector {
        case .code(let email, let code):
            guard AccountSecrets.isWellFormedCode(code) else { throw IdentityError.malformedCode }
            guard let address = EmailAddress(email) else { throw IdentityError.invalidAccountCode }
            let hash = secrets.codeHash(code, tenant: tenant.id, purpose: purpose, emailKey: address.canonical)
            let check = try await store.checkAccountCode(
                tenant: tenant.id, emailKey: address.canonical, purpose: purpose, codeHash: hash, now: now, maximumFailures: accountMail.maximumCodeFailures,
                dailyFailureLimit: accountMail.maximumDailyCodeFailures)
            guard case .valid(let record) = check else {
                // Guessing leaves a trace (at most a line a minute per address, with how many were left out).
                await recordRefusal(
                    AuditEvent(purpose == .reset ? .passwordReset : .emailVerified, tenant: tenant.id, context: context, email: address.canonical, error: "invalid_code"))
                throw IdentityError.invalidAccountCode
            }
            return record
        case .token(let token):
            guard AccountSecrets.isWellFormedToken(token),
                let record = try await store.accountCode(tenant: tenant.id, purpose: purpose, tokenHash: secrets.tokenHash(token, tenant: tenant.id, purpose: purpose), now: now)
            else { throw IdentityError.invalidAccountCode }
            return record
        }
    }

    /// Whether a message's link is live, for the page it opens (nothing is spent by looking).
    public func isLiveLinkToken(_ purpose: AccountCodePurpose, tenant: TenantConfiguration, token: String) async throws -> Bool {
        do {
            _ = try await liveCode(purpose, tenant: tenant, selector: .token(token))
            return true
        } catch IdentityError.invalidAccountCode {
            return false
        }
    }

    // MARK: Helpers

    func outboxMessage(_ kind: OutgoingMail.Kind, tenant: TenantConfiguration, user: UserRecord, code: String? = nil, link: String? = nil, now: Int64)
        throws -> OutboxMessage
    {
        let message = try accountMail.compose(kind, tenant: tenant, user: user, code: code, link: link)
        // A code is worth sending while it works, and for at least the 10 minutes of §11; a notice for a day.
        let lifetime = kind == .changed ? 86_400 : max(600, Int64(tenant.email.codeTTL.components.seconds))
        return OutboxMessage(
            tenant: tenant.id, kind: kind.rawValue, userID: user.id, email: user.email, sealedMessage: try accountMail.seal(message), createdAt: now,
            giveUpAt: now + lifetime)
    }

    /// `scheme://host[:port]` of the tenant's issuer, where its links point.
    static func origin(of tenant: TenantConfiguration) -> String {
        tenant.issuer.hasSuffix("/") ? String(tenant.issuer.dropLast()) : tenant.issuer
    }
}
