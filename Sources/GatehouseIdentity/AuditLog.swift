import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Where audit lines go besides the store (`audit_log`): standard output, a file (opened for appending, so several
/// processes on one host can share it: each line is one `write(2)` of at most a few kilobytes, which `O_APPEND`
/// keeps whole), or nowhere.
public final class AuditLog: Sendable {
    private enum Sink {
        case standardOutput
        case file(Int32)
        case off
    }

    private let sink: Sink
    private let logger: Logger

    /// A sink that drops every line (`audit_log: off`; the rows are still stored).
    public static let off = AuditLog(sink: .off)

    private init(sink: Sink, logger: Logger = Logger(label: "gatehouse.audit")) {
        self.sink = sink
        self.logger = logger
    }

    public static func standardOutput(logger: Logger = Logger(label: "gatehouse.audit")) -> AuditLog { AuditLog(sink: .standardOutput, logger: logger) }

    /// Opens (creating, mode 0640) the file for appending; throws with the reason when it cannot.
    public static func file(_ path: String, logger: Logger = Logger(label: "gatehouse.audit")) throws -> AuditLog {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw IdentityBootstrap.Failure(description: "audit_log \(path) cannot be opened for appending: \(String(cString: strerror(errno)))")
        }
        return AuditLog(sink: .file(descriptor), logger: logger)
    }

    deinit {
        if case .file(let descriptor) = sink { close(descriptor) }
    }

    /// Writes each event as one line. A failed write is logged, never thrown: the event is in the store already.
    public func write(_ events: [AuditEvent]) {
        for event in events {
            let bytes = Array(event.jsonLine.utf8)
            let written: Bool
            switch sink {
            case .off: return
            case .standardOutput: written = StandardOutput.write(bytes)
            case .file(let descriptor): written = StandardOutput.writeAll(descriptor, bytes)
            }
            if !written {
                logger.error("an audit line could not be written", metadata: ["event": "\(event.event.rawValue)", "error": "\(String(cString: strerror(errno)))"])
            }
        }
    }
}
