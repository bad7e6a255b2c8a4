import GatehouseIdentity
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One structured JSON line per request, buffered so that logging costs no system call per request, and written
/// as bytes straight into the buffer: on a proxied request the log line would otherwise cost more than the routing.
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
        var upstreamNanoseconds: Int64?
        var totalNanoseconds: Int64
        var requestID: String
        /// The request's `traceparent`; its trace id is logged.
        var traceparent: String
        var bytesSent: Int
    }

    /// The pending lines, and the formatted timestamp of the current second, which they share.
    private struct Pending {
        var bytes: [UInt8] = []
        var second = -1
        /// `"2026-11-21T12:34:56.` for `second`.
        var secondPrefix: [UInt8] = []
    }

    private let pending = NIOLockedValueBox(Pending())
    private let output: @Sendable ([UInt8]) -> Void
    private let flushThreshold = 32 * 1024

    /// - Parameter output: where full buffers go; the default writes to standard output.
    init(output: @escaping @Sendable ([UInt8]) -> Void = AccessLogger.writeToStandardOutput) {
        self.output = output
    }

    func log(_ entry: Entry) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let full: [UInt8]? = pending.withLockedValue { pending in
            if pending.second != now.tv_sec {
                pending.second = now.tv_sec
                pending.secondPrefix = Array(Timestamp.secondPrefix(now.tv_sec).utf8)
            }
            pending.bytes.append(contentsOf: #"{"type":"access","time":""#.utf8)
            pending.bytes.append(contentsOf: pending.secondPrefix)
            let milliseconds = Int(now.tv_nsec / 1_000_000)
            pending.bytes.append(UInt8(ascii: "0") + UInt8(milliseconds / 100))
            pending.bytes.append(UInt8(ascii: "0") + UInt8(milliseconds / 10 % 10))
            pending.bytes.append(UInt8(ascii: "0") + UInt8(milliseconds % 10))
            pending.bytes.append(contentsOf: #"Z""#.utf8)
            Self.append(entry, to: &pending.bytes)
            guard pending.bytes.count >= flushThreshold else { return nil }
            defer { pending.bytes.removeAll(keepingCapacity: true) }
            return pending.bytes
        }
        if let full { output(full) }
    }

    private static func append(_ entry: Entry, to bytes: inout [UInt8]) {
        if let tenant = entry.tenant {
            bytes.append(contentsOf: #","tenant":"#.utf8)
            JSON.appendQuoted(tenant, to: &bytes)
        }
        if let route = entry.route {
            bytes.append(contentsOf: #","route":"#.utf8)
            JSON.appendQuoted(route, to: &bytes)
        }
        bytes.append(contentsOf: #","method":"#.utf8)
        JSON.appendQuoted(entry.method, to: &bytes)
        bytes.append(contentsOf: #","path":"#.utf8)
        JSON.appendQuoted(entry.path, to: &bytes)
        bytes.append(contentsOf: #","status":"#.utf8)
        JSON.appendInteger(entry.status, to: &bytes)
        if let upstream = entry.upstreamNanoseconds {
            bytes.append(contentsOf: #","upstream_ms":"#.utf8)
            JSON.appendMilliseconds(nanoseconds: upstream, to: &bytes)
        }
        bytes.append(contentsOf: #","total_ms":"#.utf8)
        JSON.appendMilliseconds(nanoseconds: entry.totalNanoseconds, to: &bytes)
        bytes.append(contentsOf: #","bytes":"#.utf8)
        JSON.appendInteger(entry.bytesSent, to: &bytes)
        bytes.append(contentsOf: #","request_id":"#.utf8)
        JSON.appendQuoted(entry.requestID, to: &bytes)
        // The trace id is 32 hex digits (TraceContext checked it, or made it): nothing to escape.
        bytes.append(contentsOf: #","trace_id":""#.utf8)
        bytes.append(contentsOf: entry.traceparent.utf8.dropFirst(3).prefix(32))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: "}\n".utf8)
    }

    /// Writes out whatever is buffered; called periodically and at shutdown.
    func flush() {
        let bytes = pending.withLockedValue { pending -> [UInt8] in
            defer { pending.bytes.removeAll(keepingCapacity: true) }
            return pending.bytes
        }
        if !bytes.isEmpty { output(bytes) }
    }

    /// Through ``StandardOutput``, which audit lines share: neither cuts into the other's lines.
    @Sendable static func writeToStandardOutput(_ bytes: [UInt8]) {
        StandardOutput.write(bytes)
    }
}

/// RFC 3339 timestamps, UTC.
enum Timestamp {
    /// `2026-11-21T12:34:56.` for a time in seconds since the epoch: the part a second's log lines share.
    static func secondPrefix(_ seconds: Int) -> String {
        var time = seconds
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
    }
}
