import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP client for end-to-end tests: it sends exactly the bytes a test writes (malformed requests,
/// slow heads, forged headers) and parses what comes back without any HTTP library smoothing it over.
///
/// `@unchecked Sendable` so a test can hand it to ``offThread(_:)``; it is used by one thread at a time.
public final class RawConnection: @unchecked Sendable {
    public struct Closed: Error {}
    public struct Timeout: Error {}

    private let fd: Int32
    private var buffer: [UInt8] = []

    public init(port: Int, receiveTimeout: Double = 10) throws {
        fd = try Self.connectedSocket(port: port, receiveTimeout: receiveTimeout)
    }

    /// A connected socket, or an error with nothing left open. It is made before `self` is initialised: an
    /// initialiser that throws after `fd` is set still runs `deinit`, and a second `close` of a number the
    /// kernel has meanwhile handed to another thread (a NIO listener about to bind) closes that one instead.
    private static func connectedSocket(port: Int, receiveTimeout: Double) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Closed() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            Glibc.close(fd)
            throw Closed()
        }
        var timeout = timeval(tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout - Double(Int(receiveTimeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    deinit { Glibc.close(fd) }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw Closed() }
            offset += written
        }
    }

    /// Aborts the connection with a TCP reset (RST) instead of a FIN, as a crashed or impatient client does.
    /// The connection is unusable afterwards.
    public func reset() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        // With a zero linger, close() sends the RST; the descriptor is kept (open on nothing) until deinit.
        let placeholder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        dup2(placeholder, fd)
        Glibc.close(placeholder)
    }

    /// Shuts down the sending side (a TCP FIN), as a client does that has nothing more to say.
    public func finishSending() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads one response (skipping nothing): status, headers, body by Content-Length or chunked.
    /// `forHead`: the response to a HEAD request has no body.
    public func readResponse(forHead: Bool = false) throws -> TestResponse {
        let headEnd = try readUntil([13, 10, 13, 10])
        let headText = String(decoding: buffer[..<headEnd], as: UTF8.self)
        buffer.removeFirst(headEnd + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = Int(statusLine[1]) ?? 0
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = TestResponse(status: status, headers: headers, body: [])
        if forHead || status == 204 || status == 304 || (100..<200).contains(status) { return response }
        if let length = response.header("content-length").flatMap(Int.init) {
            try fill(length)
            response.body = Array(buffer.prefix(length))
            buffer.removeFirst(length)
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                let lineEnd = try readUntil([13, 10])
                let size = Int(String(decoding: buffer[..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
                buffer.removeFirst(lineEnd + 2)
                try fill(size + 2)
                response.body += buffer.prefix(size)
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        } else {
            response.body = readUntilClosed()
        }
        return response
    }

    /// Exactly `count` raw bytes (for tunnelled traffic).
    public func read(exactly count: Int) throws -> [UInt8] {
        try fill(count)
        defer { buffer.removeFirst(count) }
        return Array(buffer.prefix(count))
    }

    /// Receives and discards `count` bytes, returning how many arrived before the peer closed.
    public func discard(_ count: Int) -> Int {
        var remaining = count
        remaining -= min(remaining, buffer.count)
        buffer.removeAll()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, remaining), 0) }
            if received <= 0 { break }
            remaining -= received
        }
        return count - remaining
    }

    /// Everything until the peer closes (or the receive timeout).
    public func readUntilClosed() -> [UInt8] {
        while (try? receive()) != nil {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// The kernel's TCP state of this connection (`TCP_INFO`), for failure messages: 1 established, 7 closed,
    /// 8 close-wait (the peer sent its FIN).
    public var tcpState: Int {
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else { return -1 }
        return Int(info.tcpi_state)
    }

    /// Whether the peer has closed the connection (reads until EOF or timeout).
    public func isClosedByPeer() -> Bool {
        do {
            while true { try receive() }
        } catch is Closed {
            return true
        } catch {
            return false
        }
    }

    private func readUntil(_ marker: [UInt8]) throws -> Int {
        var searchFrom = 0
        while true {
            if buffer.count >= marker.count {
                for start in searchFrom...(buffer.count - marker.count) where buffer[start..<(start + marker.count)].elementsEqual(marker) {
                    return start
                }
                searchFrom = buffer.count - marker.count + 1
            }
            try receive()
        }
    }

    private func fill(_ count: Int) throws {
        while buffer.count < count { try receive() }
    }

    private func receive() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count == 0 { throw Closed() }
        if count < 0 { throw errno == EAGAIN || errno == EWOULDBLOCK ? Timeout() : Closed() }
        buffer += chunk[..<count]
    }
}

public struct TestResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public func headers(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object (the echo upstream's answer, or a problem).
    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    /// What the echo upstream saw, header name (lower case) to value.
    public var echoedHeaders: [String: String] { json["headers"] as? [String: String] ?? [:] }
}

/// One request on a fresh connection.
public func request(
    port: Int, _ target: String, method: String = "GET", host: String = "acme.test", headers: [(String, String)] = [],
    body: String? = nil
) throws -> TestResponse {
    let connection = try RawConnection(port: port)
    var text = "\(method) \(target) HTTP/1.1\r\nHost: \(host)\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
    text += "\r\n" + (body ?? "")
    try connection.send(text)
    return try connection.readResponse(forHead: method == "HEAD")
}

/// ``request(port:_:method:host:headers:body:)`` on a thread of its own, so a test waiting for the gateway never
/// blocks the Swift concurrency pool the gateway's own endpoints run on.
public func requestOffThread(
    port: Int, _ target: String, method: String = "GET", host: String = "acme.test", headers: [(String, String)] = [],
    body: String? = nil
) async throws -> TestResponse {
    try await offThread { try request(port: port, target, method: method, host: host, headers: headers, body: body) }
}

/// Runs blocking socket work on a thread of its own: a test blocked in `recv` on one of the few threads of the
/// Swift concurrency pool can starve the very task (a shutdown, an endpoint) it is waiting for.
public func offThread<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Swift.Result { try work() }) }.start()
    }
}
