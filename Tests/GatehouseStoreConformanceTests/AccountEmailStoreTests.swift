import Foundation
import GatehouseConfiguration
import GatehouseMail
import GatehouseTestSupport
import Logging
import NIOPosix
import Testing
@testable import GatehouseIdentity

/// §11 on every store: codes and links stored as keyed hashes, single use (both spent together), five wrong codes,
/// a newer request replacing the older, one message a minute per address, the effects of a reset, required
/// verification, and the outbox's exclusive claims. The messages are read back from the outbox and opened.
@Suite struct AccountEmailStoreTests {
    /// A transport that is never contacted here: the outbox is read by the tests themselves.
    static let email = "email:\n  webhook: http://127.0.0.1:9/unused\n  from: \"Acme <no-reply@acme.test>\"\n"
    static let password = "long enough pw"

    static func fixture(_ kind: StoreKind, verification: String = "optional") async throws -> IdentityFixture {
        try await IdentityFixture.make(kind, gatewayExtra: email, tenantExtra: "email: {verification: \(verification)}\n")
    }

    /// Takes every queued message out of the outbox, as a sender would, and opens it.
    static func drain(_ fixture: IdentityFixture) async throws -> [(record: OutboxMessage, mail: ReceivedMail)] {
        let claimed = try await fixture.identity.store.claimMail(now: IdentityService.now(), lease: 60, limit: 100)
        var opened: [(record: OutboxMessage, mail: ReceivedMail)] = []
        for record in claimed {
            opened.append((record, ReceivedMail(raw: String(decoding: try fixture.identity.accountMail.open(record.sealedMessage).rendered(), as: UTF8.self))))
            try await fixture.identity.store.finishMail(id: record.id, audit: [])
        }
        return opened
    }

    static func request(_ fixture: IdentityFixture, _ purpose: AccountCodePurpose, _ email: String) async -> Bool {
        await fixture.identity.processAccountCodeRequest(AccountCodeRequest(purpose: purpose, tenant: fixture.tenant, email: email, context: .system))
    }

    @Test(arguments: StoreKind.allCases) func aResetCodeWorksOnceAndSpendsItsLinkWithIt(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind, verification: "off")
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        _ = try await identity.signUp(tenant: fixture.tenant, email: "ann@acme.test", password: Self.password, name: "Ann")
        #expect(await Self.request(fixture, .reset, "ANN@acme.test"))
        // Within the minute, a second request sends nothing.
        #expect(!(await Self.request(fixture, .reset, "ann@acme.test")))
        #expect(try await identity.store.pendingMailCount() == 1)
        let messages = try await Self.drain(fixture)
        let (record, mail) = try #require(messages.first)
        #expect(record.kind == "reset" && record.email == "ann@acme.test")
        let code = try #require(mail.code)
        let token = try #require(mail.token)
        #expect(mail.link == "http://acme.test:8080/auth/password/reset?token=" + token)
        // Not verified yet: the name she gave is not put in front of the address's owner.
        #expect(mail.header("To") == "ann@acme.test" && mail.header("From") == "\"Acme\" <no-reply@acme.test>" && mail.text.hasPrefix("Hello,\n"))
        // Neither secret is in the store in the clear.
        #expect(record.sealedMessage.range(of: Data(code.utf8)) == nil && record.sealedMessage.range(of: Data(token.utf8)) == nil)

