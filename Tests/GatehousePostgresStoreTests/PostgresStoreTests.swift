import Foundation
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseTestSupport
import Logging
import PostgresNIO
import Testing
@testable import GatehousePostgresStore

/// What only the PostgreSQL store has: a server that may refuse us, go away and come back, replicas migrating
/// at once, and transactions committing out of order.
@Suite struct PostgresStoreTests {
    static let logger = Logger(label: "test.postgres")

    static func store(_ text: String) throws -> PostgresIdentityStore {
        try PostgresIdentityStore(url: PostgresURL.parse(text, relativeTo: "/").get(), logger: logger)
    }

    /// Each bad URL fails the start-up probe with a one-line reason that names the problem and never the password.
    @Test func badURLsFailTheProbeWithAReasonAndNoPassword() async throws {
        let server = try PostgresTestServer.shared()
        let database = try server.createDatabase()
        let cases: [(String, String)] = [
            (server.url(database: database, password: "wrong-secret-93c1"), "authentication failed"),
            (server.url(database: "no_such_database"), "does not exist"),
            (server.url(database: database).replacingOccurrences(of: "sslmode=disable", with: "sslmode=require"), "TLS"),
            (server.url(database: database, port: try PostgresTestServer.closedPort()), "cannot connect"),
        ]
        for (url, reason) in cases {
            let store = try Self.store(url)
            do {
                try await store.probe()
                Issue.record("\(store.url) was accepted")
            } catch {
                let text = "\(error)"
                #expect(text.contains(reason), "\(text)")
                #expect(!text.contains(PostgresTestServer.password) && !text.contains("wrong-secret-93c1"), "\(text)")
                #expect(!text.contains("\n"))
            }
            #expect(!store.url.description.contains("wrong-secret-93c1") && !store.url.description.contains(PostgresTestServer.password))
        }
    }

    /// TLS as the URL asks: `require` encrypts without checking the certificate, `verify-full` checks it against
    /// `sslrootcert` and the host name, and refuses a certificate it cannot check.
    @Test func sslModesAreHonoured() async throws {
        let server = try PostgresTestServer.start(tls: true)
        defer { server.remove() }
        let database = try server.createDatabase()
        let plain = server.url(database: database)
        let require = plain.replacingOccurrences(of: "sslmode=disable", with: "sslmode=require")
        let verified = plain.replacingOccurrences(of: "sslmode=disable", with: "sslmode=verify-full&sslrootcert=\(server.caCertificatePath)")
            .replacingOccurrences(of: "127.0.0.1", with: "localhost")
        try await Self.store(require).probe()
        try await Self.store(verified).probe()
        // The certificate names localhost, not 127.0.0.1: the same server by address is refused by verify-full.
        let wrongName = verified.replacingOccurrences(of: "@localhost:", with: "@127.0.0.1:")
        do {
            try await Self.store(wrongName).probe()
            Issue.record("verify-full accepted a certificate for another name")
        } catch {
            #expect(!"\(error)".contains("refused"), "it reached the server and refused its certificate: \(error)")
        }
        // Without the CA, verify-full cannot check the certificate.
        let noCA = plain.replacingOccurrences(of: "sslmode=disable", with: "sslmode=verify-full")
        await #expect(throws: IdentityStoreError.self) { try await Self.store(noCA).probe() }
        // And the store works over TLS.
        let store = try Self.store(verified)
        try await Self.running([store]) {
            try await store.prepare()
            #expect(try await store.revocations(after: 0, now: 0).records.isEmpty)
        }
    }

