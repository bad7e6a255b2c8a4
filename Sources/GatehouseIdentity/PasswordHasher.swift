import CArgon2
import CCrypt
import CSodium
import Foundation

/// Password hashing: argon2id in PHC string format for every new hash; imported bcrypt (`$2a$`, `$2b$`, `$2y$`,
/// cost at most 14) is verified and re-hashed on the next successful login.
///
/// argon2id is computed by libsodium (`crypto_pwhash`, `crypto_pwhash_ALG_ARGON2ID13`), whose SIMD code is about a
/// third faster than libargon2's reference code with identical output (a test compares both on generated input).
/// libsodium computes one lane only: a configuration asking for more hashes with libargon2. Every stored argon2id
/// string verifies with libsodium, whatever its lanes.
///
/// Every call is slow on purpose: run it on a ``HashingPool``, never on an event loop.
public struct PasswordHasher: Sendable {
    /// argon2id parameters. The default is OWASP's: 19 MiB, 2 iterations, 1 lane.
    public struct Parameters: Sendable, Hashable {
        public var memoryKiB: UInt32
        public var iterations: UInt32
        public var parallelism: UInt32

        public init(memoryKiB: UInt32 = 19 * 1024, iterations: UInt32 = 2, parallelism: UInt32 = 1) {
            self.memoryKiB = memoryKiB
            self.iterations = iterations
            self.parallelism = parallelism
        }
    }

    /// The outcome of checking a password against a stored hash.
    public enum Verification: Sendable, Equatable {
        case mismatch
        case match
        /// Correct, but the hash is bcrypt or older argon2id parameters: store a fresh one.
        case matchNeedsRehash
    }

    public static let maximumBcryptCost = 14

    public let parameters: Parameters

    public init(parameters: Parameters = Parameters()) {
        self.parameters = parameters
        // Picks the fastest implementation for this CPU once; safe to call from any thread, any number of times.
        precondition(sodium_init() >= 0, "libsodium cannot be initialised")
    }

    public func hash(_ password: String) -> String {
        guard parameters.parallelism == 1 else { return hashWithLibargon2(password) }
        var encoded = [CChar](repeating: 0, count: Int(crypto_pwhash_STRBYTES))
        let status = crypto_pwhash_str_alg(
            &encoded, password, UInt64(password.utf8.count), UInt64(parameters.iterations), Int(parameters.memoryKiB) * 1024,
            crypto_pwhash_ALG_ARGON2ID13)
        // Only out of memory fails here: the parameters were checked when the configuration was read.
        precondition(status == 0, "crypto_pwhash_str_alg failed (out of memory?)")
        return String(decoding: encoded.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The same PHC string with libargon2, for more than one lane.
    func hashWithLibargon2(_ password: String) -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = UInt8.random(in: 0...255, using: &generator) }
        let passwordBytes = Array(password.utf8)
        let length = argon2_encodedlen(parameters.iterations, parameters.memoryKiB, parameters.parallelism, UInt32(salt.count), 32, Argon2_id)
        var encoded = [CChar](repeating: 0, count: length)
        let status = argon2id_hash_encoded(
            parameters.iterations, parameters.memoryKiB, parameters.parallelism, passwordBytes, passwordBytes.count, salt, salt.count, 32,
            &encoded, length)
        precondition(status == ARGON2_OK.rawValue, "argon2id_hash_encoded failed: \(String(cString: argon2_error_message(status)))")
        return String(decoding: encoded.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func verify(_ password: String, against stored: String) -> Verification {
        if stored.hasPrefix("$argon2id$") {
            let matches: Bool
            if stored.utf8.count < Int(crypto_pwhash_STRBYTES) {
                matches = crypto_pwhash_str_verify(stored, password, UInt64(password.utf8.count)) == 0
            } else {
                // A longer salt or hash than libsodium's string buffer holds (imported from elsewhere).
                let passwordBytes = Array(password.utf8)
                matches = argon2id_verify(stored, passwordBytes, passwordBytes.count) == ARGON2_OK.rawValue
            }
            guard matches else { return .mismatch }
            return Self.argon2Parameters(of: stored) == parameters ? .match : .matchNeedsRehash
        }
        if Self.isBcrypt(stored) {
            return Self.verifyBcrypt(password, against: stored) ? .matchNeedsRehash : .mismatch
        }
        return .mismatch
    }

    /// Whether Gatehouse can verify this stored hash at all (used by `users import`).
    public static func isSupportedHash(_ stored: String) -> Bool {
        (stored.hasPrefix("$argon2id$") && argon2Parameters(of: stored) != nil) || isBcrypt(stored)
    }

    /// `$2a$`, `$2b$` or `$2y$`, a two-digit cost of at most 14, and 53 characters of salt and hash.
    static func isBcrypt(_ stored: String) -> Bool {
        let bytes = Array(stored.utf8)
        guard bytes.count == 60, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
            [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]), bytes[3] == UInt8(ascii: "$"),
            bytes[6] == UInt8(ascii: "$"), let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self))
        else { return false }
        return (4...maximumBcryptCost).contains(cost)
    }

    private static func verifyBcrypt(_ password: String, against stored: String) -> Bool {
        // crypt_rn: the re-entrant form, with the hash as the setting; libxcrypt implements bcrypt.
        var data = crypt_data()
        let computed: String? = withUnsafeMutablePointer(to: &data) { pointer in
            guard let result = crypt_rn(password, stored, pointer, Int32(MemoryLayout<crypt_data>.size)) else { return nil }
            return String(cString: result)
        }
        guard let computed else { return false }
        return constantTimeEquals(Array(computed.utf8), Array(stored.utf8))
    }

    static func argon2Parameters(of stored: String) -> Parameters? {
        // $argon2id$v=19$m=19456,t=2,p=1$salt$hash
        let fields = stored.split(separator: "$")
        guard fields.count == 5, fields[0] == "argon2id" else { return nil }
        var values: [Substring: UInt32] = [:]
        for pair in fields[2].split(separator: ",") {
            let parts = pair.split(separator: "=")
            guard parts.count == 2, let value = UInt32(parts[1]) else { return nil }
            values[parts[0]] = value
        }
        guard let m = values["m"], let t = values["t"], let p = values["p"] else { return nil }
        return Parameters(memoryKiB: m, iterations: t, parallelism: p)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