        // Too short: refused before the code is looked at, which still works afterwards.
        await #expect(throws: IdentityError.passwordTooShort(minimum: 10)) {
            try await identity.resetPassword(tenant: fixture.tenant, using: .code(email: "ann@acme.test", code: code), newPassword: "short")
        }
        try await identity.resetPassword(tenant: fixture.tenant, using: .code(email: "Ann@Acme.test", code: code), newPassword: "a brand new password")
        // The link of the same request is spent with its code, and so is the code.
        await #expect(throws: IdentityError.invalidAccountCode) {
            try await identity.resetPassword(tenant: fixture.tenant, using: .token(token), newPassword: "another new password")
        }
        await #expect(throws: IdentityError.invalidAccountCode) {
            try await identity.resetPassword(tenant: fixture.tenant, using: .code(email: "ann@acme.test", code: code), newPassword: "another new password")
        }
        await #expect(throws: IdentityError.invalidCredentials) { try await identity.logIn(tenant: fixture.tenant, email: "ann@acme.test", password: Self.password) }
        _ = try await identity.logIn(tenant: fixture.tenant, email: "ann@acme.test", password: "a brand new password")
        // The "password changed" notice is queued; the trail has the request and the reset.
        let notices = try await Self.drain(fixture)
        #expect(notices.map(\.record.kind) == ["changed"])
        #expect(notices.first?.mail.code == nil && notices.first?.mail.text.contains("was just changed") == true)
        // The reset proved the address: now the name is hers.
        #expect(notices.first?.mail.header("To") == "\"Ann\" <ann@acme.test>" && notices.first?.mail.text.hasPrefix("Hello Ann,") == true)
        let events = try await identity.store.auditEvents(AuditQuery(tenant: "acme")).map(\.event)
        #expect(events.contains(.passwordResetRequest) && events.contains(.passwordReset))
    }

    @Test(arguments: StoreKind.allCases) func fiveWrongCodesSpendTheRequest(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind, verification: "off")
        defer { Task { await fixture.close() } }
        _ = try await fixture.identity.signUp(tenant: fixture.tenant, email: "bob@acme.test", password: Self.password, name: nil)
        #expect(await Self.request(fixture, .reset, "bob@acme.test"))
        let mail = try #require(try await Self.drain(fixture).first?.mail)
        let code = try #require(mail.code)
        let wrong = code == "00000000" ? "11111111" : "00000000"
        for _ in 0..<5 {
            await #expect(throws: IdentityError.invalidAccountCode) {
                try await fixture.identity.resetPassword(tenant: fixture.tenant, using: .code(email: "bob@acme.test", code: wrong), newPassword: "a brand new password")
            }
        }
        await #expect(throws: IdentityError.invalidAccountCode) {
            try await fixture.identity.resetPassword(tenant: fixture.tenant, using: .code(email: "bob@acme.test", code: code), newPassword: "a brand new password")
        }
        // The link went with it.
        await #expect(throws: IdentityError.invalidAccountCode) {
            try await fixture.identity.resetPassword(tenant: fixture.tenant, using: .token(try #require(mail.token)), newPassword: "a brand new password")
        }
        // Shapes that are no code at all are refused before the store is asked, and count for nothing.
        for bad in ["1234567", "123456789", "1234567a", "１２３４５６７８"] {
            await #expect(throws: IdentityError.malformedCode) {
                try await fixture.identity.verifyEmail(tenant: fixture.tenant, using: .code(email: "bob@acme.test", code: bad))
            }
        }
    }

    @Test(arguments: StoreKind.allCases) func spendingARequestNeverLiftsTheRateLimitAndADayOfWrongCodesClosesCodes(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind, verification: "off")
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        _ = try await identity.signUp(tenant: fixture.tenant, email: "ivy@acme.test", password: Self.password, name: nil)
        #expect(await Self.request(fixture, .reset, "ivy@acme.test"))
        let first = try #require(try await Self.drain(fixture).first?.mail)
        let wrong = first.code == "00000000" ? "11111111" : "00000000"
        func guess(_ code: String) async -> Bool {
            do {
                try await identity.resetPassword(tenant: fixture.tenant, using: .code(email: "ivy@acme.test", code: code), newPassword: "a brand new password")
                return true
            } catch {
                return false
            }
        }
        for _ in 0..<5 { #expect(!(await guess(wrong))) }
        // The request is spent, but the minute is not over: no new code to guess at.
        #expect(!(await Self.request(fixture, .reset, "ivy@acme.test")))
        // Guesses at an address with no request count too, for the day (the same work as a wrong code).
        for _ in 0..<15 { #expect(!(await guess(wrong))) }
        // A request made later (simulated: straight into the store) gets no code accepted today, right or not...
        let now = IdentityService.now()
        let code = AccountSecrets.newCode()
        let token = AccountSecrets.newToken()
        let secrets = identity.accountMail.secrets
        let user = try #require(try await identity.store.user(tenant: "acme", email: "ivy@acme.test"))
        let record = AccountCodeRecord(
            tenant: "acme", emailKey: "ivy@acme.test", purpose: .reset, userID: user.id,
            codeHash: secrets.codeHash(code, tenant: "acme", purpose: .reset, emailKey: "ivy@acme.test"),
            tokenHash: secrets.tokenHash(token, tenant: "acme", purpose: .reset), createdAt: now + 61, expiresAt: now + 900)
        let mail = OutboxMessage(tenant: "acme", kind: "reset", userID: user.id, email: user.email, sealedMessage: Data([0]), createdAt: now, giveUpAt: now + 600)
        #expect(try await identity.store.issueAccountCode(record, mail: mail, minimumInterval: 60, audit: []))
        #expect(!(await guess(code)))
        // ...while its link still works.
        try await identity.resetPassword(tenant: fixture.tenant, using: .token(token), newPassword: "a brand new password")
        let guesses = try await identity.store.auditEvents(AuditQuery(tenant: "acme", event: .passwordReset)).compactMap(\.error)
        #expect(guesses.contains("invalid_code"))
    }

    @Test(arguments: StoreKind.allCases) func aRehashNeverUndoesAPasswordSetMeanwhile(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind, verification: "off")
        defer { Task { await fixture.close() } }
        let store = fixture.identity.store
        let user = try await fixture.identity.signUp(tenant: fixture.tenant, email: "jon@acme.test", password: Self.password, name: nil)
        #expect(try await store.replacePasswordHash(tenant: "acme", userID: user.id, expected: user.passwordHash, replacement: "new-hash"))
        #expect(!(try await store.replacePasswordHash(tenant: "acme", userID: user.id, expected: user.passwordHash, replacement: "stale-rehash")))
        #expect(try await store.user(tenant: "acme", id: user.id)?.passwordHash == "new-hash")
        // Nor does a full write from an old copy undo a verification.
        var stale = try #require(try await store.user(tenant: "acme", id: user.id))
        _ = try await store.issueAccountCode(
            AccountCodeRecord(
                tenant: "acme", emailKey: "jon@acme.test", purpose: .verify, userID: user.id, codeHash: "c", tokenHash: "t", createdAt: IdentityService.now(),
                expiresAt: IdentityService.now() + 600),
            mail: OutboxMessage(tenant: "acme", kind: "verify", userID: user.id, email: user.email, sealedMessage: Data([0]), createdAt: 0, giveUpAt: 1),
            minimumInterval: 60, audit: [])
        let live = try #require(try await store.accountCode(tenant: "acme", purpose: .verify, tokenHash: "t", now: IdentityService.now()))
        #expect(try await store.completeAccountCode(live, now: IdentityService.now(), completion: AccountCodeCompletion()) == [])
        stale.name = "Jon"
        try await store.updateUser(stale)
        let after = try #require(try await store.user(tenant: "acme", id: user.id))
        #expect(after.emailVerified && after.name == "Jon")
    }

    @Test(arguments: StoreKind.allCases) func aNewerRequestReplacesTheOlderAndExpiredOnesDoNotWork(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind)
        defer { Task { await fixture.close() } }
        let store = fixture.identity.store
        let now = IdentityService.now()
        func record(_ tag: String, createdAt: Int64, expiresAt: Int64) -> AccountCodeRecord {
            AccountCodeRecord(
                tenant: "acme", emailKey: "cy@acme.test", purpose: .reset, userID: "u-cy", codeHash: "code-" + tag, tokenHash: "token-" + tag,
                createdAt: createdAt, expiresAt: expiresAt)
        }
        func mail(_ now: Int64) -> OutboxMessage {
            OutboxMessage(tenant: "acme", kind: "reset", userID: "u-cy", email: "cy@acme.test", sealedMessage: Data([1]), createdAt: now, giveUpAt: now + 600)
        }
        #expect(try await store.issueAccountCode(record("old", createdAt: now - 120, expiresAt: now + 600), mail: mail(now), minimumInterval: 60, audit: []))
        // A minute later a newer one replaces it; within the minute it would not.
        #expect(!(try await store.issueAccountCode(record("early", createdAt: now - 100, expiresAt: now + 600), mail: mail(now), minimumInterval: 60, audit: [])))
        #expect(try await store.issueAccountCode(record("new", createdAt: now, expiresAt: now + 600), mail: mail(now), minimumInterval: 60, audit: []))
        #expect(try await store.accountCode(tenant: "acme", purpose: .reset, tokenHash: "token-old", now: now) == nil)
        #expect(try await store.accountCode(tenant: "acme", purpose: .reset, tokenHash: "token-new", now: now)?.codeHash == "code-new")
        // The other purpose and the other tenant find nothing.
        #expect(try await store.accountCode(tenant: "acme", purpose: .verify, tokenHash: "token-new", now: now) == nil)
        #expect(try await store.accountCode(tenant: "globex", purpose: .reset, tokenHash: "token-new", now: now) == nil)
        let check = try await store.checkAccountCode(tenant: "acme", emailKey: "cy@acme.test", purpose: .verify, codeHash: "code-new", now: now, maximumFailures: 5, dailyFailureLimit: 20)
        #expect(check == .invalid)
        // Expired: neither the link nor the code works, and the purge forgets it.
        #expect(try await store.accountCode(tenant: "acme", purpose: .reset, tokenHash: "token-new", now: now + 601) == nil)
        #expect(
            try await store.checkAccountCode(tenant: "acme", emailKey: "cy@acme.test", purpose: .reset, codeHash: "code-new", now: now + 601, maximumFailures: 5, dailyFailureLimit: 20)
                == .invalid)
        #expect(try await store.deleteAccountCodes(expiredBy: now + 601) == 1)
        #expect(try await store.accountCode(tenant: "acme", purpose: .reset, tokenHash: "token-new", now: now) == nil)
    }

    @Test(arguments: StoreKind.allCases) func purposesNeverMixAndDisabledUsersGetNothing(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind)
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        _ = try await identity.signUp(tenant: fixture.tenant, email: "dee@acme.test", password: Self.password, name: nil)
        let verify = try #require(try await Self.drain(fixture).first)
        #expect(verify.record.kind == "verify")
        #expect(verify.mail.link?.hasPrefix("http://acme.test:8080/auth/verify-email?token=") == true)
        // A verification link is no reset link, and its code no reset code.
        await #expect(throws: IdentityError.invalidAccountCode) {
            try await identity.resetPassword(tenant: fixture.tenant, using: .token(try #require(verify.mail.token)), newPassword: "a brand new password")
        }
        await #expect(throws: IdentityError.invalidAccountCode) {
            try await identity.resetPassword(
                tenant: fixture.tenant, using: .code(email: "dee@acme.test", code: try #require(verify.mail.code)), newPassword: "a brand new password")
        }
        try await identity.verifyEmail(tenant: fixture.tenant, using: .token(try #require(verify.mail.token)))
        #expect(try await identity.store.user(tenant: "acme", email: "dee@acme.test")?.emailVerified == true)
        // A verified address is sent no second verification; a disabled user is sent nothing, and a request for an
        // unknown address neither (each recorded, never answered differently).
        #expect(!(await Self.request(fixture, .verify, "dee@acme.test")))
        try await identity.setDisabled(tenant: fixture.tenant, email: "dee@acme.test", disabled: true)
        #expect(!(await Self.request(fixture, .reset, "dee@acme.test")))
        #expect(!(await Self.request(fixture, .reset, "nobody@acme.test")))
        #expect(!(await Self.request(fixture, .reset, "not an address")))
        #expect(try await identity.store.pendingMailCount() == 0)
        let refusals = try await identity.store.auditEvents(AuditQuery(tenant: "acme", event: .passwordResetRequest)).compactMap(\.error)
        #expect(refusals == ["disabled", "unknown_address"])
    }

    @Test(arguments: StoreKind.allCases) func aUserDisabledAfterTheRequestCannotUseIt(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind, verification: "off")
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        let user = try await identity.signUp(tenant: fixture.tenant, email: "kai@acme.test", password: Self.password, name: nil)
        #expect(await Self.request(fixture, .reset, "kai@acme.test"))
        let mail = try #require(try await Self.drain(fixture).first?.mail)
        try await identity.setDisabled(tenant: fixture.tenant, email: "kai@acme.test", disabled: true)
        await #expect(throws: IdentityError.invalidAccountCode) {
            try await identity.resetPassword(tenant: fixture.tenant, using: .token(try #require(mail.token)), newPassword: "a brand new password")
        }
        #expect(try await identity.store.user(tenant: "acme", id: user.id)?.passwordHash == user.passwordHash)
    }

    @Test(arguments: StoreKind.allCases) func aResetRevokesEveryLoginClearsTheLockoutAndVerifiesTheAddress(_ kind: StoreKind) async throws {
        // Without verification messages, so the reset is the first message to the address this minute.
        let fixture = try await Self.fixture(kind, verification: "off")
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        _ = try await identity.signUp(tenant: fixture.tenant, email: "eve@acme.test", password: Self.password, name: nil)
        let first = try await identity.logIn(tenant: fixture.tenant, email: "eve@acme.test", password: Self.password)
        let session = try await identity.logInToSession(tenant: fixture.tenant, email: "eve@acme.test", password: Self.password)
        #expect(first.claims.emailVerified == false)
        for _ in 0..<5 {
            _ = try? await identity.logIn(tenant: fixture.tenant, email: "eve@acme.test", password: "wrong password!")
        }
        await #expect {
            try await identity.logIn(tenant: fixture.tenant, email: "eve@acme.test", password: Self.password)
        } throws: { error in
            if case IdentityError.lockedOut = error { return true }
            return false
        }
        // Lockout does not block a reset.
        #expect(await Self.request(fixture, .reset, "eve@acme.test"))
        let token = try #require(try await Self.drain(fixture).first?.mail.token)
        try await identity.resetPassword(tenant: fixture.tenant, using: .token(token), newPassword: "a brand new password")
        #expect(identity.revocations.isRevoked(login: first.claims.sid) && identity.revocations.isRevoked(login: session.session.record.sid))
        // Every other replica reads the same revocations from the store.
        let recorded = try await identity.store.revocations(after: 0, now: IdentityService.now()).records.map(\.value)
        #expect(recorded.contains(first.claims.sid) && recorded.contains(session.session.record.sid))
        await #expect(throws: IdentityError.invalidRefreshToken) { try await identity.refresh(tenant: fixture.tenant, refreshToken: first.refreshToken) }
        #expect(try await identity.session(tenant: fixture.tenant, cookie: session.cookieValue) == nil)
        let grant = try await identity.logIn(tenant: fixture.tenant, email: "eve@acme.test", password: "a brand new password")
        #expect(grant.claims.emailVerified)
        #expect(try await identity.store.user(tenant: "acme", email: "eve@acme.test")?.emailVerified == true)
    }

    @Test(arguments: StoreKind.allCases) func requiredVerificationRefusesLoginUntilTheAddressIsVerified(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind, verification: "required")
        defer { Task { await fixture.close() } }
        let identity = fixture.identity
        let user = try await identity.signUp(tenant: fixture.tenant, email: "fay@acme.test", password: Self.password, name: nil)
        #expect(!user.emailVerified)
        let mail = try #require(try await Self.drain(fixture).first?.mail)
        await #expect(throws: IdentityError.emailUnverified) { try await identity.logIn(tenant: fixture.tenant, email: "fay@acme.test", password: Self.password) }
        // Only the right password learns that: a wrong one is the usual 401.
        await #expect(throws: IdentityError.invalidCredentials) { try await identity.logIn(tenant: fixture.tenant, email: "fay@acme.test", password: "wrong password!") }
        try await identity.verifyEmail(tenant: fixture.tenant, using: .code(email: "fay@acme.test", code: try #require(mail.code)))
        #expect(try await identity.logIn(tenant: fixture.tenant, email: "fay@acme.test", password: Self.password).claims.emailVerified)
        // Users the CLI adds are verified.
        let added = try await identity.addUser(tenant: fixture.tenant, email: "gus@acme.test", password: Self.password, name: "", roles: ["user"])
        #expect(added.emailVerified)
        _ = try await identity.logIn(tenant: fixture.tenant, email: "gus@acme.test", password: Self.password)
        let unverified = try await identity.store.auditEvents(AuditQuery(tenant: "acme", event: .loginError)).compactMap(\.error)
        #expect(unverified.contains("unverified"))
        #expect(try await identity.store.auditEvents(AuditQuery(tenant: "acme", event: .emailVerified)).count == 1)
    }

    @Test(arguments: StoreKind.allCases) func twoResetsWithOneCodeAtOnceSucceedOnce(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind, verification: "off")
        defer { Task { await fixture.close() } }
        _ = try await fixture.identity.signUp(tenant: fixture.tenant, email: "hal@acme.test", password: Self.password, name: nil)
        #expect(await Self.request(fixture, .reset, "hal@acme.test"))
        let code = try #require(try await Self.drain(fixture).first?.mail.code)
        let replica = try await fixture.replica()
        defer { Task { await replica.close() } }
        func reset(_ identity: IdentityService, _ password: String) async -> Bool {
            do {
                try await identity.resetPassword(tenant: fixture.tenant, using: .code(email: "hal@acme.test", code: code), newPassword: password)
                return true
            } catch {
                return false
            }
        }
        async let first = reset(fixture.identity, "first new password")
        async let second = reset(replica.identity, "second new password")
        let outcomes = await [first, second]
        #expect(outcomes.filter { $0 }.count == 1)
    }

    @Test(arguments: StoreKind.allCases) func aClaimedMessageIsNoOneElsesUntilItsLeaseEnds(_ kind: StoreKind) async throws {
        let fixture = try await Self.fixture(kind)
        defer { Task { await fixture.close() } }
        let replica = try await fixture.replica()
        defer { Task { await replica.close() } }
        let store = fixture.identity.store
        let now = IdentityService.now()
        let messages = (0..<3).map { index in
            OutboxMessage(tenant: "acme", kind: "changed", userID: nil, email: "m\(index)@acme.test", sealedMessage: Data([UInt8(index)]), createdAt: now, giveUpAt: now + 600)
        }
        try await store.enqueueMail(messages)
        let claimed = try await store.claimMail(now: now, lease: 60, limit: 10)
        #expect(Set(claimed.map(\.id)) == Set(messages.map(\.id)))
        #expect(try await replica.identity.store.claimMail(now: now, lease: 60, limit: 10).isEmpty)
        #expect(try await store.claimMail(now: now + 30, lease: 60, limit: 10).isEmpty)
        // A retry falls due at its time, with its attempt count and error; a finished message is gone.
        try await store.retryMail(id: messages[0].id, attempts: 1, nextAttemptAt: now + 2, lastError: "SMTP connect: refused")
        try await store.finishMail(id: messages[1].id, audit: [])
        let due = try await replica.identity.store.claimMail(now: now + 2, lease: 60, limit: 10)
        #expect(due.map(\.id) == [messages[0].id] && due.first?.attempts == 1 && due.first?.lastError == "SMTP connect: refused")
        #expect(try await store.pendingMailCount() == 2)
    }
}

/// The outbox service against real transports on every store: a server that never answers is given up on after
/// the reply timeout and tried again later; one that refuses the recipient is given up for good, and audited.
@Suite struct AccountMailServiceTests {
    @Test(arguments: StoreKind.allCases) func aSilentServerTimesOutAndTheMessageIsTriedAgainLater(_ kind: StoreKind) async throws {
        let fixture = try await AccountEmailStoreTests.fixture(kind, verification: "off")
        defer { Task { await fixture.close() } }
        let silent = try SilentListener()
        defer { silent.close() }
        let transport = try SMTPTransport(
            server: .init(host: "127.0.0.1", port: silent.port, security: .startTLSWhenOffered), group: MultiThreadedEventLoopGroup.singleton,
            replyTimeout: .seconds(1))
        let service = AccountMailService(identity: fixture.identity, transport: transport, logger: Logger(label: "test.mail"))
        _ = try await fixture.identity.signUp(tenant: fixture.tenant, email: "zoe@acme.test", password: AccountEmailStoreTests.password, name: nil)
        #expect(await AccountEmailStoreTests.request(fixture, .reset, "zoe@acme.test"))
        let started = ContinuousClock.now
        await service.deliverDue()
        #expect(ContinuousClock.now - started < .seconds(5))
        // Not due yet (the first retry waits 2 s), then due, with what went wrong.
        #expect(try await fixture.identity.store.claimMail(now: IdentityService.now(), lease: 0, limit: 10).isEmpty)
        let retried = try await fixture.identity.store.claimMail(now: IdentityService.now() + 3, lease: 0, limit: 10)
        #expect(retried.count == 1 && retried.first?.attempts == 1)
        #expect(retried.first?.lastError?.contains("no answer within 1 s") == true)
    }

    @Test func theBackoffDoublesFromTwoSecondsToFiveMinutes() {
        #expect((1...10).map { AccountMailService.backoff(afterAttempt: $0) } == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300])
    }
}
