import Foundation
import NIOConcurrencyHelpers

/// A headless Chromium driven over W3C WebDriver by Debian's `chromedriver`: the real browser of the §7 tests.
/// Only the commands those tests use: navigate, find, type, click, read the URL and text, screenshot.
public final class WebDriver: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let driver: Process
    private let port: Int
    private var sessionID = ""

    /// The executables, from Debian's `chromium` and `chromium-driver` packages; nil when either is missing.
    public static var installedPaths: (chromium: String, driver: String)? {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let chromium, let driver else { return nil }
        return (chromium, driver)
    }

    /// Starts chromedriver on a free loopback port and opens a headless browser session.
    public init() async throws {
        guard let paths = Self.installedPaths else {
            throw Failure(description: "chromium and chromium-driver are not installed (scripts/install-deps.sh installs them)")
        }
        let port = try freeLoopbackPort()
        driver = Process()
        driver.executableURL = URL(fileURLWithPath: paths.driver)
        driver.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1"]
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        self.port = port
        do {
            try await waitUntilReady()
            let profile = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-chromium-\(UUID().uuidString)").path
            let capabilities: [String: Any] = [
                "capabilities": [
                    "alwaysMatch": [
                        "browserName": "chrome",
                        "goog:chromeOptions": [
                            "binary": paths.chromium,
                            "args": [
                                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                                "--window-size=1024,900", "--user-data-dir=\(profile)",
                            ],
                        ],
                    ]
                ]
            ]
            let answer = try await command("POST", "/session", capabilities)
            guard let id = (answer as? [String: Any])?["sessionId"] as? String else {
                throw Failure(description: "chromedriver did not start a session: \(answer)")
            }
            sessionID = id
        } catch {
            kill(driver.processIdentifier, SIGKILL)
            throw error
        }
    }

    /// Ends the browser session and stops chromedriver.
    public func quit() async {
        if !sessionID.isEmpty { _ = try? await command("DELETE", "/session/\(sessionID)", nil) }
        // chromedriver ignores SIGTERM while it holds connections open.
        kill(driver.processIdentifier, SIGKILL)
        // `waitUntilExit` would block a thread of the concurrency pool, which the gateway under test needs.
        for _ in 0..<50 where driver.isRunning { try? await Task.sleep(for: .milliseconds(100)) }
    }

    public func open(_ url: String) async throws {
        _ = try await command("POST", "/session/\(sessionID)/url", ["url": url])
    }

    public func currentURL() async throws -> String {
        try await command("GET", "/session/\(sessionID)/url", nil) as? String ?? ""
    }

    /// Waits (up to 10 s) until the address satisfies `condition`, as after a form post and its redirects.
    @discardableResult
    public func waitForURL(_ condition: (URL) -> Bool) async throws -> URL {
        var last = ""
        for _ in 0..<100 {
            last = try await currentURL()
            if let url = URL(string: last), condition(url) { return url }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "the browser stayed at \(last)")
    }

    /// The element matching a CSS selector.
    public func element(_ selector: String) async throws -> String {
        let answer = try await command("POST", "/session/\(sessionID)/element", ["using": "css selector", "value": selector])
        guard let reference = (answer as? [String: Any])?.values.first as? String else {
            throw Failure(description: "no element matches \(selector): \(answer)")
        }
        return reference
    }

    public func type(_ text: String, into selector: String) async throws {
        let element = try await element(selector)
        _ = try await command("POST", "/session/\(sessionID)/element/\(element)/value", ["text": text])
    }

    public func click(_ selector: String) async throws {
        let element = try await element(selector)
        _ = try await command("POST", "/session/\(sessionID)/element/\(element)/click", [String: Any]())
    }

    /// The rendered text of the element matching `selector`, once one exists (a page after a form post may still
    /// be loading): polls for up to 10 s.
    public func waitForText(_ selector: String) async throws -> String {
        for _ in 0..<100 {
            if let text = try? await text(selector) { return text }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await text(selector)
    }

    /// The rendered text of the element matching `selector`.
    public func text(_ selector: String) async throws -> String {
        let element = try await element(selector)
        return try await command("GET", "/session/\(sessionID)/element/\(element)/text", nil) as? String ?? ""
    }

    /// The value of a DOM property (`value`, `validationMessage`) of the element matching `selector`.
    public func property(_ name: String, of selector: String) async throws -> String? {
        let element = try await element(selector)
        return try await command("GET", "/session/\(sessionID)/element/\(element)/property/\(name)", nil) as? String
    }

    /// Resizes the window, as a phone's screen would be.
    public func resize(width: Int, height: Int) async throws {
        _ = try await command("POST", "/session/\(sessionID)/window/rect", ["width": width, "height": height])
    }

    /// Runs a script in the page and returns its result.
    public func evaluate(_ script: String) async throws -> Any {
        try await command("POST", "/session/\(sessionID)/execute/sync", ["script": script, "args": [Any]()])
    }

    /// A PNG of the viewport, written to `path`.
    public func screenshot(to path: String) async throws {
        guard let encoded = try await command("GET", "/session/\(sessionID)/screenshot", nil) as? String, let png = Data(base64Encoded: encoded) else {
            throw Failure(description: "chromedriver returned no screenshot")
        }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try png.write(to: URL(fileURLWithPath: path))
    }

    // MARK: Protocol

    private func waitUntilReady() async throws {
        var problem = "no answer"
        for _ in 0..<100 {
            do {
                let status = try await command("GET", "/status", nil) as? [String: Any]
                if status?["ready"] as? Bool == true { return }
                problem = "not ready: \(status ?? [:])"
            } catch {
                problem = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "chromedriver did not become ready (\(problem))")
    }

    /// Sends one WebDriver command and returns its `value`; a WebDriver error becomes a ``Failure``. Spoken over
    /// the tests' own HTTP/1.1 client: Foundation's URLSession on Linux fails on some of chromedriver's answers.
    private func command(_ method: String, _ path: String, _ body: Any?) async throws -> Any {
        let text = try body.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let response = try await requestOffThread(
            port: port, path, method: method, host: "127.0.0.1:\(port)",
            headers: [("Content-Type", "application/json; charset=utf-8"), ("Connection", "close")], body: text)
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        let value = object?["value"] ?? NSNull()
        if response.status >= 400 {
            throw Failure(description: "WebDriver \(method) \(path): \(response.status) \(value)")
        }
        return value
    }
}

/// A loopback port nobody listens on right now.
public func freeLoopbackPort() throws -> Int {
    // Below Linux's ephemeral range (32768-60999): a port handed out here can be taken by nothing that binds port 0
    // (another test's listener) or connects out (a client's local port) between this check and its use, and a
    // process-wide record keeps two tests of this process from being handed the same one.
    for _ in 0..<2000 {
        let candidate = Int.random(in: 20_000..<32_768)
        guard HandedOutPorts.claim(candidate) else { continue }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WebDriver.Failure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(candidate).bigEndian)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        if bound { return candidate }
    }
    throw WebDriver.Failure(description: "cannot find a free port")
}

/// The ports ``freeLoopbackPort()`` gave out in this process.
private enum HandedOutPorts {
    private static let ports = NIOLockedValueBox<Set<Int>>([])
    static func claim(_ port: Int) -> Bool { ports.withLockedValue { $0.insert(port).inserted } }
}
