import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL cluster for the tests: `initdb` into a temporary folder, started on a free loopback port
/// with `fsync=off`, password (SCRAM) authentication over TCP. Nothing has to be running beforehand; Debian's
/// `postgresql` package (installed by `scripts/install-deps.sh`) provides the programs. PostgreSQL refuses to run
/// as root, so as root the cluster belongs to the `postgres` user.
public final class PostgresTestServer: Sendable {
    public static let user = "gatehouse"
    public static let password = "test-db-password-4d1c"

    public let port: Int
    let folder: String
    private let databaseCounter = NIOLockedValueBox(0)

    /// The cluster every test in this process shares (each test makes its own database); stopped at exit.
    public static func shared() throws -> PostgresTestServer {
        try sharedServer.withLockedValue { server in
            if let server { return server }
            let started = try PostgresTestServer.start()
            server = started
            sharedFolder.withLockedValue { $0 = started.folder }
            atexit {
                if let folder = PostgresTestServer.sharedFolder.withLockedValue({ $0 }) {
                    PostgresTestServer.stop(folder: folder)
                    try? FileManager.default.removeItem(atPath: folder)
                }
            }
            return started
        }
    }

    private static let sharedServer = NIOLockedValueBox<PostgresTestServer?>(nil)
    private static let sharedFolder = NIOLockedValueBox<String?>(nil)

    /// A cluster of its own (for tests that stop and start the server); call ``stop()`` when done. With `tls`, the
    /// server offers TLS with a certificate for `localhost` (not `127.0.0.1`) signed by a CA in ``caCertificatePath``.
    public static func start(tls: Bool = false) throws -> PostgresTestServer {
        let bin = try binaries()
        // As root the cluster belongs to postgres, which must reach the folder: /tmp, whatever TMPDIR says.
        let base = getuid() == 0 ? "/tmp" : FileManager.default.temporaryDirectory.path
        let folder = base + "/gatehouse-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try (password + "\n").write(toFile: folder + "/pwfile", atomically: true, encoding: .utf8)
        if getuid() == 0 {
            _ = try execute(systemProgram("chown"), ["-R", "postgres:postgres", folder])
        }
        let initialized = try execute(
            bin + "/initdb",
            ["-D", folder + "/data", "-U", user, "--pwfile=" + folder + "/pwfile", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
             "--no-sync", "--no-instructions"], asPostgres: true)
        guard initialized.status == 0 else { throw Failure("initdb failed: \(initialized.output)") }
        let port = try freePort()
        if tls { try makeCertificates(in: folder) }
        let options = serverOptions(port: port, folder: folder)
        let started = try execute(bin + "/pg_ctl", ["-D", folder + "/data", "-l", folder + "/log", "-o", options, "-w", "-t", "60", "start"], asPostgres: true)
        guard started.status == 0 else {
            let log = (try? String(contentsOfFile: folder + "/log", encoding: .utf8)) ?? ""
            throw Failure("pg_ctl start failed: \(started.output) \(log)")
        }
        return PostgresTestServer(port: port, folder: folder)
    }

    /// The server's settings: loopback only, its socket in the folder, no fsync (a crashed test cluster is thrown
    /// away), TLS when the folder holds a certificate.
    private static func serverOptions(port: Int, folder: String) -> String {
        var options = [
            "-p \(port)", "-k \(folder)", "-c listen_addresses=127.0.0.1", "-c fsync=off", "-c full_page_writes=off", "-c max_connections=300",
        ]
        if FileManager.default.fileExists(atPath: folder + "/server.pem") {
            options += ["-c ssl=on", "-c ssl_cert_file=\(folder)/server.pem", "-c ssl_key_file=\(folder)/server.key"]
        }
        return options.joined(separator: " ")
    }

    /// The CA that signed a TLS server's certificate (PEM).
    public var caCertificatePath: String { folder + "/ca.pem" }

    /// A CA and a server certificate it signs for `localhost` only; the key readable only by the server's owner.
    private static func makeCertificates(in folder: String) throws {
        let authority = try TestCertificateAuthority(folder: folder, names: ["DNS:localhost"])
        chmod(authority.serverKey, 0o600)
        chmod(authority.caCertificate, 0o644)
        if getuid() == 0 { _ = try execute(systemProgram("chown"), ["-R", "postgres:postgres", folder]) }
    }

    private init(port: Int, folder: String) {
        self.port = port
        self.folder = folder
    }

