import NIOCore
import NIOHTTP1

/// Turns the parts of an upstream request into HTTP/1.1 bytes, appended to one buffer.
///
/// It writes exactly what `HTTPRequestEncoder` with `automaticallySetFramingHeaders` off writes (proven on generated
/// requests by `UpstreamEncodingEquivalenceTests`), into one buffer rather than a buffer per part
/// (``UpstreamRequestEncoder`` writes it at the flush). It adds no framing header: ``UpstreamRequestPlan`` made them
/// from the one ``RequestFraming`` decision. It chunks the body exactly when the head it wrote says
/// `Transfer-Encoding: chunked`, so the body's bytes always agree with the header the upstream reads.
struct UpstreamRequestSerializer {
    private var isChunked = false

    mutating func append(_ part: HTTPClientRequestPart, to buffer: inout ByteBuffer) {
        switch part {
        case .head(let head):
            isChunked = head.version.major == 1 && head.version.minor >= 1 && head.headers.first(name: "transfer-encoding") == "chunked"
            buffer.writeString(head.method.rawValue)
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(head.uri)
            buffer.writeInteger(UInt8(ascii: " "))
            Self.writeVersion(head.version, to: &buffer)
            buffer.writeStaticString("\r\n")
            Self.writeHeaders(head.headers, to: &buffer)
        case .body(let data):
            appendBody(data, to: &buffer)
        case .end(let trailers):
            guard isChunked else { return }
            if let trailers {
                buffer.writeStaticString("0\r\n")
                Self.writeHeaders(trailers, to: &buffer)
            } else {
                buffer.writeStaticString("0\r\n\r\n")
            }
        }
    }

    /// A body part: as it is, or as one chunk (an empty part is no chunk: it would end the body).
    private func appendBody(_ data: IOData, to buffer: inout ByteBuffer) {
        guard case .byteBuffer(var bytes) = data else {
            // The gateway forwards only bytes it read from the client; a file region is never an upstream body.
            preconditionFailure("an upstream request body is always a ByteBuffer")
        }
        guard appendChunkPrefix(count: bytes.readableBytes, to: &buffer) else { return }
        buffer.writeBuffer(&bytes)
        appendChunkSuffix(to: &buffer)
    }

    /// What comes before a body part of `count` bytes (the chunk-size line when chunked); false for a part that is
    /// not written at all (an empty one of a chunked body).
    func appendChunkPrefix(count: Int, to buffer: inout ByteBuffer) -> Bool {
        guard isChunked else { return true }
        guard count > 0 else { return false }
        buffer.writeString(String(count, radix: 16))
        buffer.writeStaticString("\r\n")
        return true
    }

    /// What comes after a body part (the chunk's CRLF when chunked).
    func appendChunkSuffix(to buffer: inout ByteBuffer) {
        if isChunked { buffer.writeStaticString("\r\n") }
    }

    static func writeVersion(_ version: HTTPVersion, to buffer: inout ByteBuffer) {
        switch (version.major, version.minor) {
        case (1, 1): buffer.writeStaticString("HTTP/1.1")
        case (1, 0): buffer.writeStaticString("HTTP/1.0")
        default:
            buffer.writeStaticString("HTTP/")
            buffer.writeString(String(version.major))
            buffer.writeStaticString(".")
            buffer.writeString(String(version.minor))
        }
    }

    /// `name: value` lines and the blank line; the values were checked where they were made (decoded from the client,
    /// or built by ``ForwardingHeaders``), as the stock encoder also assumes.
    static func writeHeaders(_ headers: HTTPHeaders, to buffer: inout ByteBuffer) {
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}
