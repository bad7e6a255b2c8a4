import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One structured JSON line per request, buffered so that logging costs no system call per request.
///
/// Only what is listed in ``Entry`` is ever written: never a header value, a query string or a body, so no
/// token, cookie or password can reach the log.
final class AccessLogger: Sendable {
    struct Entry {
        var tenant: String?
        var route: String?
        var method: String
        var path: String
        var status: UInt
        var upstreamMilliseconds: Double?
        var totalMilliseconds: Double
        var requestID: String
        var bytesSent: Int
    }

    private let buffer = NIOLockedValueBox<[UInt8]>([])
    private let output: @Sendable ([UInt8]) -> Void
    private let flushThreshold = 32 * 1024

    /// - Parameter output: where full buffers go; the default writes to standard output.
    init(output: @escaping @Sendable ([UInt8]) -> Void = AccessLogger.writeToStandardOutput) {
        self.output = output
    }

    func log(_ entry: Entry) {
        var line = "{\"type\":\"access\",\"time\":\(JSON.quote(Timestamp.now()))"
        if let tenant = entry.tenant { line += ",\"tenant\":\(JSON.quote(tenant))" }
        if let route = entry.route { line += ",\"route\":\(JSON.quote(route))" }
        line += ",\"method\":\(JSON.quote(entry.method)),\"path\":\(JSON.quote(entry.path)),\"status\":\(entry.status)"
        if let upstream = entry.upstreamMilliseconds { line += ",\"upstream_ms\":\(Self.format(upstream))" }
        line += ",\"total_ms\":\(Self.format(entry.totalMilliseconds)),\"bytes\":\(entry.bytesSent)"
        line += ",\"request_id\":\(JSON.quote(entry.requestID))}\n"
        let full: [UInt8]? = buffer.withLockedValue { buffer in
            buffer.append(contentsOf: line.utf8)
            guard buffer.count >= flushThreshold else { return nil }
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        if let full { output(full) }
    }

    /// Writes out whatever is buffered; called periodically and at shutdown.
    func flush() {
        let pending = buffer.withLockedValue { buffer -> [UInt8] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        if !pending.isEmpty { output(pending) }
    }

    private static func format(_ milliseconds: Double) -> String {
        let rounded = (milliseconds * 1000).rounded() / 1000
        return String(rounded)
    }

    @Sendable static func writeToStandardOutput(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(1, raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

/// RFC 3339 timestamps with milliseconds, UTC.
enum Timestamp {
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var time = spec.tv_sec
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
    }
}
