import Logging
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseMetrics
import GatehouseProxy
import GatehouseTokens
import NIOConcurrencyHelpers
import NIOCore

/// What every connection of the public listener shares: the configuration, the current tenants (swapped
/// atomically on reload), the policy, the identity endpoints and the access log.
final class GatewayState: Sendable {
    let configuration: GatewayConfiguration
    private let directory: NIOLockedValueBox<TenantDirectory>
    let identity: IdentityService
    let authorizer: RouteAuthorizer
    let endpoints: AuthEndpoints
    let endpointExecutor = EndpointExecutor()
    let accessLog: AccessLogger?
    /// The series of §10; the tenants' and routes' own live on the ``TenantDirectory``.
    let metrics: GatewayMetrics
    /// The gateway's logger; requests add their `request_id` and `tenant` as metadata when they log.
    let logger: Logger

    init(
        configuration: GatewayConfiguration, tenants: TenantDirectory, identity: IdentityService, accessLog: AccessLogger?, metrics: GatewayMetrics,
        logger: Logger
    ) {
        self.logger = logger
        self.metrics = metrics
        self.configuration = configuration
        self.directory = NIOLockedValueBox(tenants)
        self.identity = identity
        let validator = TokenValidator(keys: identity.keys.directory, revocations: identity.revocations, cache: VerifiedTokenCache(hits: metrics.tokenCacheHits, misses: metrics.tokenCacheMisses))
        self.authorizer = RouteAuthorizer(validator: validator)
        self.endpoints = AuthEndpoints(identity: identity, authorizer: authorizer)
        self.accessLog = accessLog
    }

    /// The gateway's logger with a request's metadata; made only when something is to be logged or an endpoint runs,
    /// never on the proxy path's hot loop.
    func logger(requestID: String, tenant: String) -> Logger {
        var logger = self.logger
        logger[metadataKey: "request_id"] = "\(requestID)"
        logger[metadataKey: "tenant"] = "\(tenant)"
        return logger
    }

    /// The tenants in force for a new request. Requests in flight keep the snapshot they started with.
    var tenants: TenantDirectory { directory.withLockedValue { $0 } }

    func replaceTenants(_ tenants: TenantDirectory) {
        directory.withLockedValue { $0 = tenants }
    }
}

extension Duration {
    var timeAmount: TimeAmount { .milliseconds(milliseconds) }
}
