import ServiceLifecycle

/// Runs a ``PostgresIdentityStore``'s background work under swift-service-lifecycle: its connection pool
/// (`PostgresClient`, itself a `Service`) and its listening connection. List it before the services that use the
/// store, so that at shutdown it stops after them.
public struct PostgresStoreService: Service {
    private let connectivity: PostgresConnectivity

    public init(store: PostgresIdentityStore) {
        self.connectivity = store.connectivity
    }

    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                await withDiscardingTaskGroup { pools in
                    for await managed in connectivity.clients { pools.addTask { await managed.run() } }
                }
            }
            group.addTask { await connectivity.listen() }
            connectivity.markRunning()
            // Until shutdown; cancellation ends the wait too.
            do { try await gracefulShutdown() } catch {}
            connectivity.finish()
            group.cancelAll()
        }
    }
}
