import NIOCore

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
