import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The process's standard output, which the access log and the audit log share: one lock around each write, so
/// that a line of one is never cut into by the other (when standard output is a pipe, a write of more than
/// `PIPE_BUF` bytes is not atomic), and every write finished however the kernel splits it.
public enum StandardOutput {
    private static let lock = Mutex(())

    /// Writes all of `bytes` to standard output; false if the descriptor refused (closed, full disk).
    @discardableResult
    public static func write(_ bytes: [UInt8]) -> Bool {
        lock.withLock { _ in writeAll(1, bytes) }
    }

    /// Writes all of `bytes`, continuing after partial writes and interrupted calls.
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return false }
                offset += written
            }
            return true
        }
    }
}
