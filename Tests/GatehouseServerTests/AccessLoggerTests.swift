import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import GatehouseServer

@Suite struct AccessLoggerTests {
    @Test func linesAreJSONWithAMillisecondTimestamp() throws {
        let written = NIOLockedValueBox<[UInt8]>([])
        let logger = AccessLogger { bytes in written.withLockedValue { $0 += bytes } }
        logger.log(
            .init(
                tenant: "acme", route: "/api", method: "GET", path: "/api/\"quoted\"\n\u{7F}", status: 200, upstreamNanoseconds: 1_234_567,
                totalNanoseconds: 12_000_400, requestID: "rid",
                traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", bytesSent: 1024))
        logger.log(
            .init(
                tenant: nil, route: nil, method: "GET", path: "/", status: 404, upstreamNanoseconds: nil, totalNanoseconds: 0,
                requestID: "r2", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", bytesSent: 0))
        #expect(written.withLockedValue { $0 }.isEmpty, "lines are buffered until a flush")
        logger.flush()
        let lines = String(decoding: written.withLockedValue { $0 }, as: UTF8.self).split(separator: "\n")
        try #require(lines.count == 2)
        #expect(lines[0].contains(#""upstream_ms":1.235,"total_ms":12.000,"#))
        #expect(lines[0].contains(#""path":"/api/\"quoted\"\n\u007f""#))
        let first = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(first["path"] as? String == "/api/\"quoted\"\n\u{7F}")
        #expect(first["status"] as? Int == 200)
        #expect(first["bytes"] as? Int == 1024)
        #expect(first["trace_id"] as? String == "0af7651916cd43dd8448eb211c80319c")
        let time = try #require(first["time"] as? String)
        #expect(time.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(time)")
        let second = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(second["tenant"] == nil)
        #expect(second["upstream_ms"] == nil)
        #expect(second["total_ms"] as? Double == 0)
    }

    @Test func quotingEscapesEverythingThatCouldBreakALine() {
        #expect(JSON.quote("plain") == #""plain""#)
        #expect(JSON.quote("a\"b\\c") == #""a\"b\\c""#)
        #expect(JSON.quote("\r\n\t\u{1}") == #""\r\n\t\u0001""#)
        #expect(JSON.quote("café ✓") == "\"café ✓\"")
    }

    @Test func timestampsAreUTC() {
        #expect(Timestamp.secondPrefix(0) == "1970-01-01T00:00:00.")
        #expect(Timestamp.secondPrefix(1_795_000_000) == "2026-11-18T11:06:40.")
    }
}
