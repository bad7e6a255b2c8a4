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
