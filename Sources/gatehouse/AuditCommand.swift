import ArgumentParser
import Foundation
import GatehouseConfiguration
import GatehouseIdentity

/// `gatehouse audit`: a tenant's audit events from the store, as the JSON lines of the audit log, newest last.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a tenant's audit events (§10) as JSON lines, newest last.")

    @OptionGroup var options: TenantOptions
    @Option(help: "Only events about this address.") var email: String?
    @Option(help: "Only events of this kind (signup, login_error, lockout, ...).") var event: String?
    @Option(help: "Only events from this long ago on, e.g. 30m, 1h, 7d.") var since: String?
    @Option(help: "At most this many events: the newest.") var limit: Int = 100

    func run() async throws {
        var query = AuditQuery(tenant: options.tenant, limit: limit)
        guard (1...100_000).contains(limit) else { throw Failure(description: "audit: --limit must be from 1 to 100000, not \(limit)") }
        if let email {
            guard let address = EmailAddress(email) else { throw Failure(description: "audit: --email '\(email)' is not an email address") }
            query.email = address.canonical
        }
        if let event {
            guard let kind = AuditEventKind(rawValue: event) else {
                let names = AuditEventKind.allCases.map(\.rawValue).joined(separator: ", ")
                throw Failure(description: "audit: --event '\(event)' is not an audit event (one of: \(names))")
            }
            query.event = kind
        }
        if let since {
            guard let duration = ConfigurationValues.duration(since), duration > .zero else {
                throw Failure(description: "audit: --since '\(since)' is not a duration (write e.g. 30m, 1h, 7d)")
            }
            query.since = AuditEvent.nowMilliseconds() - Int64(duration.components.seconds) * 1000
        }
        let events = try await options.withIdentity("audit") { identity, _ in try await identity.store.auditEvents(query) }
        var output = ""
        for event in events { output += event.jsonLine }
        FileHandle.standardOutput.write(Data(output.utf8))
    }
}
