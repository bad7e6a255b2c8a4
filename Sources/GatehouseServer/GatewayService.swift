import GatehouseConfiguration
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// Runs a ``GatewayServer`` under swift-service-lifecycle: starts it, reloads tenants on SIGHUP and on changes
/// in the tenants folder, and drains on graceful shutdown (SIGTERM, SIGINT).
public struct GatewayService: Service {
    public let server: GatewayServer
    private let logger: Logger
    private let pollInterval: Duration

    public init(server: GatewayServer, logger: Logger, pollInterval: Duration = .seconds(1)) {
        self.server = server
        self.logger = logger
        self.pollInterval = pollInterval
    }

    public func run() async throws {
        try await server.start()
        let synchronizer = server.synchronizer()
        await withDiscardingTaskGroup { outer in
            // Revocations and keys stay current while connections drain: the synchroniser is cancelled after the drain,
            // not when graceful shutdown begins.
            outer.addTask {
                do { try await synchronizer.run() } catch { logger.error("store synchroniser stopped", metadata: ["error": "\(error)"]) }
            }
            if let accountMail = server.accountMail {
                // Like the synchroniser, it keeps working through the drain: a reset requested by a request in flight
                // is still queued and sent.
                outer.addTask {
                    do { try await accountMail.run() } catch { logger.error("account e-mail stopped", metadata: ["error": "\(error)"]) }
                }
            }
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        logger.info("SIGHUP: reloading tenants")
                        server.reloadTenants()
                    }
                }
                if server.configuration.watchTenants {
                    group.addTask {
                        var watcher = FolderWatcher(path: server.configuration.tenantsDirectory)
                        while !Task.isCancelled {
                            try? await Task.sleep(for: pollInterval)
                            if watcher.hasChanged() { server.reloadTenants() }
                        }
                    }
                }
                try? await gracefulShutdown()
                group.cancelAll()
            }
            logger.info("draining connections")
            await server.shutdown()
            outer.cancelAll()
        }
    }
}

/// Notices changes in a folder by the modification time of the folder and of its files.
///
/// Polling a stat per file once a second is cheap next to the reload it triggers, works on every file
/// system (including the bind mounts and ConfigMap symlink swaps of container platforms, where inotify
/// misses changes), and needs no extra thread.
struct FolderWatcher {
    let path: String
    private var lastFingerprint: Int

    init(path: String) {
        self.path = path
        self.lastFingerprint = 0
        self.lastFingerprint = fingerprint()
    }

    mutating func hasChanged() -> Bool {
        let current = fingerprint()
        defer { lastFingerprint = current }
        return current != lastFingerprint
    }

    private func fingerprint() -> Int {
        var hasher = Hasher()
        guard let directory = opendir(path) else { return 0 }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            names.append(name)
        }
        for name in names.sorted() {
            var info = stat()
            guard stat(path + "/" + name, &info) == 0 else { continue }
            hasher.combine(name)
            hasher.combine(info.st_mtim.tv_sec)
            hasher.combine(info.st_mtim.tv_nsec)
            hasher.combine(info.st_size)
            hasher.combine(info.st_ino)
        }
        return hasher.finalize()
    }
}
