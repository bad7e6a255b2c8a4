import ArgumentParser
import Foundation
import GatehouseConfiguration
import GatehouseEcho
import GatehouseIdentity
import GatehouseSQLiteStore
import GatehouseServer
import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "A multi-tenant identity gateway: sign-up, login, JWT validation and a policy-enforcing reverse proxy.",
        version: GatehouseVersion.current,
        subcommands: [Serve.self, Check.self, Users.self, Keys.self, Audit.self, Store.self, Echo.self]
    )

    /// The subcommands other than `serve` report through their output and exit status; the store's own log lines
    /// are for warnings only.
    static var commandLogger: Logger {
        var logger = Logger(label: "gatehouse")
        logger.logLevel = .warning
        return logger
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The gateway configuration file.")
    var config: String = "config/gatehouse.yaml"
}

/// Exits 1 with a one-line reason (§8).
struct Failure: Error, CustomStringConvertible {
    let description: String
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["GATEHOUSE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
        let logger = Logger(label: "gatehouse")
        let environment = ProcessInfo.processInfo.environment
        let loaded: LoadedConfiguration
        switch ConfigurationLoader.load(configPath: options.config, environment: environment) {
        case .success(let value): loaded = value
        case .failure(let error):
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
        // GATEHOUSE_THREADS overrides the number of event loops (default: one per core).
        let threads = environment["GATEHOUSE_THREADS"].flatMap(Int.init).map { max(1, $0) } ?? System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let server: GatewayServer
        let store: OpenedStore
        do {
            store = try StoreBootstrap.open(loaded.gateway, group: group, logger: logger)
            // A wrong password, host or database ends the process here, with the reason, not at the first login.
            try await StoreBootstrap.verify(store)
            server = try GatewayServer(configuration: loaded, environment: environment, group: group, logger: logger, store: store)
        } catch {
            throw Failure(description: "gatehouse: \(error)")
        }
        // Once per process: whatever records through swift-metrics (the gateway, and any library that does) lands
        // in the registry the admin listener serves.
        if let registry = server.metricsRegistry { MetricsSystem.bootstrap(registry) }
        // The store's background work first: the group stops services in reverse order, so it outlives the drain.
        var configuration = ServiceGroupConfiguration(
            services: store.services.map { .init(service: $0) } + [.init(service: GatewayService(server: server, logger: logger))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // The server drains for at most 30 s; past that, cancel, and never hang on exit.
        configuration.maximumGracefulShutdownDuration = .seconds(35)
        configuration.maximumCancellationDuration = .seconds(5)
        let services = ServiceGroup(configuration: configuration)
        do {
            try await services.run()
        } catch {
            throw Failure(description: "gatehouse: \(error)")
        }
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate the configuration and every tenant file.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        switch ConfigurationLoader.load(configPath: options.config, environment: ProcessInfo.processInfo.environment) {
        case .success(let loaded):
            let tenants = loaded.tenants.tenants.count
            let routes = loaded.tenants.tenants.values.reduce(0) { $0 + $1.routes.count }
            print("\(options.config): ok (\(tenants) tenant\(tenants == 1 ? "" : "s"), \(routes) route\(routes == 1 ? "" : "s"))")
            // Accounts the move to canonical addresses found sharing one address (§5), when the store exists.
            // (A PostgreSQL URL is checked for syntax only: whether its server answers is for `serve` to find out.)
            if case .sqlite(let path) = loaded.gateway.store, FileManager.default.fileExists(atPath: path) {
                for conflict in try SQLiteIdentityStore.emailConflicts(readingFileAt: path) { print("warning: \(conflict.explanation)") }
            }
        case .failure(let error):
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}

struct Echo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a tiny upstream that answers with the request it got, as JSON.")

    @Option(help: "host:port to listen on.")
    var listen: String = "127.0.0.1:9001"

    func run() async throws {
        guard let address = ListenAddress.parse(listen) else {
            throw Failure(description: "gatehouse echo: '\(listen)' is not host:port")
        }
        let channel = try await EchoServer.bind(host: address.host, port: address.port, group: MultiThreadedEventLoopGroup.singleton)
        print("echo upstream listening on \(channel.localAddress.map(String.init(describing:)) ?? listen)")
        try await channel.closeFuture.get()
    }
}
