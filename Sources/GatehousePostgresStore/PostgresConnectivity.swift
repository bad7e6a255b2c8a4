import GatehouseIdentity
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The store's links to the database: the pool of connections queries use (a `PostgresClient`), and one more
/// connection of its own that `LISTEN`s for revocations and checks every second that the database is there.
///
/// After an outage the pool is replaced by a fresh one as soon as the listening connection is back: a pool that
/// failed for a while backs off its reconnection attempts for up to a minute, and §9 wants everything working
/// within 5 s of the database's return.
final class PostgresConnectivity: Sendable {
    /// The `NOTIFY` channel revocations and key changes are announced on.
    static let channel = "gatehouse_changes"

    /// A pool with a way to stop running it.
    struct ManagedClient: Sendable {
        let client: PostgresClient
        let retired: AsyncStream<Void>
        let retire: AsyncStream<Void>.Continuation

        init(_ client: PostgresClient) {
            self.client = client
            (retired, retire) = AsyncStream.makeStream(of: Void.self)
        }

        /// Runs the pool until it is retired (or the task is cancelled).
        func run() async {
            await withDiscardingTaskGroup { group in
                group.addTask { await client.run() }
                for await _ in retired {}
                group.cancelAll()
            }
        }
    }

    private struct State {
        var current: ManagedClient
        /// Set while the database cannot be reached: queries fail at once instead of queueing for a connection.
        var failure: String?
        /// Whether the service runs the pools (a lease before that waits, and postgres-nio warns about it).
        var running = false
    }

    let settings: PostgresSettings
    let group: any EventLoopGroup
    let logger: Logger
    private let state: Mutex<State>
    /// Pools to run; the service runs each until it is retired.
    let clients: AsyncStream<ManagedClient>
    private let clientsContinuation: AsyncStream<ManagedClient>.Continuation
    let signals: AsyncStream<StoreSignal>
    private let signalsContinuation: AsyncStream<StoreSignal>.Continuation

    init(settings: PostgresSettings, group: any EventLoopGroup, logger: Logger) {
        self.settings = settings
        self.group = group
        self.logger = logger
        let first = ManagedClient(PostgresClient(configuration: settings.clientConfiguration, eventLoopGroup: group, backgroundLogger: logger))
        state = Mutex(State(current: first))
        (clients, clientsContinuation) = AsyncStream.makeStream(of: ManagedClient.self)
        (signals, signalsContinuation) = AsyncStream.makeStream(of: StoreSignal.self)
        clientsContinuation.yield(first)
    }

    /// The pool to run queries on now.
    var client: PostgresClient { state.withLock { $0.current.client } }

    /// Called by the service once it runs the pools.
    func markRunning() { state.withLock { $0.running = true } }

    /// Waits (up to `limit`) until the service runs the pools: replicas and the CLI start the store's service and
    /// its first user at the same moment.
    func waitUntilRunning(limit: Duration = .seconds(10)) async throws {
        let start = ContinuousClock.now
        while !state.withLock({ $0.running }), ContinuousClock.now - start < limit {
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Why the database cannot be reached, while it cannot.
    var failure: String? { state.withLock { $0.failure } }

    func signal(_ signal: StoreSignal) { signalsContinuation.yield(signal) }

    /// Swaps in a fresh pool; the old one is stopped (queries still waiting on it fail, and are answered 503).
    private func replaceClient() {
        let fresh = ManagedClient(PostgresClient(configuration: settings.clientConfiguration, eventLoopGroup: group, backgroundLogger: logger))
        let old = state.withLock { state in
            defer { state.current = fresh }
            return state.current
        }
        clientsContinuation.yield(fresh)
        old.retire.finish()
    }

    /// Stops every pool (the service is ending).
    func finish() {
        clientsContinuation.finish()
        state.withLock { $0.current }.retire.finish()
        signalsContinuation.finish()
    }

    /// Opens one connection and closes it: the check `serve` makes before it starts (a wrong password, an unknown
    /// host or database, TLS the server does not offer), so it can exit with the reason.
    func probe() async throws {
        let connection = try await connect(id: 0)
        try await connection.query("SELECT 1", logger: logger)
        try? await connection.close()
    }

    private func connect(id: Int) async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            on: group.any(), configuration: try settings.connectionConfiguration(), id: id, logger: logger)
    }

    /// Keeps the listening connection up until the task is cancelled: reconnects with a backoff of at most a
    /// second, and reports losses and returns as signals.
    func listen() async {
        var backoff = Duration.milliseconds(100)
        var lost = false
        var connectionID = 1
        while !Task.isCancelled {
            connectionID += 1
            do {
                let connection = try await connect(id: connectionID)
                var ending: any Error = IdentityStoreErrorDescription.failure("the listening connection ended")
                do {
                    try await connection.listen(on: Self.channel) { notifications in
                        state.withLock { $0.failure = nil }
                        if lost {
                            replaceClient()
                            lost = false
                            signal(.reconnected)
                        }
                        backoff = .milliseconds(100)
                        try await watch(connection, notifications)
                    }
                } catch {
                    ending = error
                }
                do {
                    try await connection.close()
                } catch {
                    logger.trace("closing the listening connection", metadata: ["error": "\(IdentityStoreErrorDescription.describe(error))"])
                }
                throw ending
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                let reason = IdentityStoreErrorDescription.describe(error)
                state.withLock { $0.failure = reason }
                if !lost {
                    lost = true
                    signal(.disconnected(reason: reason))
                }
                logger.debug("store listener: reconnecting", metadata: ["reason": "\(reason)", "backoff": "\(backoff)"])
                do { try await Task.sleep(for: backoff) } catch { return }
                backoff = min(backoff * 2, .seconds(1))
            }
        }
    }

    /// Forwards notifications and checks the connection every second; returns by throwing when either fails.
    private func watch(_ connection: PostgresConnection, _ notifications: PostgresNotificationSequence) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await notification in notifications {
                    self.signal(Self.decode(notification.payload))
                }
                throw IdentityStoreErrorDescription.failure("the notification stream ended")
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: .seconds(1))
                    try await Self.withDeadline(.seconds(2)) { _ = try await connection.query("SELECT 1", logger: self.logger) }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// `r|kind|expires|recorded_ms|value` for a revocation, `k|tenant` for changed keys; anything else means
    /// "look": it can only come from a newer Gatehouse, and a catch-up read is always correct.
    static func decode(_ payload: String) -> StoreSignal {
        let fields = payload.split(separator: "|", maxSplits: 4, omittingEmptySubsequences: false)
        if fields.first == "k" { return .keysChanged }
        if fields.count == 5, fields[0] == "r", let expires = Int64(fields[2]), let recorded = Int64(fields[3]) {
            return .revoked([RevocationRecord(id: 0, kind: String(fields[1]), value: String(fields[4]), expiresAt: expires, recordedAtMilliseconds: recorded)])
        }
        return .changed
    }

    static func revocationPayload(kind: String, value: String, expiresAt: Int64, recordedAtMilliseconds: Int64) -> String {
        "r|\(kind)|\(expiresAt)|\(recordedAtMilliseconds)|\(value)"
    }

    /// Runs `body`, or throws ``IdentityStoreError/unavailable(_:)`` when it has not finished within `limit`
    /// (the body is cancelled).
    static func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw IdentityStoreError.unavailable("no answer from the database within \(limit)")
            }
            return value
        }
    }
}