    /// A new, empty database; returns its name.
    public func createDatabase() throws -> String {
        let number = databaseCounter.withLockedValue { value in
            value += 1
            return value
        }
        let name = "gatehouse_\(getpid())_\(number)_\(UInt32.random(in: 0...UInt32.max))"
        let result = try Self.execute(
            try Self.binaries() + "/psql", ["-h", folder, "-p", String(port), "-U", Self.user, "-d", "postgres", "-q", "-c", "CREATE DATABASE \(name)"],
            asPostgres: true)
        guard result.status == 0 else { throw Failure("CREATE DATABASE failed: \(result.output)") }
        return name
    }

    /// Runs one SQL statement in `database` as the owner (for tests that look at or change rows directly).
    public func sql(_ statement: String, database: String) throws -> String {
        let result = try Self.execute(
            try Self.binaries() + "/psql",
            ["-h", folder, "-p", String(port), "-U", Self.user, "-d", database, "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", statement],
            asPostgres: true)
        guard result.status == 0 else { throw Failure("psql failed: \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `postgres://…` for `database`, with the password unless told otherwise.
    public func url(database: String, password: String = PostgresTestServer.password, port: Int? = nil) -> String {
        "postgres://\(Self.user):\(password)@127.0.0.1:\(port ?? self.port)/\(database)?sslmode=disable"
    }

    /// Stops the server at once (as a crash would look to clients).
    public func stop() {
        Self.stop(folder: folder)
    }

    /// Freezes the server and its backends (SIGSTOP): connections stay open and nothing answers, as when a network
    /// path goes silent. ``resume()`` thaws it.
    public func pause() throws { try signalCluster(SIGSTOP) }

    public func resume() throws { try signalCluster(SIGCONT) }

    /// Signals the postmaster and its children (found in /proc: no procps needed).
    private func signalCluster(_ signal: Int32) throws {
        let pidFile = try String(contentsOfFile: folder + "/data/postmaster.pid", encoding: .utf8)
        guard let postmaster = pidFile.split(separator: "\n").first.flatMap({ Int32($0) }) else { throw Failure("no postmaster.pid") }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "pid (name)": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == postmaster { kill(pid, signal) }
        }
        kill(postmaster, signal)
    }

    /// Starts a stopped server again on the same port.
    public func restart() throws {
        let options = Self.serverOptions(port: port, folder: folder)
        let started = try Self.execute(
            try Self.binaries() + "/pg_ctl", ["-D", folder + "/data", "-l", folder + "/log", "-o", options, "-w", "-t", "60", "start"], asPostgres: true)
        guard started.status == 0 else { throw Failure("pg_ctl start failed: \(started.output)") }
    }

    private static func stop(folder: String) {
        guard let bin = try? binaries() else { return }
        _ = try? execute(bin + "/pg_ctl", ["-D", folder + "/data", "-m", "immediate", "-w", "stop"], asPostgres: true)
    }

    /// Stops the server and deletes its folder (the shared cluster's at exit).
    public func remove() {
        stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// A loopback port nothing listens on (a cluster's, once it is gone).
    public static func closedPort() throws -> Int {
        let server = try start()
        server.remove()
        return server.port
    }

    /// A base system program, where this system keeps it (/usr/bin or /bin; /usr/sbin or /sbin).
    static func systemProgram(_ name: String) -> String {
        for folder in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] where FileManager.default.isExecutableFile(atPath: folder + "/" + name) {
            return folder + "/" + name
        }
        return "/usr/bin/" + name
    }

    /// The newest installed PostgreSQL's programs (Debian keeps them out of PATH).
    static func binaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        for version in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw Failure("PostgreSQL is not installed (no \(root)/*/bin/initdb); run scripts/install-deps.sh")
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    private static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        guard bound == 0 else { throw Failure("cannot find a free port") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs a program with its output in a file (a server it starts must not hold a pipe of ours open), by
    /// `posix_spawn` and `waitpid`: Foundation's `Process` can miss the exit of a short-lived `runuser` here.
    static func execute(_ program: String, _ arguments: [String], asPostgres: Bool = false) throws -> (status: Int32, output: String) {
        var argv = [program] + arguments
        if asPostgres && getuid() == 0 { argv = [systemProgram("runuser"), "-u", "postgres", "--"] + argv }
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-pg-out-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of this process: a child that inherits the test process's sockets (an in-process gateway's
        // accepted connections) keeps them open after the gateway closes them, so their clients never see the close
        // (and a long-lived server, postgres or aiosmtpd, would keep them for the whole run).
        closeInheritedDescriptors(&actions)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid = pid_t()
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        resetSignals(&attributes)
        let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, environ)
        guard spawned == 0 else { throw Failure("cannot run \(argv[0]): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitStatus, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}
