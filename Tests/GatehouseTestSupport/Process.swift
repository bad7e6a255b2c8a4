import Foundation

#if canImport(Glibc)
import Glibc
#endif

public struct ProcessResult {
    public var status: Int32
    public var output: String
    public var error: String
}

/// Runs a program to completion and returns its exit status and outputs.
///
/// With `posix_spawn` and files for the streams, not Foundation's `Process`: under many parallel tests that crashed
/// inside `Process.run()` (a bad memcpy), and it leaks the test process's descriptors into the child.
public func run(_ executable: String, _ arguments: [String], input: String? = nil, environment: [String: String]? = nil) throws -> ProcessResult {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let inputPath = folder.appendingPathComponent("in").path
    let outputPath = folder.appendingPathComponent("out").path
    let errorPath = folder.appendingPathComponent("err").path
    try Data((input ?? "").utf8).write(to: URL(fileURLWithPath: inputPath))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    closeInheritedDescriptors(&actions)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let environmentStrings = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
    defer { environmentStrings?.forEach { free($0) } }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    resetSignals(&attributes)
    var pid = pid_t()
    let spawned: Int32
    if let environmentStrings {
        spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environmentStrings)
    } else {
        spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    }
    guard spawned == 0 else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: executable]) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ProcessResult(
        status: exitStatus, output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
        error: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
}

/// ``run(_:_:input:environment:)`` on a thread of its own, so an async test waiting for a long-running program (an
/// HTTP/2 client, say) does not hold one of the few cooperative threads the in-process gateway's tasks need.
public func runOnOwnThread(_ executable: String, _ arguments: [String], input: String? = nil) async throws -> ProcessResult {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result { try run(executable, arguments, input: input) })
        }.start()
    }
}

/// The repository's root folder (for its scripts).
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A self-signed ECDSA P-256 certificate for `name`, made with openssl in `folder`: its certificate and key paths.
public func makeSelfSignedCertificate(for name: String, in folder: URL) throws -> (certificate: String, key: String) {
    let certificate = folder.appendingPathComponent("cert.pem").path
    let key = folder.appendingPathComponent("key.pem").path
    let result = try run(
        "/usr/bin/openssl",
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", certificate,
         "-days", "1", "-subj", "/CN=\(name)", "-addext", "subjectAltName=DNS:\(name)"])
    guard result.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "openssl: \(result.error)"]) }
    return (certificate, key)
}

/// What `scripts/h2-probe.py` (a hostile HTTP/2 client on hyper-h2) reports about its streams.
public struct HTTP2ProbeReport: Decodable {
    public struct GoAway: Decodable {
        public var error: String
        public var last_stream_id: Int
    }

    public var statuses: [String: Int]
    public var reset_by_client: Int
    public var reset_by_server: [String: Int]
    public var goaway: [GoAway]
    public var unanswered: Int
    public var never_opened: Int
    public var ended: Int
    /// Connections the server closed (with `--linger`, the probe waits for that once its streams are done).
    public var closed_by_server: Int?
    /// Seconds from the end of the last stream to the server's close, with `--linger`.
    public var closed_after_linger_s: Double?

    /// Runs the probe with `arguments` against `port` and decodes its report.
    public static func run(port: Int, _ arguments: [String]) async throws -> HTTP2ProbeReport {
        let script = repositoryRoot.appendingPathComponent("scripts/h2-probe.py").path
        let result = try await runOnOwnThread("/usr/bin/python3", [script, "--port", String(port)] + arguments)
        guard result.status == 0, let line = result.output.split(separator: "\n").last else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "h2-probe failed (\(result.status)): \(result.error)"])
        }
        return try JSONDecoder().decode(HTTP2ProbeReport.self, from: Data(line.utf8))
    }
}
