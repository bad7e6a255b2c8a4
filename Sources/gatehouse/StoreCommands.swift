import ArgumentParser
import Foundation
import GatehouseConfiguration
import GatehouseIdentity
import GatehousePostgresStore
import GatehouseSQLiteStore
import GatehouseServer

struct Store: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Move the store.", subcommands: [Migrate.self])

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy everything from the configured SQLite store into an empty PostgreSQL database (§9).")

        @OptionGroup var options: ConfigOption
        @Option(help: "The target: postgres://user:pass@host:5432/db[?sslmode=...].") var to: String

        func run() async throws {
            let loaded: LoadedConfiguration
            switch ConfigurationLoader.load(configPath: options.config, environment: ProcessInfo.processInfo.environment) {
            case .success(let value): loaded = value
            case .failure(let error): throw Failure(description: error.description)
            }
            guard case .sqlite(let path) = loaded.gateway.store else {
                throw Failure(description: "store migrate: the configured store is not SQLite; it copies from sqlite: to postgres://")
            }
            guard FileManager.default.fileExists(atPath: path) else { throw Failure(description: "store migrate: no SQLite store at \(path)") }
            let url: PostgresURL
            switch PostgresURL.parse(to, relativeTo: FileManager.default.currentDirectoryPath) {
            case .success(let value): url = value
            case .failure(let error): throw Failure(description: "store migrate: --to: the PostgreSQL URL \(error)")
            }
            let source: SQLiteIdentityStore
            do {
                source = try SQLiteIdentityStore(path: path)
            } catch {
                throw Failure(description: "store migrate: cannot open \(path): \(error)")
            }
            let target: PostgresIdentityStore
            do {
                target = try PostgresIdentityStore(url: url, logger: Gatehouse.commandLogger)
            } catch {
                throw Failure(description: "store migrate: \(url): \(error)")
            }
            do {
                try await target.probe()
            } catch {
                throw Failure(description: "store migrate: cannot use \(url): \(IdentityStoreError.reason(of: error))")
            }
            let copied = try await withThrowingTaskGroup(of: Void.self) { group -> [(String, Int)] in
                group.addTask { await PostgresStoreService(store: target).run() }
                defer { group.cancelAll() }
                do {
                    try await target.prepare()
                    let existing = try await target.rowCounts().filter { $0.value > 0 }
                    if !existing.isEmpty {
                        let tables = existing.keys.sorted().map { "\($0) (\(existing[$0]!))" }.joined(separator: ", ")
                        throw Failure(description: "store migrate: \(url) already holds Gatehouse data in \(tables); refusing to copy into it")
                    }
                    // One consistent read of the source; one transaction on the target, each table counted before it
                    // commits: a failure leaves the target empty, so the command can simply be run again.
                    return try await target.importTables(try await source.exportTables()).map { ($0.table, $0.rows) }
                } catch let error as Failure {
                    throw error
                } catch {
                    throw Failure(description: "store migrate: \(IdentityStoreError.reason(of: error))")
                }
            }
            for (table, rows) in copied { print("\(table): \(rows) row\(rows == 1 ? "" : "s") copied, count checked") }
            print("copied \(path) into \(url). Now set store: to that URL\(loaded.gateway.masterKey == nil ? ", and master_key: to the contents of \((path as NSString).deletingLastPathComponent)/master.key (PostgreSQL needs it set)" : "").")
        }
    }
}
