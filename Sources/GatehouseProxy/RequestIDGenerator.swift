import Foundation
import Synchronization

/// Request ids for one connection (or HTTP/2 stream): a random 64-bit prefix and a random start, then a counter, so
/// ids stay unique and unguessable across connections without a system call per request.
public struct RequestIDGenerator {
    private let prefix: UInt64
    private var counter: UInt64

    public init() {
        let (prefix, start) = RandomWords.shared.pair()
        self.init(prefix, start)
    }

    init(_ prefix: UInt64, _ start: UInt64) {
        self.prefix = prefix
        self.counter = start
    }

    /// 32 hex digits, written in one go: the prefix's 16, then the counter's.
    public mutating func next() -> String {
        counter &+= 1
        let (prefix, counter) = (self.prefix, self.counter)
        return String(unsafeUninitializedCapacity: 32) { buffer in
            let digits: StaticString = "0123456789abcdef"
            digits.withUTF8Buffer { digits in
                for index in 0..<16 {
                    let shift = UInt64(60 - index * 4)
                    buffer[index] = digits[Int((prefix >> shift) & 0xF)]
                    buffer[16 + index] = digits[Int((counter >> shift) & 0xF)]
                }
            }
            return 32
        }
    }
}

/// Random words from the system's generator, drawn 512 at a time: every HTTP/2 stream makes a request-id generator,
/// and `SystemRandomNumberGenerator` costs a `getrandom` system call per word (strace: one per stream).
final class RandomWords: Sendable {
    static let shared = RandomWords()

    private let words = Mutex<[UInt64]>([])

    /// Two fresh random words.
    func pair() -> (UInt64, UInt64) {
        words.withLock { words in
            if words.count < 2 {
                words = Self.draw(512)
            }
            return (words.removeLast(), words.removeLast())
        }
    }

    /// `count` words in one call: glibc's `arc4random_buf` (2.36 and later) fills the buffer from the kernel's
    /// generator at once, where `SystemRandomNumberGenerator` makes a system call per word.
    private static func draw(_ count: Int) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        words.withUnsafeMutableBytes { bytes in arc4random_buf(bytes.baseAddress!, bytes.count) }
        return words
    }
}
