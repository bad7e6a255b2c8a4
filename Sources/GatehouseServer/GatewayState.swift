import GatehouseConfiguration
import GatehouseProxy
import NIOConcurrencyHelpers
import NIOCore

/// What every connection of the public listener shares: the configuration, the current tenants (swapped
/// atomically on reload), the policy and the access log.
final class GatewayState: Sendable {
    let configuration: GatewayConfiguration
    private let directory: NIOLockedValueBox<TenantDirectory>
    let authorizer = RouteAuthorizer()
    let accessLog: AccessLogger?

    init(configuration: GatewayConfiguration, tenants: TenantDirectory, accessLog: AccessLogger?) {
        self.configuration = configuration
        self.directory = NIOLockedValueBox(tenants)
        self.accessLog = accessLog
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
