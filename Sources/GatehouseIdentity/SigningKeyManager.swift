import Foundation
import GatehouseConfiguration
import GatehouseTokens
import Synchronization

/// Creates, rotates and loads tenants' signing keys, and keeps the ``KeyDirectory`` the proxy path reads in step
/// with the store (so a rotation by `gatehouse keys rotate` or another replica is picked up).
public final class SigningKeyManager: Sendable {
    public let directory: KeyDirectory
    private let store: any IdentityStore
    private let masterKey: MasterKey
    /// Decrypted keys by `tenant/kid`: the store is polled often, but each key is opened only once.
    private let opened = Mutex<[String: SigningKey]>([:])
    private let tenants = Mutex<[String: TenantConfiguration]>([:])
    /// Bumped whenever one tenant's ring is replaced, so a full reload that read the store before that change
    /// does not put the older rings back (it skips, and the next reload catches up).
    private let generation = Mutex(0)

    public init(store: any IdentityStore, masterKey: MasterKey, directory: KeyDirectory = KeyDirectory()) {
        self.store = store
        self.masterKey = masterKey
        self.directory = directory
    }

    /// The tenants whose rings are kept; HS256 tenants' rings come from their configured secret.
    public func setTenants(_ configurations: [TenantConfiguration]) async throws {
        tenants.withLock { $0 = Dictionary(configurations.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last }) }
        try await reload()
    }

    /// Rebuilds every ring from the store.
    public func reload(now: Int64 = SigningKeyManager.now()) async throws {
        let startedAt = generation.withLock { $0 }
        let stored = try await store.allSigningKeys()
        let configurations = tenants.withLock { $0 }
        var rings: [String: KeyRing] = [:]
        var byTenant: [String: [StoredSigningKey]] = [:]
        for key in stored { byTenant[key.tenant, default: []].append(key) }
        for (id, configuration) in configurations {
            rings[id] = try ring(for: configuration, stored: byTenant[id] ?? [], now: now)
        }
        generation.withLock { current in
            if current == startedAt { directory.replaceAll(rings) }
        }
    }

    /// The key that signs for `tenant` now, created (and stored) on first use.
    public func activeKey(for tenant: TenantConfiguration, now: Int64 = SigningKeyManager.now()) async throws -> SigningKey {
        if let key = directory.ring(for: tenant.id).signingKey, key.algorithm.rawValue == tenant.tokens.algorithm.rawValue {
            return key
        }
        if tenant.tokens.algorithm != .hs256 {
            let active = try await store.signingKeys(tenant: tenant.id).first { $0.retiredAt == nil }
            // None yet (unless another replica wins the race), or the configured algorithm changed: a rotation.
            // When another process already made a suitable key, it is only loaded.
            if active?.algorithm != tenant.tokens.algorithm.rawValue {
                try await createKey(for: tenant, replacing: active != nil, now: now)
            }
        }
        try await reloadTenant(tenant, now: now)
        guard let key = directory.ring(for: tenant.id).signingKey else { throw KeyFailure.noSecret(tenant.id) }
        return key
    }

    /// Makes a new active key; the old one keeps verifying until its last token can have expired.
    @discardableResult
    /// `audit`: the `key_rotated` event, stored with the key (the new key's `kid` added to its details) and handed
    /// to `committed` as soon as the store has it, before anything else can fail.
    public func rotate(
        _ tenant: TenantConfiguration, now: Int64 = SigningKeyManager.now(), audit: AuditEvent? = nil,
        committed: ([AuditEvent]) -> Void = { _ in }
    ) async throws -> String {
        guard tenant.tokens.algorithm != .hs256 else { throw KeyFailure.symmetric(tenant.id) }
        let kid = try await createKey(for: tenant, replacing: true, now: now, audit: audit, committed: committed)
        try await reloadTenant(tenant, now: now)
        return kid
    }

    /// The tenant's keys as stored, newest last (for `keys list`).
    public func storedKeys(for tenant: String) async throws -> [StoredSigningKey] {
        try await store.signingKeys(tenant: tenant)
    }

    @discardableResult
    private func createKey(
        for tenant: TenantConfiguration, replacing: Bool, now: Int64, audit: AuditEvent? = nil, committed: ([AuditEvent]) -> Void = { _ in }
    ) async throws -> String {
        let algorithm = JWSAlgorithm(rawValue: tenant.tokens.algorithm.rawValue) ?? .es256
        let key = try SigningKey.generate(algorithm)
        let sealed = try masterKey.seal(key.privateRepresentation, context: Self.context(tenant.id, key.kid))
        let stored = StoredSigningKey(tenant: tenant.id, kid: key.kid, algorithm: algorithm.rawValue, sealedPrivateKey: sealed, createdAt: now)
        let retireAfter = now + Int64(tenant.tokens.accessTTL.components.seconds + tenant.tokens.clockSkew.components.seconds)
        var events: [AuditEvent] = []
        if var event = audit {
            event.details = ["kid": key.kid]
            events.append(event)
        }
        _ = try await store.activateSigningKey(stored, onlyIfNoneActive: !replacing, previousVerifiesUntil: retireAfter, audit: events)
        committed(events)
        return key.kid
    }

    private func reloadTenant(_ tenant: TenantConfiguration, now: Int64) async throws {
        let stored = try await store.signingKeys(tenant: tenant.id)
        let fresh = try ring(for: tenant, stored: stored, now: now)
        generation.withLock { current in
            current += 1
            directory.replace(fresh, for: tenant.id)
        }
    }

    private func ring(for tenant: TenantConfiguration, stored: [StoredSigningKey], now: Int64) throws -> KeyRing {
        if tenant.tokens.algorithm == .hs256 {
            guard let secret = tenant.tokens.secret else { return .empty }
            return KeyRing(signingKey: .hmac(secret: secret), verificationKeys: [])
        }
        var active: SigningKey?
        var verifying: [VerificationKey] = []
        for record in stored {
            if let until = record.verifiesUntil, until < now { continue }  // retired for good
            let key = try open(record)
            if record.retiredAt == nil, key.algorithm.rawValue == tenant.tokens.algorithm.rawValue {
                active = key
            } else {
                verifying.append(key.verificationKey)
            }
        }
        return KeyRing(signingKey: active, verificationKeys: verifying)
    }

    private func open(_ record: StoredSigningKey) throws -> SigningKey {
        let cacheKey = record.tenant + "/" + record.kid
        if let key = opened.withLock({ $0[cacheKey] }) { return key }
        guard let algorithm = JWSAlgorithm(rawValue: record.algorithm) else { throw KeyFailure.unknownAlgorithm(record.algorithm) }
        let privateKey = try masterKey.open(record.sealedPrivateKey, context: Self.context(record.tenant, record.kid))
        let key = try SigningKey(kid: record.kid, algorithm: algorithm, privateRepresentation: privateKey)
        opened.withLock { $0[cacheKey] = key }
        return key
    }

    private static func context(_ tenant: String, _ kid: String) -> String { "gatehouse-signing-key:\(tenant):\(kid)" }

    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    public enum KeyFailure: Error, CustomStringConvertible {
        case noSecret(String)
        case symmetric(String)
        case unknownAlgorithm(String)

        public var description: String {
            switch self {
            case .noSecret(let tenant): return "tenant '\(tenant)' has no signing key"
            case .symmetric(let tenant): return "tenant '\(tenant)' uses HS256: its key is tokens.secret; rotate it by changing the secret"
            case .unknownAlgorithm(let name): return "a stored key has an unknown algorithm '\(name)'"
            }
        }
    }
}
