import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A bounded pool for slow, blocking work (password hashing): one thread per core and a bounded queue. When the
/// queue is full the work is refused at once. Its threads run at a lower scheduling priority than the event
/// loops, so a login flood uses the cores the proxy leaves idle instead of starving it.
public final class HashingPool: Sendable {
    public struct Overloaded: Error, CustomStringConvertible {
        public var description: String { "too many password checks are queued" }
    }

    private let threads: NIOThreadPool
    private let inFlight = Mutex(0)
    /// Jobs running or waiting, at most.
    public let capacity: Int

    /// Jobs running or waiting now (`gatehouse_password_hash_queue`).
    public var depth: Int { inFlight.withLock { $0 } }

    public init(threads: Int = System.coreCount, queueLength: Int? = nil) {
        self.threads = NIOThreadPool(numberOfThreads: max(1, threads))
        self.capacity = max(1, threads) + (queueLength ?? max(1, threads) * 64)
        self.threads.start()
    }

    /// Runs `body` on the pool, or throws ``Overloaded`` without waiting when the queue is full.
    public func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        let admitted = inFlight.withLock { count in
            guard count < capacity else { return false }
            count += 1
            return true
        }
        guard admitted else { throw Overloaded() }
        defer { inFlight.withLock { $0 -= 1 } }
        return try await threads.runIfActive {
            Self.lowerThreadPriority()
            return try body()
        }
    }

    /// Nice 10 for the calling thread: on Linux `setpriority(PRIO_PROCESS, 0, ...)` applies to the calling thread
    /// only (a no-op elsewhere). Cheap next to a hash, so it is simply applied on every job.
    static func lowerThreadPriority() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

    public func shutdown() async throws {
        try await threads.shutdownGracefully()
    }
}
