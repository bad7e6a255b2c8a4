import GatehouseConfiguration
import Foundation
import GatehouseIdentity
import GatehouseMail
import GatehouseMetrics
import GatehouseProxy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix

/// The running gateway: public and admin listeners over one event loop group, the upstream pools, and the
/// current tenants, which ``reloadTenants()`` swaps atomically.
public final class GatewayServer: Sendable {
    public let configuration: GatewayConfiguration
    private let environment: [String: String]
    private let group: EventLoopGroup
    let state: GatewayState
    private let pools: UpstreamPools
    private let quiescing: ServerQuiescingHelper
    /// Held for a whole reload, so SIGHUP and the folder watcher never interleave their read-modify-write.
    private let catalog: NIOLockedValueBox<TenantCatalog>
    private let channels = NIOLockedValueBox<(public: Channel?, admin: Channel?)>((nil, nil))
    private let draining = NIOLockedValueBox(false)
    /// Where the start-up read of revocations ended: the synchroniser continues from there.
    private let revocationCursor = NIOLockedValueBox<Int64>(0)
    private let logger: Logger
    /// Sends account e-mail (§11) when the configuration has an `email` transport; ``GatewayService`` runs it.
    let accountMail: AccountMailService?

    /// - Parameters:
    ///   - store: the opened store; by default the configured one is opened here (a store with background work,
    ///     PostgreSQL, must have its ``OpenedStore/services`` running).
    ///   - accessLogOutput: where access-log lines go (standard output by default); ignored when `access_log: false`.
    ///   - metrics: the series of §10; by default a registry of this server's own (so that servers in one test
    ///     process count apart), or none when the environment has `GATEHOUSE_METRICS=off`.
    public init(
        configuration: LoadedConfiguration, environment: [String: String], group: EventLoopGroup, logger: Logger, store: OpenedStore? = nil,
        metrics: GatewayMetrics? = nil, accessLogOutput: (@Sendable ([UInt8]) -> Void)? = nil
    ) throws {
        let metrics = metrics ?? Self.metrics(environment: environment)
        let opened = try store ?? StoreBootstrap.open(configuration.gateway, group: group, logger: logger)
        let identity = try IdentityBootstrap.open(
            configuration.gateway, store: opened.store, dataDirectory: opened.dataDirectory, revocationLag: metrics.revocationLag, logger: logger
        ) {
            warning in logger.warning("\(warning)")
        }
        self.configuration = configuration.gateway
        self.environment = environment
        self.group = group
        self.logger = logger
        let accessLog = configuration.gateway.accessLog ? AccessLogger(output: accessLogOutput ?? AccessLogger.writeToStandardOutput) : nil
        self.state = GatewayState(
            configuration: configuration.gateway, tenants: TenantDirectory(configuration.tenants, metrics: metrics), identity: identity,
            accessLog: accessLog, metrics: metrics, logger: logger)
        let health = identity.health
        let storeUp = metrics.storeUp
        let hashQueue = metrics.passwordHashQueue
        metrics.registry?.addCollector {
            storeUp.record(health.isUp ? 1 : 0)
            hashQueue.record(identity.passwordHashQueueDepth)
        }
        let limits = configuration.gateway.limits
        self.pools = UpstreamPools(
            group: group,
            configuration: .init(connectTimeout: limits.upstreamConnectTimeout.timeAmount, idleTimeout: limits.idleTimeout.timeAmount))
        self.quiescing = ServerQuiescingHelper(group: group)
        self.catalog = NIOLockedValueBox(configuration.tenants)
        self.accountMail = try configuration.gateway.email.map { email in
            AccountMailService(identity: identity, transport: try Self.transport(email, group: group), logger: logger)
        }
    }

    /// The configured mail transport; a CA file that does not parse stops the start here, not at the first message.
    static func transport(_ email: EmailConfiguration, group: EventLoopGroup) throws -> any MailTransport {
        switch email.transport {
        case .smtp(let url):
            return try SMTPTransport(
                server: .init(
                    host: url.host, port: url.port, security: url.security, user: url.username, password: url.password,
                    certificateAuthorities: url.certificateAuthorityPath),
                group: group)
        case .webhook(let text):
            guard let url = URL(string: text) else { throw WebhookTransport.InvalidURL(description: "email.webhook is not a URL") }
            return try WebhookTransport(url: url, group: group)
        }
    }

