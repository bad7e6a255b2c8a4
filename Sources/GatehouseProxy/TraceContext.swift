import Synchronization

/// The W3C Trace Context of a request (`traceparent`, https://www.w3.org/TR/trace-context/ §3.2): the client's when it
/// is valid, otherwise a new one. The gateway forwards it upstream unchanged and logs its trace id; it does not
/// record spans itself, so it neither replaces the parent id of a valid header nor sets the sampled flag of a new one.
public struct TraceContext: Sendable, Equatable {
    /// The `traceparent` value to send upstream.
    public let traceparent: String
    /// Whether it came from the client (so its `tracestate` travels with it).
    public let isFromClient: Bool

    /// The trace id: 32 lower-case hex digits.
    public var traceID: Substring { traceparent.dropFirst(3).prefix(32) }

    /// The client's `traceparent`, when it is valid: `version-traceid-parentid-flags` in lower-case hex, version not
    /// `ff`, neither id all zeros; version `00` exactly 55 characters; a later version at least 55, with anything
    /// after them introduced by `-` (the spec's rule for versions it does not know yet).
    public init?(clientValue value: String) {
        guard Self.isValid(value) else { return nil }
        traceparent = value
        isFromClient = true
    }

    init(generated: String) {
        traceparent = generated
        isFromClient = false
    }

    static func isValid(_ value: String) -> Bool {
        value.withUTF8Buffer { isValid($0) }
    }

    private static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = bytes.count
        guard count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return false }
        func isHex(_ range: Range<Int>) -> Bool { range.allSatisfy { isLowerHex(bytes[$0]) } }
        func isZero(_ range: Range<Int>) -> Bool { range.allSatisfy { bytes[$0] == UInt8(ascii: "0") } }
        guard isHex(0..<2), isHex(3..<35), isHex(36..<52), isHex(53..<55) else { return false }
        guard !(bytes[0] == UInt8(ascii: "f") && bytes[1] == UInt8(ascii: "f")), !isZero(3..<35), !isZero(36..<52) else { return false }
        let isVersionZero = bytes[0] == UInt8(ascii: "0") && bytes[1] == UInt8(ascii: "0")
        if isVersionZero { return count == 55 }
        return count == 55 || bytes[55] == UInt8(ascii: "-")
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }

    /// The context of a request: the client's `traceparent` if there is exactly one and it is valid, else a new one.
    public static func of(_ facts: RequestHeaderFacts, generator: inout TraceContextGenerator) -> TraceContext {
        if facts.traceparentCount == 1, let value = facts.traceparent, let context = TraceContext(clientValue: value) { return context }
        return generator.next()
    }
}

/// New trace contexts for one connection (or HTTP/2 stream): random ids from a SplitMix64 stream, so a request
/// costs no system call. Each generator starts at its own point of one sequence seeded from the system's generator
/// once per process. Trace ids are correlation ids, not secrets.
public struct TraceContextGenerator: Sendable {
    private var state: UInt64
    private static let processSeed: UInt64 = {
        var system = SystemRandomNumberGenerator()
        return system.next()
    }()
    private static let generators = Atomic<UInt64>(0)

    public init() {
        // Streams 2^40 values apart: no two generators of a process meet in practice.
        let index = Self.generators.wrappingAdd(1, ordering: .relaxed).newValue
        state = Self.processSeed &+ index &* (1 << 40)
    }

    init(seed: UInt64) { state = seed }

    private mutating func nextWord() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `00-<32 hex>-<16 hex>-00`, neither id zero.
    public mutating func next() -> TraceContext {
        let high = nextWord()
        let low = nextWord() | 1
        let parent = nextWord() | 1
        let value = String(unsafeUninitializedCapacity: 55) { buffer in
            let digits: StaticString = "0123456789abcdef"
            digits.withUTF8Buffer { digits in
                func put(_ word: UInt64, at offset: Int) {
                    for index in 0..<16 { buffer[offset + index] = digits[Int((word >> UInt64(60 - index * 4)) & 0xF)] }
                }
                buffer[0] = UInt8(ascii: "0")
                buffer[1] = UInt8(ascii: "0")
                buffer[2] = UInt8(ascii: "-")
                put(high, at: 3)
                put(low, at: 19)
                buffer[35] = UInt8(ascii: "-")
                put(parent, at: 36)
                buffer[52] = UInt8(ascii: "-")
                buffer[53] = UInt8(ascii: "0")
                buffer[54] = UInt8(ascii: "0")
            }
            return 55
        }
        return TraceContext(generated: value)
    }
}
