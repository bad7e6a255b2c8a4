import CArgon2
import CSodium
import Testing
@testable import GatehouseIdentity

@Suite struct PasswordHasherTests {
    let hasher = PasswordHasher(parameters: .init(memoryKiB: 1024, iterations: 1, parallelism: 1))

    @Test func argon2idRoundTripsInPHCFormat() {
        let hash = hasher.hash("correct horse battery staple")
        #expect(hash.hasPrefix("$argon2id$v=19$m=1024,t=1,p=1$"))
        #expect(hasher.verify("correct horse battery staple", against: hash) == .match)
        #expect(hasher.verify("correct horse battery stapler", against: hash) == .mismatch)
        #expect(hasher.hash("same") != hasher.hash("same"), "each hash has its own salt")
    }

    @Test func argon2idHashesWithOtherParametersVerify() {
        // A fixed vector with two lanes and other costs, as another deployment or an import would have stored it.
        let foreign = "$argon2id$v=19$m=4096,t=3,p=2$Z2F0ZWhvdXNlLXNhbHQxNg$E4tjagmDLMDBqKR+901SHzucMB+EcZYxT1x9NQPV5Dc"
        #expect(hasher.verify("correct horse battery staple", against: foreign) == .matchNeedsRehash)
        #expect(hasher.verify("correct horse battery stapler", against: foreign) == .mismatch)
    }

    @Test func olderParametersAskForARehash() {
        let old = PasswordHasher(parameters: .init(memoryKiB: 512, iterations: 1, parallelism: 1)).hash("pw")
        #expect(hasher.verify("pw", against: old) == .matchNeedsRehash)
    }

    @Test func importedBcryptVerifiesAndAsksForARehash() {
        // The OpenBSD/openwall test vector for "U*U".
        let vector = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
        #expect(hasher.verify("U*U", against: vector) == .matchNeedsRehash)
        #expect(hasher.verify("U*V", against: vector) == .mismatch)
        let b = "$2b$" + vector.dropFirst(4)
        #expect(hasher.verify("U*U", against: String(b)) == .matchNeedsRehash)
    }

    @Test func bcryptAboveCost14AndGarbageAreRefused() {
        #expect(!PasswordHasher.isSupportedHash("$2b$15$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"))
        #expect(hasher.verify("U*U", against: "$2b$15$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW") == .mismatch)
        #expect(!PasswordHasher.isSupportedHash("$1$md5crypt"))
        #expect(!PasswordHasher.isSupportedHash("plaintext"))
        #expect(hasher.verify("", against: "") == .mismatch)
    }

    @Test func theHashingPoolRefusesWorkBeyondItsQueue() async throws {
        let pool = HashingPool(threads: 1, queueLength: 1)
        let gate = AsyncGate()
        async let first: Void = pool.run { gate.waitBlocking() }
        async let second: Void = pool.run { gate.waitBlocking() }
        try await Task.sleep(for: .milliseconds(100))
        await #expect(throws: HashingPool.Overloaded.self) { try await pool.run { 1 } }
        gate.open()
        _ = try await (first, second)
        #expect(try await pool.run { 2 } == 2)
        try await pool.shutdown()
    }
}

/// Blocks pool threads until opened.
final class AsyncGate: Sendable {
    private let semaphore = DispatchSemaphoreBox()
    func waitBlocking() { semaphore.wait() }
    func open() { semaphore.signal(times: 2) }
}

import Dispatch

final class DispatchSemaphoreBox: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func wait() { semaphore.wait() }
    func signal(times: Int) { for _ in 0..<times { semaphore.signal() } }
}

/// libsodium hashes and verifies argon2id in place of libargon2: on generated input, both give the same bytes for
/// the same password, salt and parameters, and each verifies the other's PHC strings (§5: every existing hash keeps
/// verifying).
@Suite struct LibsodiumEquivalenceTests {
    static func passwords() -> [String] {
        var generator = SystemRandomNumberGenerator()
        var cases = ["", "a", "correct horse battery staple", "pässwörd ✓ 🐎", String(repeating: "x", count: 1024), "nul\u{0}inside"]
        for _ in 0..<24 {
            let length = Int.random(in: 1...80, using: &generator)
            cases.append(String((0..<length).map { _ in Character(Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &generator))) }))
        }
        return cases
    }

    @Test func rawHashesAreIdenticalForTheSameSaltAndParameters() {
        var generator = SystemRandomNumberGenerator()
        for (index, password) in Self.passwords().enumerated() {
            let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let iterations = UInt32(1 + index % 3)
            let memoryKiB = UInt32([1024, 2048, 4096][index % 3])
            let bytes = Array(password.utf8)
            var sodium = [UInt8](repeating: 0, count: 32)
            var reference = [UInt8](repeating: 0, count: 32)
            let sodiumStatus = crypto_pwhash(
                &sodium, 32, password, UInt64(bytes.count), salt, UInt64(iterations), Int(memoryKiB) * 1024, crypto_pwhash_ALG_ARGON2ID13)
            let referenceStatus = argon2id_hash_raw(iterations, memoryKiB, 1, bytes, bytes.count, salt, salt.count, &reference, 32)
            #expect(sodiumStatus == 0 && referenceStatus == ARGON2_OK.rawValue)
            #expect(sodium == reference, "password #\(index)")
        }
    }

    @Test func eachVerifiesTheOthersStrings() {
        let hasher = PasswordHasher(parameters: .init(memoryKiB: 1024, iterations: 1, parallelism: 1))
        let twoLanes = PasswordHasher(parameters: .init(memoryKiB: 1024, iterations: 1, parallelism: 2))
        for password in Self.passwords().prefix(12) {
            let bytes = Array(password.utf8)
            let bySodium = hasher.hash(password)
            #expect(argon2id_verify(bySodium, bytes, bytes.count) == ARGON2_OK.rawValue)
            let byReference = hasher.hashWithLibargon2(password)
            #expect(hasher.verify(password, against: byReference) == .match)
            // More than one lane: hashed by libargon2, verified by libsodium.
            let laned = twoLanes.hash(password)
            #expect(laned.contains(",p=2$") && hasher.verify(password, against: laned) == .matchNeedsRehash)
            #expect(hasher.verify(password + "x", against: bySodium) == .mismatch)
        }
    }
}
