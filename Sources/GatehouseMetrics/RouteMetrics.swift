import Atomics
import CoreMetrics

/// The series of one (tenant, route): made once per routing table and kept on the route, so that recording a
/// request allocates nothing and takes no lock.
///
/// `gatehouse_requests_total` has a series per method and status code; each is made on the first request that
/// needs it and then found with one atomic load (``RequestCounters``).
public final class RouteMetrics: Sendable {
    public let tenant: String
    public let route: String
    private let requestDuration: Timer
    private let upstreamDuration: Timer
    private let requests: RequestCounters

    init(tenant: String, route: String, factory: any MetricsFactory) {
        self.tenant = tenant
        self.route = route
        let labels = [("tenant", tenant), ("route", route)]
        self.requestDuration = Timer(label: GatewayMetrics.Family.requestDuration, dimensions: labels, factory: factory)
        self.upstreamDuration = Timer(label: GatewayMetrics.Family.upstreamDuration, dimensions: labels, factory: factory)
        self.requests = RequestCounters(tenant: tenant, route: route, factory: factory)
    }

    /// Counts one answered request, with its total time and, when it reached the upstream, the upstream's time
    /// (from sending the head to the end of the response head).
    public func record(method: MethodLabel, status: UInt, totalNanoseconds: Int64, upstreamNanoseconds: Int64?) {
        requests.counter(method: method, status: status).increment()
        requestDuration.recordNanoseconds(totalNanoseconds)
        if let upstreamNanoseconds { upstreamDuration.recordNanoseconds(upstreamNanoseconds) }
    }

    /// Counts a request that could not be parsed (its method unknown, its time meaningless): the counter only.
    public func countUnparsed(status: UInt) {
        requests.counter(method: .other, status: status).increment()
    }

    /// The counter of one (method, status): what ``record(method:status:totalNanoseconds:upstreamNanoseconds:)``
    /// increments; for tests.
    public func requestCounter(method: MethodLabel, status: UInt) -> Counter { requests.counter(method: method, status: status) }
}

/// The `method` label: the methods of RFC 9110 and PATCH, and `OTHER` for anything else a client sends, so no
/// request can add a series.
public enum MethodLabel: Int, CaseIterable, Sendable {
    case get, head, post, put, delete, connect, options, trace, patch, other

    public init(_ method: String) {
        switch method {
        case "GET": self = .get
        case "HEAD": self = .head
        case "POST": self = .post
        case "PUT": self = .put
        case "DELETE": self = .delete
        case "CONNECT": self = .connect
        case "OPTIONS": self = .options
        case "TRACE": self = .trace
        case "PATCH": self = .patch
        default: self = .other
        }
    }

    public var label: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .connect: "CONNECT"
        case .options: "OPTIONS"
        case .trace: "TRACE"
        case .patch: "PATCH"
        case .other: "OTHER"
        }
    }
}

/// The `gatehouse_requests_total` counters of one route, by method and status code, each made on first use.
///
/// A table of lazily set atomic references: a hit is one acquiring load; a miss makes the counter (through the
/// factory, which returns the existing series after a reload) and publishes it with one compare-and-swap, the
/// loser of a race adopting the winner's. Codes outside 100...599 share the slot labelled `other`.
final class RequestCounters: Sendable {
    private let tenant: String
    private let route: String
    private let factory: any MetricsFactory
    /// One lazily made slab per method: most routes see two or three methods.
    private let slabs: [ManagedAtomicLazyReference<StatusSlab>]

    init(tenant: String, route: String, factory: any MetricsFactory) {
        self.tenant = tenant
        self.route = route
        self.factory = factory
        self.slabs = MethodLabel.allCases.map { _ in ManagedAtomicLazyReference() }
    }

    func counter(method: MethodLabel, status: UInt) -> Counter {
        let slot = (100...599).contains(status) ? Int(status) - 100 : StatusSlab.otherSlot
        let slab = slabs[method.rawValue].load() ?? slabs[method.rawValue].storeIfNilThenLoad(StatusSlab())
        if let counter = slab.reference(slot).load() { return counter }
        let code = slot == StatusSlab.otherSlot ? "other" : String(status)
        let counter = Counter(
            label: GatewayMetrics.Family.requests,
            dimensions: [("tenant", tenant), ("route", route), ("method", method.label), ("code", code)], factory: factory)
        return slab.reference(slot).storeIfNilThenLoad(counter)
    }
}

/// 501 lazily set references to counters (codes 100...599, then `other`) in one allocation.
///
/// `@unchecked Sendable`: the storage is only ever accessed through `UnsafeAtomicLazyReference`'s atomic
/// operations, and lives exactly as long as the slab.
final class StatusSlab: @unchecked Sendable {
    static let otherSlot = 500
    private static let slots = 501
    private let storage: UnsafeMutablePointer<UnsafeAtomicLazyReference<Counter>.Storage>

    init() {
        storage = .allocate(capacity: Self.slots)
        storage.initialize(repeating: .init(), count: Self.slots)
    }

    func reference(_ slot: Int) -> UnsafeAtomicLazyReference<Counter> {
        precondition(slot >= 0 && slot < Self.slots)
        return UnsafeAtomicLazyReference(at: storage + slot)
    }

    deinit {
        for slot in 0..<Self.slots { _ = storage[slot].dispose() }
        storage.deinitialize(count: Self.slots)
        storage.deallocate()
    }
}
