import Foundation
import Synchronization

/// One tenant's keys: the active signing key and every key whose tokens may still be live.
public struct KeyRing: Sendable {
    public var signingKey: SigningKey?
    /// Keys that verify, by `kid`: the active one and those in their retirement period.
    public var verificationKeys: [String: VerificationKey]

    public init(signingKey: SigningKey?, verificationKeys: [VerificationKey]) {
        self.signingKey = signingKey
        self.verificationKeys = Dictionary(verificationKeys.map { ($0.kid, $0) }, uniquingKeysWith: { first, _ in first })
        if let signingKey { self.verificationKeys[signingKey.kid] = signingKey.verificationKey }
    }

    public static let empty = KeyRing(signingKey: nil, verificationKeys: [])
}

/// Every tenant's key ring, readable synchronously from any thread: the proxy path verifies on the event
/// loop without a hop. Rings are replaced whole when keys are created, rotated or retired.
public final class KeyDirectory: Sendable {
    private let rings = Mutex<[String: KeyRing]>([:])

    public init() {}

    public func ring(for tenant: String) -> KeyRing {
        rings.withLock { $0[tenant] ?? .empty }
    }

    public func replace(_ ring: KeyRing, for tenant: String) {
        rings.withLock { $0[tenant] = ring }
    }

    public func replaceAll(_ all: [String: KeyRing]) {
        rings.withLock { $0 = all }
    }
}
