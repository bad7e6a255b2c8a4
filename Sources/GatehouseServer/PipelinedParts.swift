import NIOCore
import NIOHTTP1

extension CircularBuffer where Element == HTTPServerRequestPart {
    /// Whether the request at the front of the queue (its head, or, with `startingWithHead: false`, the parts after
    /// a head already taken) is there up to its end. After a parse error nothing more will arrive, so a queued
    /// request without its end is malformed and must never start.
    func holdsCompleteRequest(startingWithHead: Bool = true) -> Bool {
        for (index, part) in self.enumerated() {
            switch part {
            case .end: return true
            case .head: if index > 0 || !startingWithHead { return false }
            case .body: continue
            }
        }
        return false
    }
}

/// How an upstream failure reads in a 502's `detail`.
enum UpstreamFailure {
    static func describe(_ error: Error) -> String {
        switch error {
        case let error as ChannelError:
            if case .connectTimeout = error { return "connect timed out" }
            return "\(error)"
        case let error as IOError:
            return error.description
        default:
            return String(describing: error)
        }
    }
}