    /// Brings the store's schema up to date, loads the tenants' keys and the revocations, then binds both
    /// listeners. Run ``synchronizer()`` afterwards to keep them current.
    public func start() async throws {
        let identity = state.identity
        try await identity.store.prepare()
        for conflict in try await identity.store.emailConflicts() {
            logger.error("accounts share one email address; they cannot log in", metadata: ["conflict": "\(conflict.explanation)"])
        }
        try await identity.keys.setTenants(Array(catalog.withLockedValue { $0.tenants.values }))
        let cursor = try await identity.syncRevocations(after: 0, measuringLag: false)
        revocationCursor.withLockedValue { $0 = cursor }
        let state = self.state
        let publicChannel = try await PublicListener(state: state, pools: pools, group: group, quiescing: quiescing).bind()
        let adminAddress = (configuration.adminListen.host, configuration.adminListen.port)
        let draining = self.draining
        let adminChannel: Channel
        do {
            adminChannel = try await AdminListener(group: group, address: adminAddress, health: identity.health, metrics: state.metrics) {
                if draining.withLockedValue({ $0 }) { return (false, "draining") }
                return (true, "\(state.tenants.count) tenants")
            }.bind()
        } catch {
            try? await publicChannel.close()
            throw error
        }
        channels.withLockedValue { $0 = (publicChannel, adminChannel) }
        if let accessLog = state.accessLog {
            // Access-log lines are buffered; make sure none waits long.
            let loop = group.next()
            loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(200)) { _ in accessLog.flush() }
        }
        logger.info(
            "gatehouse listening",
            metadata: [
                "listen": "\(Self.describe(publicChannel.localAddress))",
                "admin_listen": "\(Self.describe(adminChannel.localAddress))",
                "tenants": "\(state.tenants.count)", "tls": "\(configuration.tls != nil)",
            ])
    }

    /// The default catalogue: `GATEHOUSE_METRICS=off` turns recording off (to measure what it costs).
    static func metrics(environment: [String: String]) -> GatewayMetrics {
        if environment["GATEHOUSE_METRICS"] == "off" { return .disabled() }
        return GatewayMetrics(registry: MetricsRegistry(), version: GatehouseVersion.current)
    }

    /// The registry `/metrics` serves, nil when metrics are off; `serve` bootstraps swift-metrics' `MetricsSystem` with it.
    public var metricsRegistry: MetricsRegistry? { state.metrics.registry }

    private static func describe(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "?" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// Keeps this replica's revocations and keys in step with the store (the CLI and other replicas write there
    /// too), and purges what expired. ``GatewayService`` runs it.
    public func synchronizer() -> StoreSynchronizer {
        let state = self.state
        return StoreSynchronizer(
            identity: state.identity, cursor: revocationCursor.withLockedValue { $0 },
            tenants: { state.tenants.tenants.values.map(\.configuration) }, auditRetention: configuration.auditRetention, logger: logger)
    }

    /// The bound public address (useful with port 0).
    public var publicAddress: SocketAddress? { channels.withLockedValue { $0.public?.localAddress } }
    public var adminAddress: SocketAddress? { channels.withLockedValue { $0.admin?.localAddress } }

    /// Re-reads the tenants folder. Good files take effect for new requests; a bad file keeps its tenant's
    /// previous version, and its problems are logged as `file:line: message`.
    @discardableResult
    public func reloadTenants() -> TenantCatalog.Reload {
        let reload = catalog.withLockedValue { catalog in
            let reload = TenantCatalog.load(gateway: configuration, environment: environment, previous: catalog)
            if !reload.changed.isEmpty {
                catalog = reload.catalog
                state.replaceTenants(TenantDirectory(reload.catalog, metrics: state.metrics))
                let keys = state.identity.keys
                let tenants = Array(reload.catalog.tenants.values)
                let logger = self.logger
                Task {
                    do {
                        try await keys.setTenants(tenants)
                    } catch {
                        logger.error("signing keys of the reloaded tenants could not be loaded", metadata: ["error": "\(error)"])
                    }
                }
            }
            return reload
        }
        if reload.diagnostics.isEmpty { state.metrics.reloadSuccesses.increment() } else { state.metrics.reloadFailures.increment() }
        for diagnostic in reload.diagnostics {
            logger.error("tenant file rejected, previous version kept", metadata: ["problem": "\(diagnostic)"])
        }
        guard !reload.changed.isEmpty else { return reload }
        logger.info("tenants reloaded", metadata: ["changed": "\(reload.changed.joined(separator: ","))", "tenants": "\(reload.catalog.tenants.count)"])
        return reload
    }

    /// Writes out buffered access-log lines now.
    public func flushAccessLog() { state.accessLog?.flush() }

    /// Stops accepting, lets requests in flight finish (up to `gracePeriod`), then closes what is left.
    public func shutdown(gracePeriod: TimeAmount = .seconds(30)) async {
        draining.withLockedValue { $0 = true }
        let (publicChannel, adminChannel) = channels.withLockedValue { $0 }
        let drained = group.next().makePromise(of: Void.self)
        if publicChannel != nil {
            quiescing.initiateShutdown(promise: drained)
        } else {
            drained.succeed()
        }
        let deadline = group.next().scheduleTask(in: gracePeriod) { drained.fail(ChannelError.ioOnClosedChannel) }
        try? await drained.futureResult.get()
        deadline.cancel()
        for future in pools.closeAll() { try? await future.get() }
        try? await adminChannel?.close()
        try? await state.identity.shutdown()
        await state.endpointExecutor.shutdown()
        state.accessLog?.flush()
        logger.info("gatehouse stopped")
    }
}
