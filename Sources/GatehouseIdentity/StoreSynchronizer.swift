import Foundation
import GatehouseConfiguration
import Logging
import ServiceLifecycle

/// Keeps this replica's memory in step with the store, so the proxy path never asks the database (§9): revocations
/// (pushed by the store as they commit, and a catch-up read as the safety net), signing keys (a rotation by the CLI
/// or another replica), and the periodic purge. Tracks ``StoreHealth``. Runs until cancelled (``GatewayService``
/// cancels it after the drain, so requests still in flight see revocations).
public struct StoreSynchronizer: Service {
    private let identity: IdentityService
    private let tenants: @Sendable () -> [TenantConfiguration]
    private let cursor: Int64
    private let catchUpInterval: Duration
    private let keyReloadInterval: Duration
    private let purgeInterval: Duration
    private let auditRetention: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - cursor: where the start-up read of revocations ended.
    ///   - tenants: the tenants whose expired sessions and old lockout failures the purge forgets.
    ///   - catchUpInterval: how often revocations are read even without a signal (the bound when signals are lost).
    ///   - keyReloadInterval: how often signing keys are re-read (a rotation is seen within this, §9 asks for 5 s).
    ///   - auditRetention: audit events older than this are deleted by the purge (`audit_retention`).
    public init(
        identity: IdentityService, cursor: Int64, tenants: @escaping @Sendable () -> [TenantConfiguration], catchUpInterval: Duration = .seconds(1),
        keyReloadInterval: Duration = .seconds(2), purgeInterval: Duration = .seconds(600), auditRetention: Duration = .seconds(90 * 86_400),
        logger: Logger
    ) {
        self.auditRetention = auditRetention
        self.identity = identity
        self.cursor = cursor
        self.tenants = tenants
        self.catchUpInterval = catchUpInterval
        self.keyReloadInterval = keyReloadInterval
        self.purgeInterval = purgeInterval
        self.logger = logger
    }

    private enum Event: Sendable {
        case signal(StoreSignal)
        case tick
    }

    public func run() async throws {
        // One loop applies everything in order; the store's signals and a clock feed it.
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let store = identity.store
        let interval = catchUpInterval
        await withDiscardingTaskGroup { group in
            let identity = self.identity
            group.addTask {
                for await signal in store.changeSignals() {
                    // A pushed revocation is enforced here, at once: it must not wait behind a slow catch-up read.
                    if case .revoked(let records) = signal {
                        identity.apply(records)
                    } else {
                        continuation.yield(.signal(signal))
                    }
                }
            }
            group.addTask {
                while (try? await Task.sleep(for: interval)) != nil { continuation.yield(.tick) }
            }
            var loop = SyncLoop(cursor: cursor)
            // It ends when cancelled, not at graceful shutdown: whoever runs it keeps it going while connections drain.
            for await event in events {
                await handle(event, &loop)
            }
            group.cancelAll()
        }
    }

    /// What the loop remembers between events.
    private struct SyncLoop {
        var cursor: Int64
        /// The signal connection is down: a successful read is not yet "in sync".
        var signalsLost = false
        /// A read failed since the last full reload: the next good one reloads everything.
        var needsFullReload = false
        let clock = ContinuousClock()
        var lastCatchUp: ContinuousClock.Instant
        var lastKeyReload: ContinuousClock.Instant
        var lastPurge: ContinuousClock.Instant

        init(cursor: Int64) {
            self.cursor = cursor
            lastCatchUp = clock.now
            lastKeyReload = clock.now
            lastPurge = clock.now
        }
    }

    private func handle(_ event: Event, _ loop: inout SyncLoop) async {
        switch event {
        case .signal(.revoked):
            break  // applied where the signal arrives, never queued
        case .signal(.changed):
            await catchUp(&loop)
        case .signal(.keysChanged):
            await reloadKeys(&loop)
        case .signal(.disconnected(let reason)):
            loop.signalsLost = true
            loop.needsFullReload = true
            if identity.health.mark(up: false, reason: reason) {
                logger.error("identity store down; proxying goes on from memory", metadata: ["reason": "\(reason)"])
            }
        case .signal(.reconnected):
            loop.signalsLost = false
            loop.needsFullReload = true
            await catchUp(&loop)
            await reloadKeys(&loop)
        case .tick:
            // Ticks queue up behind a slow read during an outage; one read per interval is enough.
            if loop.clock.now - loop.lastCatchUp >= catchUpInterval / 2 { await catchUp(&loop) }
            if loop.clock.now - loop.lastKeyReload >= keyReloadInterval { await reloadKeys(&loop) }
            if loop.clock.now - loop.lastPurge >= purgeInterval {
                loop.lastPurge = loop.clock.now
                await purge()
            }
        }
    }

    private func catchUp(_ loop: inout SyncLoop) async {
        loop.lastCatchUp = loop.clock.now
        do {
            // After an outage anything may have been missed: read every revocation still in force, not just those
            // after the cursor, before calling this replica in sync again.
            loop.cursor = try await identity.syncRevocations(after: loop.needsFullReload ? 0 : loop.cursor)
            loop.needsFullReload = false
            if !loop.signalsLost, identity.health.mark(up: true) {
                logger.notice("identity store up again; revocations reloaded")
            }
        } catch {
            loop.needsFullReload = true
            let reason = IdentityStoreError.reason(of: error)
            if identity.health.mark(up: false, reason: reason) {
                logger.error("identity store down; proxying goes on from memory", metadata: ["reason": "\(reason)"])
            }
        }
    }

    private func reloadKeys(_ loop: inout SyncLoop) async {
        loop.lastKeyReload = loop.clock.now
        do {
            try await identity.keys.reload()
        } catch {
            logger.debug("cannot reload signing keys", metadata: ["error": "\(IdentityStoreError.reason(of: error))"])
        }
    }

    private func purge() async {
        for tenant in tenants() {
            do {
                _ = try await identity.purgeSessions(tenant: tenant)
            } catch {
                logger.warning("cannot purge expired sessions", metadata: ["tenant": "\(tenant.id)", "error": "\(IdentityStoreError.reason(of: error))"])
            }
        }
        do {
            let cutoff = AuditEvent.nowMilliseconds() - Int64(auditRetention.components.seconds) * 1000
            let deleted = try await identity.store.deleteAuditEvents(before: cutoff)
            if deleted > 0 { logger.info("audit events past audit_retention deleted", metadata: ["count": "\(deleted)"]) }
        } catch {
            logger.warning("cannot purge old audit events", metadata: ["error": "\(IdentityStoreError.reason(of: error))"])
        }
    }
}
