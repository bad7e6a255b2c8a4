import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics of Prometheus clients, read from `/proc/self` at each scrape.
struct ProcessMetrics {
    var cpuSeconds: Double?
    var residentBytes: Double?
    var virtualBytes: Double?
    var startTimeSeconds: Double?
    var openFileDescriptors: Double?
    var maxFileDescriptors: Double?

    /// What `/proc/self` says now; a field it cannot read is left out of the scrape rather than reported as 0.
    static func read() -> ProcessMetrics {
        var metrics = ProcessMetrics()
        #if os(Linux)
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let end = stat.lastIndex(of: ")") {
            // Fields after the command name, which may itself hold spaces: state is field 3, utime 14, stime 15,
            // starttime 22, vsize 23, rss 24 (man 5 proc).
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            func field(_ number: Int) -> Double? { number - 3 < fields.count ? Double(fields[number - 3]) : nil }
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            if let user = field(14), let system = field(15) { metrics.cpuSeconds = (user + system) / ticks }
            if let vsize = field(23) { metrics.virtualBytes = vsize }
            if let rss = field(24) { metrics.residentBytes = rss * Double(sysconf(Int32(_SC_PAGESIZE))) }
            if let start = field(22), let boot = bootTime() { metrics.startTimeSeconds = boot + start / ticks }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            // The listing's own descriptor is among them.
            metrics.openFileDescriptors = Double(max(0, descriptors.count - 1))
        }
        var limit = rlimit()
        if getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 { metrics.maxFileDescriptors = Double(limit.rlim_cur) }
        #endif
        return metrics
    }

    #if os(Linux)
    private static let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    private static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
    #endif

    func render(into buffer: inout [UInt8]) {
        let samples: [(String, String, String, Double?)] = [
            ("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", cpuSeconds),
            ("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", residentBytes),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", virtualBytes),
            ("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", startTimeSeconds),
            ("process_open_fds", "Number of open file descriptors.", "gauge", openFileDescriptors),
            ("process_max_fds", "Maximum number of open file descriptors.", "gauge", maxFileDescriptors),
        ]
        for (name, help, type, value) in samples {
            guard let value else { continue }
            Exposition.header(into: &buffer, name: name, help: help, type: type)
            buffer.append(contentsOf: "\(name) \(Exposition.number(value))\n".utf8)
        }
    }
}
