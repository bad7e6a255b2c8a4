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

/// Minimal JSON string quoting for bodies the gateway writes itself.
enum JSON {
    static func quote(_ text: String) -> String {
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case let control where control.value < 0x20 || control.value == 0x7F:
                let hex = String(control.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