    /// Five replicas migrating an empty database at once: every one succeeds, each migration is recorded once,
    /// and running them again changes nothing.
    @Test func replicasMigratingTogetherApplyEachMigrationOnce() async throws {
        let server = try PostgresTestServer.shared()
        let database = try server.createDatabase()
        let stores = try (0..<5).map { _ in try Self.store(server.url(database: database)) }
        try await Self.running(stores) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.prepare() } }
                try await group.waitForAll()
            }
            try await stores[0].prepare()
        }
        #expect(try server.sql("SELECT count(*) FROM gatehouse_schema_migrations", database: database) == "\(PostgresSchema.migrations.count)")
    }

    /// Sequence values commit out of order: a revocation with a lower id that commits after a read saw a higher
    /// one is still returned by the next read from that read's cursor.
    @Test func aRevocationCommittedLateIsNotSkipped() async throws {
        let server = try PostgresTestServer.shared()
        let database = try server.createDatabase()
        let store = try Self.store(server.url(database: database))
        try await Self.running([store]) {
            try await store.prepare()
            let url = try PostgresURL.parse(server.url(database: database), relativeTo: "/").get()
            let connection = try await PostgresConnection.connect(
                configuration: .init(host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: .disable),
                id: 1, logger: Self.logger)
            let now = Int64(Date().timeIntervalSince1970)
            // The slow transaction takes its id first and commits last.
            try await connection.query("BEGIN", logger: Self.logger)
            try await connection.query(
                "INSERT INTO revocations (kind, value, expires_at, recorded_at_ms) VALUES ('jti', 'late', \(now + 100), 0)", logger: Self.logger)
            try await store.revokeToken(jti: "early", until: now + 100)
            let first = try await store.revocations(after: 0, now: now)
            #expect(first.records.map(\.value) == ["early"])
            try await connection.query("COMMIT", logger: Self.logger)
            try await connection.close()
            let second = try await store.revocations(after: first.cursor, now: now)
            #expect(second.records.map(\.value).contains("late"), "the late commit is read from the cursor: \(second.records.map(\.value))")
            #expect(try server.sql("SELECT id FROM revocations WHERE value = 'late'", database: database)
                < server.sql("SELECT id FROM revocations WHERE value = 'early'", database: database), "it really has the lower id")
        }
    }

    /// The database stops: calls fail fast as unavailable (503 upstream), the listener reports the loss; it
    /// returns: the listener reports it and calls work again within 5 s, without a restart.
    @Test func theStoreSurvivesTheDatabaseGoingAwayAndComingBack() async throws {
        let server = try PostgresTestServer.start()
        defer { server.remove() }
        let database = try server.createDatabase()
        let store = try Self.store(server.url(database: database))
        try await Self.running([store]) {
            try await store.prepare()
            var signals = store.changeSignals().makeAsyncIterator()
            try await store.revokeToken(jti: "before", until: Int64(Date().timeIntervalSince1970) + 100)
            server.stop()
            let lost = await Self.next(&signals) { if case .disconnected = $0 { return true } else { return false } }
            #expect(lost, "the loss is signalled")
            let started = ContinuousClock.now
            await #expect(throws: IdentityStoreError.self) { _ = try await store.user(tenant: "acme", email: "a@acme.test") }
            #expect(ContinuousClock.now - started < .seconds(4), "no long wait while the database is away")
            try server.restart()
            let back = ContinuousClock.now
            let returned = await Self.next(&signals) { $0 == .reconnected }
            #expect(returned, "the return is signalled")
            var answered = false
            while !answered, ContinuousClock.now - back < .seconds(5) {
                answered = (try? await store.revocations(after: 0, now: 0)) != nil
                if !answered { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(answered, "working again \(ContinuousClock.now - back) after the database came back")
            #expect(try await store.revocations(after: 0, now: 0).records.map(\.value) == ["before"])
        }
    }

    /// A database that stops answering without closing anything (a paused container, a silent network): calls
    /// give up within the store's timeout instead of hanging, the loss is signalled, and it recovers once thawed.
    @Test func aSilentDatabaseTimesOutInsteadOfHanging() async throws {
        let server = try PostgresTestServer.start()
        defer {
            try? server.resume()
            server.remove()
        }
        let database = try server.createDatabase()
        let store = try PostgresIdentityStore(
            url: PostgresURL.parse(server.url(database: database), relativeTo: "/").get(), timeout: .seconds(2), logger: Self.logger)
        try await Self.running([store]) {
            try await store.prepare()
            var signals = store.changeSignals().makeAsyncIterator()
            _ = try await store.user(tenant: "acme", email: "warm@acme.test")
            try server.pause()
            let started = ContinuousClock.now
            await #expect(throws: IdentityStoreError.self) { _ = try await store.user(tenant: "acme", email: "a@acme.test") }
            #expect(ContinuousClock.now - started < .seconds(4), "gave up after \(ContinuousClock.now - started)")
            let lost = await Self.next(&signals) { if case .disconnected = $0 { return true } else { return false } }
            #expect(lost, "the listener's check notices the silence")
            try server.resume()
            let back = ContinuousClock.now
            var answered = false
            while !answered, ContinuousClock.now - back < .seconds(8) {
                answered = (try? await store.emailConflicts()) != nil
                if !answered { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(answered, "working again after the database thawed")
        }
    }

    private static func next(_ signals: inout AsyncStream<StoreSignal>.Iterator, within limit: Duration = .seconds(10), where match: (StoreSignal) -> Bool)
        async -> Bool
    {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            guard let signal = await signals.next() else { return false }
            if match(signal) { return true }
        }
        return false
    }

    /// Runs the stores' services around `body`.
    static func running(_ stores: [PostgresIdentityStore], _ body: () async throws -> Void) async throws {
        let services = stores.map { store in Task { await PostgresStoreService(store: store).run() } }
        do {
            try await body()
        } catch {
            for service in services { service.cancel() }
            throw error
        }
        for service in services { service.cancel() }
        for service in services { await service.value }
    }
}
