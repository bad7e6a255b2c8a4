import Foundation
import GatehouseTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The `gatehouse` binary built next to this test bundle.
let gatehouseBinary: String = {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("gatehouse").path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/gatehouse").path
}()

/// A `gatehouse serve` process with its own config folder, stopped (SIGKILL if needed) by `stop()`.
final class GatehouseProcess {
    let root: URL
    let process = Process()
    private let errorPipe = Pipe()
    private var collected = Data()
    private(set) var port = 0
    private(set) var adminPort = 0
    /// Where `serve` writes its standard output (audit lines with `audit_log: stdout`); nil discards it.
    var standardOutputPath: String?

    var configPath: String { root.appendingPathComponent("config/gatehouse.yaml").path }
    var tenantsPath: String { root.appendingPathComponent("tenants").path }
    var pid: Int32 { process.processIdentifier }

    init(gateway: String = "", tenants: [String: String]) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("config"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
        try ("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\ntenants: ../tenants\naccess_log: false\n" + gateway)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        for (id, text) in tenants { try writeTenant(id, text) }
    }

    /// Another `gatehouse serve` on an existing process's folder (after the first has stopped).
    init(reusing other: GatehouseProcess) {
        root = other.root
    }

    func writeTenant(_ id: String, _ text: String) throws {
        try text.write(toFile: tenantsPath + "/\(id).yaml", atomically: true, encoding: .utf8)
    }

    /// Starts `gatehouse serve` and waits for its "listening" line to learn the ports.
    func start() throws {
        try launch()
        try waitUntilListening()
    }

    /// Starts `gatehouse serve` without waiting (to start several at the same moment).
    func launch() throws {
        process.executableURL = URL(fileURLWithPath: gatehouseBinary)
        process.arguments = ["serve", "--config", configPath]
        process.standardError = errorPipe
        if let standardOutputPath {
            _ = FileManager.default.createFile(atPath: standardOutputPath, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: standardOutputPath)
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        try process.run()
    }

    /// Waits for the "listening" line of a launched process to learn the ports.
    func waitUntilListening() throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let log = readLog()
            if let line = log.split(separator: "\n").first(where: { $0.contains("gatehouse listening") }) {
                port = Self.port(after: "listen=", in: line)
                adminPort = Self.port(after: "admin_listen=", in: line)
                return
            }
            if !process.isRunning { break }
            usleep(50_000)
        }
        throw StartFailure(log: readLog())
    }

    struct StartFailure: Error { let log: String }

    /// Standard error so far.
    func readLog() -> String {
        let handle = errorPipe.fileHandleForReading
        let flags = fcntl(handle.fileDescriptor, F_GETFL)
        _ = fcntl(handle.fileDescriptor, F_SETFL, flags | O_NONBLOCK)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            collected.append(contentsOf: chunk[..<count])
        }
        return String(decoding: collected, as: UTF8.self)
    }

    func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for the process to exit, returning its status (nil on timeout).
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Peak resident memory of the process, from /proc.
    func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    func stop() {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: root)
    }

    private static func port(after key: String, in line: Substring) -> Int {
        guard let token = line.split(separator: " ").first(where: { $0.hasPrefix(key) }) else { return 0 }
        return Int(token.split(separator: ":").last ?? "") ?? 0
    }
}
