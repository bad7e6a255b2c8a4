import CoreMetrics
import Foundation
import GatehouseConfiguration
import GatehouseTokens
import Logging
import NIOCore

/// Opens what the identity side needs from `config/gatehouse.yaml`: the store, the master key, the hashing pool
/// and the service over them. The gateway and the command line open it the same way.
public enum IdentityBootstrap {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Builds the service over an opened store. `dataDirectory` is where a master key is generated when the
    /// configuration has none (the SQLite file's folder; nil for a shared store, which needs `master_key`).
    /// `warn` receives one-line warnings (a generated master key). `revocationLag` records how long revocations
    /// took to reach this process.
    public static func open(
        _ configuration: GatewayConfiguration, store: any IdentityStore, dataDirectory: String?, hashingThreads: Int = System.coreCount,
        revocationLag: CoreMetrics.Timer? = nil, logger: Logger = Logger(label: "gatehouse.identity"), warn: (String) -> Void
    ) throws -> IdentityService {
        // First: a log that cannot be opened stops the process before anything is written (a generated master key).
        let auditLog: AuditLog
        switch configuration.auditLog {
        case .standardOutput: auditLog = .standardOutput(logger: logger)
        case .file(let path): auditLog = try .file(path, logger: logger)
        case .off: auditLog = .off
        }
        let masterKey = try masterKey(configuration, dataDirectory: dataDirectory, warn: warn)
        let revocations = RevocationList()
        let keys = SigningKeyManager(store: store, masterKey: masterKey)
        let parameters = PasswordHasher.Parameters(
            memoryKiB: UInt32(configuration.passwordHashing.memoryBytes / 1024), iterations: UInt32(configuration.passwordHashing.iterations),
            parallelism: UInt32(configuration.passwordHashing.parallelism))
        return IdentityService(
            store: store, keys: keys, revocations: revocations, hasher: PasswordHasher(parameters: parameters),
            pool: HashingPool(threads: hashingThreads), formTokenKey: masterKey.derivedKey(purpose: "gatehouse form tokens v1"), revocationLag: revocationLag,
            auditLog: auditLog, accountMail: AccountMail(defaultFrom: configuration.email?.from, masterKey: masterKey), logger: logger)
    }

    /// `master_key` from the configuration; when it is empty, a key generated once into the data folder
    /// (`master.key`, mode 0600), with a warning, so a first run just works.
    static func masterKey(_ configuration: GatewayConfiguration, dataDirectory: String?, warn: (String) -> Void) throws -> MasterKey {
        if let configured = configuration.masterKey { return try MasterKey(base64: configured) }
        guard let dataDirectory else {
            throw Failure(description: "\(configuration.file): master_key is required with a shared store (every replica must use the same one)")
        }
        let path = (dataDirectory as NSString).appendingPathComponent("master.key")
        if let existing = FileManager.default.contents(atPath: path) {
            do {
                return try MasterKey(base64: String(decoding: existing, as: UTF8.self))
            } catch {
                throw Failure(description: "\(path): \(error)")
            }
        }
        let generated = MasterKey.generateBase64()
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data((generated + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot write a master key to \(path)")
        }
        warn("master_key is not set: generated one into \(path); set GATEHOUSE_MASTER_KEY for replicas and keep a copy safe")
        return try MasterKey(base64: generated)
    }
}
