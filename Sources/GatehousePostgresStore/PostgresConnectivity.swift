import GatehouseIdentity
import Logging
import NIOConcurrencyHelpers
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
        /// Store calls failed since the pool was last checked.
        var poolSuspect = false
        /// When a store call last found the database unreachable, and why.
        var callFailure: (ContinuousClock.Instant, String)?
    }

    let settings: PostgresSettings
    let group: any EventLoopGroup
    let logger: Logger
    private let state: Mutex<State>
    /// Pools to run; the service runs each until it is retired.
    let clients: AsyncStream<ManagedClient>
    private let clientsContinuation: AsyncStream<ManagedClient>.Continuation
    /// Where signals go: the stream of the latest ``makeSignals()`` call.
    private let signalsContinuation = NIOLockedValueBox<AsyncStream<StoreSignal>.Continuation?>(nil)

    init(settings: PostgresSettings, group: any EventLoopGroup, logger: Logger) {
        self.settings = settings
        self.group = group
        self.logger = logger
        let first = ManagedClient(PostgresClient(configuration: settings.clientConfiguration, eventLoopGroup: group, backgroundLogger: logger))
        state = Mutex(State(current: first))
        (clients, clientsContinuation) = AsyncStream.makeStream(of: ManagedClient.self)
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
        while !state.withLock({ $0.running }) {
            guard ContinuousClock.now - start < limit else {
                throw IdentityStoreError.unavailable("the store's service is not running (run PostgresStoreService before using the store)")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Why the database cannot be reached, while it cannot.
    /// (Or a store call found it unreachable less than a second ago: the calls right after a crash need not each
    /// wait for the listener to notice, and after that second the next call tries again.)
    var failure: String? {
        state.withLock { state in
            if let failure = state.failure { return failure }
            if let (at, reason) = state.callFailure, ContinuousClock.now - at < .seconds(1) { return reason }
            return nil
        }
    }

    /// A store call could not reach the database (refused, or the connection closed under it).
    func callFailed(_ reason: String) {
        state.withLock { $0.callFailure = (ContinuousClock.now, reason) }
    }

    func signal(_ signal: StoreSignal) { _ = signalsContinuation.withLockedValue { $0 }?.yield(signal) }

    /// A new stream of signals; an earlier one is finished (one consumer: a restarted synchroniser takes over).
    func makeSignals() -> AsyncStream<StoreSignal> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoreSignal.self)
        let previous = signalsContinuation.withLockedValue { current in
            defer { current = continuation }
            return current
        }
        previous?.finish()
        return stream
    }

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
        signalsContinuation.withLockedValue { $0 }?.finish()
    }

    /// Opens one connection and closes it: the check `serve` makes before it starts (a wrong password, an unknown
    /// host or database, TLS the server does not offer), so it can exit with the reason.
    func probe() async throws {
        let connection = try await connect(id: 0)
        do {
            try await connection.query("SELECT 1", logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
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
        /// Whether the next attempt after a drop skips the backoff (once per established session, so a server that
        /// drops every connection at once is not hammered).
        var retryAtOnce = false
        var connectionID = 1
        while !Task.isCancelled {
            connectionID += 1
            var connected = false
            do {
                // A server that accepts the socket but never answers (a paused container) must not hold this loop.
                let id = connectionID
                // A connection that opens after the deadline is closed, and kept until it is (postgres-nio asserts that).
                let connection = try await Self.withDeadline(.seconds(5), discardLate: { late in try? await late.close() }) {
                    try await self.connect(id: id)
                }
                connected = true
                var ending: any Error = IdentityStoreErrorDescription.failure("the listening connection ended")
                do {
                    try await connection.listen(on: Self.channel) { notifications in
                        state.withLock { $0.failure = nil }
                        if lost {
                            await repairPoolIfFailing()
                            lost = false
                            signal(.reconnected)
                        }
                        backoff = .milliseconds(100)
                        retryAtOnce = true
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
                // Only a failed connect means the database cannot be reached; a dropped connection (a server-side
                // timeout, a terminated backend) says nothing about the pool's.
                if !connected { state.withLock { $0.failure = reason } }
                if !lost {
                    lost = true
                    signal(.disconnected(reason: reason))
                }
                // A connection that was up and dropped is retried at once: if the database is gone, that attempt
                // fails within milliseconds and calls stop waiting for it (`failure`); if only this connection
                // was lost, nothing else notices.
                if connected && retryAtOnce {
                    retryAtOnce = false
                    continue
                }
                logger.debug("store listener: reconnecting", metadata: ["reason": "\(reason)", "backoff": "\(backoff)"])
                do { try await Task.sleep(for: backoff) } catch { return }
                backoff = min(backoff * 2, .seconds(1))
            }
        }
    }

    /// Forwards notifications and checks the connection every second (closing it when the check takes over 2 s,
    /// which is how a silent outage shows); returns by throwing when either fails. Also repairs the pool when
    /// store calls have been failing while this connection works.
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
                    try await Self.withDeadline(.seconds(2), onTimeout: { PostgresConnectivity.abandon(connection) }) {
                        _ = try await connection.query("SELECT 1", logger: self.logger)
                    }
                    if self.state.withLock({ $0.poolSuspect }) { await self.repairPoolIfFailing() }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Store calls failed: the pool may be backing off (postgres-nio waits up to a minute between attempts).
    func suspectPool() { state.withLock { $0.poolSuspect = true } }

    /// Replaces the pool when it cannot hand out a working connection within a second. A healthy pool is kept:
    /// replacing it would fail the transactions it is running.
    private func repairPoolIfFailing() async {
        state.withLock { $0.poolSuspect = false }
        let logger = self.logger
        do {
            try await withPooledConnection(within: .seconds(1)) { connection in
                _ = try await connection.query("SELECT 1", logger: logger)
            }
        } catch {
            logger.info("replacing the store's connection pool", metadata: ["reason": "\(IdentityStoreErrorDescription.describe(error))"])
            replaceClient()
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

    /// Runs `body` on a connection of the current pool, within `limit` (or until `abandon` says to stop waiting).
    /// At the deadline the connection is closed, so its query fails now instead of whenever the server answers.
    func withPooledConnection<T: Sendable>(
        within limit: Duration, abandonWhen abandon: @escaping @Sendable () -> Bool = { false },
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let client = self.client
        let leased = NIOLockedValueBox<PostgresConnection?>(nil)
        return try await Self.withDeadline(limit, abandonWhen: abandon, onTimeout: { Self.abandon(leased.withLockedValue { $0 }) }) {
            try await client.withConnection { connection in
                leased.withLockedValue { $0 = connection }
                return try await body(connection)
            }
        }
    }

    /// Closes a connection whose query is overdue, so the query fails now (its server may never answer).
    static func abandon(_ connection: PostgresConnection?) {
        guard let connection else { return }
        let _: EventLoopFuture<Void> = connection.close()
    }

    /// Runs `body`, or throws ``IdentityStoreError/unavailable(_:)`` when it has not finished within `limit`, or
    /// as soon as `abandon` says waiting is pointless (the database is known to be away).
    ///
    /// postgres-nio does not abandon a query on cancellation, and a query on a connection that died under it can
    /// stay pending: so the caller is answered at the deadline without waiting for `body` (which is cancelled,
    /// and `onTimeout` closes the connection it uses so it ends soon). This is the one place that runs work in
    /// unstructured tasks, because a structured child would hold the caller until it finished.
    ///
    /// `discardLate` receives a result that arrives after the caller was answered (a connection that opened just
    /// too late must still be closed: postgres-nio asserts that none is dropped open, and it would leak).
    static func withDeadline<T: Sendable>(
        _ limit: Duration, abandonWhen abandon: @escaping @Sendable () -> Bool = { false }, onTimeout: @escaping @Sendable () -> Void = {},
        discardLate: @escaping @Sendable (T) async -> Void = { _ in }, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let race = DeadlineRace<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.start(continuation)
                let work = Task {
                    do {
                        let value = try await body()
                        if !race.finish(.success(value)) { await discardLate(value) }
                    } catch {
                        race.finish(.failure(error))
                    }
                }
                let timer = Task {
                    let deadline = ContinuousClock.now + limit
                    while ContinuousClock.now < deadline, !abandon(), !race.isFinished {
                        try? await Task.sleep(for: min(.milliseconds(100), deadline - ContinuousClock.now))
                    }
                    if race.finish(.failure(IdentityStoreError.unavailable("no answer from the database within \(limit)"))) {
                        onTimeout()
                        work.cancel()
                    }
                }
                race.onCancel { work.cancel(); timer.cancel() }
            }
        } onCancel: {
            race.cancel()
        }
    }
}

/// The first of a body's result, a deadline and the caller's cancellation wins; the others are ignored.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var finished = false
        var cancelled = false
        var onCancel: (@Sendable () -> Void)?
    }

    private let state = NIOLockedValueBox(State())

    var isFinished: Bool { state.withLockedValue { $0.finished } }

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let cancelled = state.withLockedValue { state in
            state.continuation = continuation
            return state.cancelled
        }
        if cancelled { finish(.failure(CancellationError())) }
    }

    /// Resumes the caller unless someone already did; returns whether this call did.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let continuation = state.withLockedValue { state -> CheckedContinuation<T, any Error>? in
            guard !state.finished, let continuation = state.continuation else { return nil }
            state.finished = true
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
        return continuation != nil
    }

    func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let cancelled = state.withLockedValue { state in
            state.onCancel = handler
            return state.cancelled
        }
        if cancelled { handler() }
    }

    func cancel() {
        let handler = state.withLockedValue { state in
            state.cancelled = true
            return state.onCancel
        }
        finish(.failure(CancellationError()))
        handler?()
    }
}
