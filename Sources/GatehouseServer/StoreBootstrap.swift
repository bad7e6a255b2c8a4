import Foundation
import GatehouseConfiguration
import GatehouseIdentity
import GatehousePostgresStore
import GatehouseSQLiteStore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The store `store:` names, opened, with the background work it needs while in use.
public struct OpenedStore: Sendable {
    public let store: any IdentityStore
    /// Run these (before the services that use the store) for as long as the store is used.
    public let services: [any Service]
    /// Where a master key may be generated (the SQLite file's folder); nil for a shared store.
    public let dataDirectory: String?
}

/// Chooses and opens the store: the one place that knows both store modules (the command line and the server
/// ask here).
public enum StoreBootstrap {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens the configured store without connecting to a server (see ``verify(_:configuration:)``).
    public static func open(_ configuration: GatewayConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger)
        throws -> OpenedStore
    {
        switch configuration.store {
        case .sqlite(let path):
            do {
                return OpenedStore(store: try SQLiteIdentityStore(path: path), services: [], dataDirectory: (path as NSString).deletingLastPathComponent)
            } catch {
                throw Failure(description: "\(configuration.file): cannot open the SQLite store at \(path): \(error)")
            }
        case .postgres(let url):
            do {
                let store = try PostgresIdentityStore(url: url, group: group, logger: logger)
                return OpenedStore(store: store, services: [PostgresStoreService(store: store)], dataDirectory: nil)
            } catch {
                throw Failure(description: "store \(url): \(error)")
            }
        }
    }

    /// Connects once to a database server, so that a wrong password, host, port, database or TLS setting stops the
    /// process at start with one line naming the URL (without its password), instead of failing every request.
    public static func verify(_ opened: OpenedStore) async throws {
        guard let store = opened.store as? PostgresIdentityStore else { return }
        do {
            try await store.probe()
        } catch {
            throw Failure(description: "cannot use the store \(store.url): \(IdentityStoreError.reason(of: error))")
        }
    }

    /// Opens the store and the identity service over it, and runs `body` while the store's background work runs
    /// (the command line's subcommands).
    public static func withIdentity<T>(
        _ configuration: GatewayConfiguration, hashingThreads: Int = 1, logger: Logger, warn: (String) -> Void,
        _ body: (IdentityService) async throws -> T
    ) async throws -> T {
        let opened = try open(configuration, logger: logger)
        try await verify(opened)
        let identity: IdentityService
        do {
            identity = try IdentityBootstrap.open(configuration, store: opened.store, dataDirectory: opened.dataDirectory, hashingThreads: hashingThreads, logger: logger, warn: warn)
        } catch {
            throw Failure(description: "\(error)")
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for service in opened.services {
                group.addTask { try await service.run() }
            }
            defer { group.cancelAll() }
            do {
                try await identity.store.prepare()
                let result = try await body(identity)
                try await identity.shutdown()
                return result
            } catch {
                do { try await identity.shutdown() } catch { logger.debug("stopping the hashing threads", metadata: ["error": "\(error)"]) }
                throw error
            }
        }
    }
}
