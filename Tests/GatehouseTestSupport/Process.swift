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
    var pid = pid_t()
    let spawned: Int32
    if let environmentStrings {
        spawned = posix_spawn(&pid, executable, &actions, nil, argv, environmentStrings)
    } else {
        spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    }
    guard spawned == 0 else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: executable]) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ProcessResult(
        status: exitStatus, output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
        error: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
}
