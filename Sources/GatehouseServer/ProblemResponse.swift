import NIOCore
import NIOHTTP1

/// A gateway-made error answer, `application/problem+json` (RFC 9457).
struct ProblemResponse {
    var status: HTTPResponseStatus
    var detail: String
    var headers: [(String, String)] = []
    /// Close the client connection once this is sent (the request body, if any, was not read).
    var closeConnection = false

    init(_ status: HTTPResponseStatus, _ detail: String, headers: [(String, String)] = [], closeConnection: Bool = false) {
        self.status = status
        self.detail = detail
        self.headers = headers
        self.closeConnection = closeConnection
    }

    var body: String {
        """
        {"type":"about:blank","title":\(JSON.quote(status.reasonPhrase)),"status":\(status.code),"detail":\(JSON.quote(detail))}
        """
    }
}
