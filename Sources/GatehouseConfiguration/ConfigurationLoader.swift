import Dispatch
import Foundation
import Synchronization

/// The process configuration together with every tenant, as validated at start-up or by `gatehouse check`.
public struct LoadedConfiguration: Sendable {
    public var gateway: GatewayConfiguration
    public var tenants: TenantCatalog
}

/// Reads `config/gatehouse.yaml` and the tenants folder.
public enum ConfigurationLoader {
    /// Loads everything strictly: any problem in any file fails the whole load, with every problem listed.
    public static func load(configPath: String, environment: [String: String]) -> Result<LoadedConfiguration, ConfigurationError> {
        let gateway: GatewayConfiguration
        switch loadGateway(configPath: configPath, environment: environment) {
        case .success(let value): gateway = value
        case .failure(let error): return .failure(error)
        }
        let reload = TenantCatalog.load(gateway: gateway, environment: environment, previous: nil)
        guard reload.diagnostics.isEmpty else { return .failure(ConfigurationError(reload.diagnostics)) }
        return .success(LoadedConfiguration(gateway: gateway, tenants: reload.catalog))
    }

    public static func loadGateway(configPath: String, environment: [String: String]) -> Result<GatewayConfiguration, ConfigurationError> {
        let reader = ConfigurationReader(file: configPath, environment: environment)
        guard let data = FileManager.default.contents(atPath: configPath), let text = String(data: data, encoding: .utf8) else {
            reader.error(line: 1, "cannot read the configuration file (does it exist? use --config PATH)")
            return .failure(ConfigurationError(reader.diagnostics))
        }
        let gateway = GatewayConfiguration.parse(text: text, reader: reader, directory: FilePath.directory(of: configPath))
        if let gateway, reader.diagnostics.isEmpty {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: gateway.tenantsDirectory, isDirectory: &isDirectory) || !isDirectory.boolValue {
                reader.error(line: 1, "tenants folder '\(gateway.tenantsDirectory)' does not exist")
            }
        }
        guard let gateway, reader.diagnostics.isEmpty else { return .failure(ConfigurationError(reader.diagnostics)) }
        return .success(gateway)
    }
}

/// What identifies one version of a tenant file, so a reload re-parses only files that changed.
struct FileSignature: Sendable, Hashable {
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
    var size: Int64
    var inode: UInt64
}

/// Every tenant currently in force, by id, with the file versions they came from.
public struct TenantCatalog: Sendable {
    public private(set) var tenants: [String: TenantConfiguration] = [:]
    private var signatures: [String: FileSignature] = [:]

    public init() {}

    /// The result of reading the tenants folder.
    public struct Reload: Sendable {
        /// The tenants to serve: good files, and for bad files the previous version when there was one.
        public var catalog: TenantCatalog
        /// Problems found, as `file:line: message`.
        public var diagnostics: [ConfigurationDiagnostic]
        /// Ids whose configuration changed (added, replaced or removed).
        public var changed: [String]
    }

    /// Reads the tenants folder. Files unchanged since `previous` are not parsed again; a file that fails
    /// keeps its previous version, so one bad edit never takes a working tenant down.
    public static func load(gateway: GatewayConfiguration, environment: [String: String], previous: TenantCatalog?) -> Reload {
        let directory = gateway.tenantsDirectory
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) }
            .sorted()
        let displayDirectory = directory

        struct Outcome: Sendable {
            var id: String
            var path: String
            var signature: FileSignature?
            var configuration: TenantConfiguration?
            var diagnostics: [ConfigurationDiagnostic]
            var reused: Bool
        }
        let outcomes = Mutex<[Outcome?]>(Array(repeating: nil, count: names.count))
        // Parsing is CPU-bound and independent per file: spread it over the cores (10,000 tenants start in seconds).
        DispatchQueue.concurrentPerform(iterations: names.count) { index in
            let name = names[index]
            let id = String(name[..<name.lastIndex(of: ".")!])
            let path = displayDirectory + "/" + name
            let signature = fileSignature(path)
            var outcome = Outcome(id: id, path: path, signature: signature, configuration: nil, diagnostics: [], reused: false)
            if let previous, let signature, previous.signatures[id] == signature, let existing = previous.tenants[id] {
                outcome.configuration = existing
                outcome.reused = true
            } else {
                let reader = ConfigurationReader(file: path, environment: environment)
                if !TenantConfiguration.isValidID(id) {
                    reader.error(line: 1, "the file name '\(name)' is not a valid tenant id (lower-case letters, digits, - and _)")
                } else if let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) {
                    outcome.configuration = TenantConfiguration.parse(id: id, text: text, reader: reader, gateway: gateway)
                } else {
                    reader.error(line: 1, "cannot read the file as UTF-8 text")
                }
                outcome.diagnostics = reader.diagnostics
            }
            outcomes.withLock { $0[index] = outcome }
        }

        var reload = Reload(catalog: TenantCatalog(), diagnostics: [], changed: [])
        var candidates: [TenantConfiguration] = []
        var fresh: Set<String> = []
        var seenIDs: Set<String> = []
        for outcome in outcomes.withLock({ $0 }).compactMap({ $0 }) {
            guard seenIDs.insert(outcome.id).inserted else {
                reload.diagnostics.append(
                    ConfigurationDiagnostic(file: outcome.path, line: 1, message: "tenant '\(outcome.id)' is already defined by another file"))
                continue
            }
            reload.diagnostics += outcome.diagnostics
            if let configuration = outcome.configuration, outcome.diagnostics.isEmpty {
                candidates.append(configuration)
                if let signature = outcome.signature { reload.catalog.signatures[outcome.id] = signature }
                if !outcome.reused { fresh.insert(outcome.id) }
            } else if let kept = previous?.tenants[outcome.id] {
                candidates.append(kept)
                reload.catalog.signatures[outcome.id] = previous?.signatures[outcome.id]
            }
        }

        // A host belongs to one tenant. Tenants that were already serving keep their hosts; a changed file that
        // claims a taken host is the one refused.
        candidates.sort { (fresh.contains($0.id) ? 1 : 0, $0.id) < (fresh.contains($1.id) ? 1 : 0, $1.id) }
        var owners: [HostPattern: String] = [:]
        for candidate in candidates {
            var accepted = candidate
            if let clash = candidate.hosts.first(where: { owners[$0] != nil }) {
                reload.diagnostics.append(
                    ConfigurationDiagnostic(
                        file: candidate.file, line: candidate.hostsLine,
                        message: "host '\(clash)' is already claimed by tenant '\(owners[clash]!)'"))
                reload.catalog.signatures[candidate.id] = nil
                guard let kept = previous?.tenants[candidate.id], !kept.hosts.contains(where: { owners[$0] != nil }) else { continue }
                accepted = kept
                reload.catalog.signatures[candidate.id] = previous?.signatures[candidate.id]
            }
            for host in accepted.hosts { owners[host] = accepted.id }
            reload.catalog.tenants[accepted.id] = accepted
        }

        let previousIDs = Set(previous?.tenants.keys.map { $0 } ?? [])
        let currentIDs = Set(reload.catalog.tenants.keys)
        reload.changed = (previousIDs.symmetricDifference(currentIDs).union(fresh.intersection(currentIDs))).sorted()
        return reload
    }

    private static func fileSignature(_ path: String) -> FileSignature? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileSignature(
            modifiedSeconds: info.st_mtim.tv_sec, modifiedNanoseconds: info.st_mtim.tv_nsec, size: Int64(info.st_size), inode: UInt64(info.st_ino))
    }
}
