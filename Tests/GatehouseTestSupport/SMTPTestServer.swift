import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real SMTP server for tests: Debian's aiosmtpd (python3-aiosmtpd, which `scripts/install-deps.sh` installs), run
/// with Debian's own `/usr/bin/python3` on a free loopback port. Every message it accepts is written to `folder` as
/// `<n>.eml`, with the envelope in `<n>.json`. Options: STARTTLS or implicit TLS with a certificate, AUTH
/// (PLAIN and LOGIN) with one user, and refusing every recipient (550).
public final class SMTPTestServer: @unchecked Sendable {
    public struct Options: @unchecked Sendable {
        public var tls: (certificate: String, key: String)?
        public var implicitTLS = false
        public var requireTLS = false
        public var credentials: (user: String, password: String)?
        public var refuseRecipients = false
        /// A port to listen on (to start a server where a client already looks); 0 picks a free one.
        public var port = 0

        public init() {}
    }

    public let port: Int
    public let folder: URL
    /// Spawned with posix_spawn and reaped with waitpid: Foundation's `Process.waitUntilExit` can hang when called
    /// from a task on the concurrency pool.
    private var pid: pid_t = 0

    /// Starts a server, off the Swift concurrency pool: waiting for it blocks a thread, and a test blocked on one of
    /// the pool's few threads can starve the very work it waits for.
    public static func start(_ options: Options = Options()) async throws -> SMTPTestServer {
        try await offThread { try SMTPTestServer(options) }
    }

    private init(_ options: Options) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let script = folder.appendingPathComponent("sink.py")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        port = options.port == 0 ? try freeLoopbackPort() : options.port
        var arguments = [script.path, "--port", String(port), "--folder", folder.path]
        if let tls = options.tls { arguments += ["--cert", tls.certificate, "--key", tls.key] }
        if options.implicitTLS { arguments.append("--implicit-tls") }
        if options.requireTLS { arguments.append("--require-tls") }
        if let credentials = options.credentials { arguments += ["--user", credentials.user, "--password", credentials.password] }
        if options.refuseRecipients { arguments.append("--refuse-recipients") }
        let log = folder.appendingPathComponent("server.log").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of this process: a child that inherits the test process's sockets (an in-process gateway's
        // accepted connections) keeps them open after the gateway closes them, so their clients never see the close
        // (and a long-lived server, postgres or aiosmtpd, would keep them for the whole run).
        closeInheritedDescriptors(&actions)
        let argv = (["/usr/bin/python3"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        resetSignals(&attributes)
        guard posix_spawn(&pid, "/usr/bin/python3", &actions, &attributes, argv, environ) == 0 else {
            throw Failure(description: "cannot run /usr/bin/python3 (is python3-aiosmtpd installed?)")
        }
        // Ready when the port accepts a connection: within 20 s, however loaded the machine.
        for _ in 0..<800 {
            if (try? RawConnection(port: port, receiveTimeout: 1)) != nil { return }
            usleep(25_000)
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        stop()
        throw Failure(description: "aiosmtpd did not start on port \(port) (is python3-aiosmtpd installed?): \(output.suffix(500))")
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// The messages received so far, oldest first: the raw message and the envelope.
    public func messages() -> [(message: String, from: String, to: [String])] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted { Int($0.dropLast(5)) ?? 0 < Int($1.dropLast(5)) ?? 0 }.compactMap { name in
            guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path),
                let envelope = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let body = FileManager.default.contents(atPath: folder.appendingPathComponent(String(name.dropLast(5)) + ".eml").path)
            else { return nil }
            return (String(decoding: body, as: UTF8.self), envelope["from"] as? String ?? "", envelope["to"] as? [String] ?? [])
        }
    }

    /// Waits up to `timeout` for `count` messages.
    public func waitForMessages(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [(message: String, from: String, to: [String])] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let received = messages()
            if received.count >= count { return received }
            try await Task.sleep(for: .milliseconds(20))
        }
        return messages()
    }

    /// Stops the server: SIGTERM now; it is reaped (SIGKILL after 5 s) on a thread of its own, so a `defer` in an
    /// async test never blocks one of the concurrency pool's few threads while aiosmtpd exits (with two cores, two
    /// tests stopping their servers at once stalled every other test in the process for seconds).
    public func stop() {
        guard pid > 0 else { return }
        let child = pid
        pid = 0
        kill(child, SIGTERM)
        Thread {
            var status: Int32 = 0
            for _ in 0..<250 {
                if waitpid(child, &status, WNOHANG) == child { return }
                usleep(20_000)
            }
            kill(child, SIGKILL)
            waitpid(child, &status, 0)
        }.start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }

    static let script = #"""
        import argparse, asyncio, json, os, signal, ssl, threading
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        parser = argparse.ArgumentParser()
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--folder", required=True)
        parser.add_argument("--cert"); parser.add_argument("--key")
        parser.add_argument("--implicit-tls", action="store_true")
        parser.add_argument("--require-tls", action="store_true")
        parser.add_argument("--user"); parser.add_argument("--password")
        parser.add_argument("--refuse-recipients", action="store_true")
        args = parser.parse_args()
        counter = [0]
        lock = threading.Lock()

        class Sink:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if args.refuse_recipients:
                    return "550 5.1.1 No such user here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                with lock:
                    counter[0] += 1
                    number = counter[0]
                base = os.path.join(args.folder, str(number))
                with open(base + ".eml", "wb") as f:
                    f.write(envelope.original_content or envelope.content)
                with open(base + ".tmp", "w") as f:
                    json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos}, f)
                os.rename(base + ".tmp", base + ".json")
                return "250 2.0.0 Message accepted"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == args.user and auth_data.password.decode() == args.password
            return AuthResult(success=ok, handled=False)

        context = None
        if args.cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(args.cert, args.key)
        # A loaded machine (two cores, many tests) can take more than the default second to start the server.
        options = dict(hostname="127.0.0.1", port=args.port, decode_data=False, ready_timeout=30)
        if args.implicit_tls:
            options["ssl_context"] = context
        elif context is not None:
            options["tls_context"] = context
            options["require_starttls"] = args.require_tls
        if args.user:
            options["authenticator"] = authenticator
            options["auth_required"] = True
            options["auth_require_tls"] = context is not None and not args.implicit_tls
        controller = Controller(Sink(), **options)
        controller.start()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        stop.wait()
        # Controller.stop() waits for open sessions and could outlive the test process (and its reaper) that way;
        # give it a moment, then go regardless.
        threading.Timer(1.0, lambda: os._exit(0)).start()
        controller.stop()
        os._exit(0)
        """#
}
