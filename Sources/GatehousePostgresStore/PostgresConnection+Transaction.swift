import Logging
import PostgresNIO

extension PostgresConnection {
    /// `withTransaction`, throwing what actually failed: the closure's own error (a unique violation, an
    /// ``GatehouseIdentity/IdentityStoreError``), or else the failed `BEGIN`, `COMMIT` or `ROLLBACK`, instead of
    /// postgres-nio's wrapper around them, so callers can tell a taken address from an outage.
    func transaction<Result: Sendable>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await withTransaction(logger: logger, isolation: isolation, body)
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.commitError ?? error.beginError ?? error.rollbackError ?? error
        }
    }
}
