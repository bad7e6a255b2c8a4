import Testing
@testable import GatehouseConfiguration

@Suite struct ConfigurationValuesTests {
    @Test(arguments: [
        ("30s", Duration.seconds(30)), ("15m", .seconds(900)), ("30d", .seconds(2_592_000)), ("12h", .seconds(43_200)),
        ("500ms", .milliseconds(500)), ("1h30m", .seconds(5400)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(ConfigurationValues.duration(text) == expected)
    }

    @Test(arguments: ["", "15", "15x", "m", "-5s", "1.5s", "15 m"])
    func badDurations(text: String) {
        #expect(ConfigurationValues.duration(text) == nil)
    }

    @Test func byteCounts() {
        #expect(ConfigurationValues.byteCount("65536") == 65536)
        #expect(ConfigurationValues.byteCount("64KiB") == 65536)
        #expect(ConfigurationValues.byteCount("10MiB") == 10_485_760)
        #expect(ConfigurationValues.byteCount("1GB") == 1_000_000_000)
        #expect(ConfigurationValues.byteCount("ten") == nil)
        #expect(ConfigurationValues.byteCount("-1") == nil)
        #expect(ConfigurationValues.byteCount("99999999999999999999GiB") == nil)
    }

    @Test func environmentSubstitution() {
        let environment = ["A": "1", "EMPTY": ""]
        #expect(EnvironmentSubstitution.expand("x${A}y", environment: environment) == .success("x1y"))
        #expect(EnvironmentSubstitution.expand("${B:-two}", environment: environment) == .success("two"))
        #expect(EnvironmentSubstitution.expand("${EMPTY:-x}", environment: environment) == .success(""))
        #expect(EnvironmentSubstitution.expand("${B}", environment: environment) == .failure(.missingVariable("B")))
        #expect(EnvironmentSubstitution.expand("${A", environment: environment) == .failure(.malformed("unterminated '${' in value")))
        #expect(EnvironmentSubstitution.expand("$A and $$", environment: environment) == .success("$A and $$"))
    }

    @Test func upstreamURLs() throws {
        let url = try UpstreamURL.parse("http://127.0.0.1:9001/base/").get()
        #expect(url == UpstreamURL(host: "127.0.0.1", port: 9001, basePath: "/base"))
        #expect(try UpstreamURL.parse("http://Backend.internal").get().port == 80)
        #expect(try UpstreamURL.parse("http://[::1]:8080").get().origin == "http://[::1]:8080")
        #expect(throws: UpstreamURL.ParseError.self) { try UpstreamURL.parse("https://x:1").get() }
        #expect(throws: UpstreamURL.ParseError.self) { try UpstreamURL.parse("http://x:99999").get() }
        #expect(throws: UpstreamURL.ParseError.self) { try UpstreamURL.parse("http://u:p@x:1").get() }
        #expect(throws: UpstreamURL.ParseError.self) { try UpstreamURL.parse("127.0.0.1:9001").get() }
    }

    @Test func cidrBlocks() throws {
        let block = try #require(IPAddressRange("10.1.0.0/16"))
        #expect(block.contains(IPAddressRange.parseAddress("10.1.200.3")!))
        #expect(!block.contains(IPAddressRange.parseAddress("10.2.0.1")!))
        #expect(block.contains(IPAddressRange.parseAddress("::ffff:10.1.0.9")!), "IPv4-mapped IPv6 peers match IPv4 blocks")
        let single = try #require(IPAddressRange("::1"))
        #expect(single.contains(IPAddressRange.parseAddress("::1")!))
        #expect(IPAddressRange("10.0.0.0/33") == nil)
        #expect(IPAddressRange("example.com") == nil)
    }

    @Test func hostPatterns() {
        #expect(HostPattern.parse("API.Acme.Test") == .exact("api.acme.test"))
        #expect(HostPattern.parse("*.acme.test") == .wildcard(suffix: "acme.test"))
        #expect(HostPattern.parse("*.*.acme.test") == nil)
        #expect(HostPattern.parse("a*.acme.test") == nil)
        #expect(HostPattern.parse("bad host") == nil)
    }
}
