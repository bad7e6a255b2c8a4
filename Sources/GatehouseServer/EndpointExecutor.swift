import NIOCore
import NIOPosix

/// Runs the gateway endpoints' async work on a thread of its own rather than on Swift's global pool, so nothing
/// else in the process that ties up that pool can delay a login, and nothing an endpoint does can delay an
/// event loop. Endpoints only await (the store and the hashing pool have their own threads), so one thread is
/// plenty.
final class EndpointExecutor: TaskExecutor, @unchecked Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let loop: EventLoop

    init() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }

    func shutdown() async {
        try? await group.shutdownGracefully()
    }
}
