import NIOHTTP1
import Testing
@testable import GatehouseProxy

@Suite struct RequestFramingTests {
    private func decide(_ headers: [(String, String)], version: HTTPVersion = .http1_1) -> Result<RequestFraming, RequestFraming.Rejection> {
        RequestFraming.decide(RequestHeaderFacts(HTTPHeaders(headers)), version: version)
    }

    @Test func oneReadingOfTheLengthOrNone() {
        #expect(decide([]) == .success(.none))
        #expect(decide([("Content-Length", "0")]) == .success(.contentLength(0)))
        #expect(decide([("content-length", "1234")]) == .success(.contentLength(1234)))
        #expect(decide([("Transfer-Encoding", "chunked")]) == .success(.chunked))
        #expect(decide([("transfer-encoding", " CHUNKED ")]) == .success(.chunked))
    }

    @Test(arguments: [
        ([("Transfer-Encoding", "gzip, chunked")], RequestFraming.Rejection.unsupportedTransferEncoding),
        ([("Transfer-Encoding", "identity, chunked")], .unsupportedTransferEncoding),
        ([("Transfer-Encoding", "xchunked")], .unsupportedTransferEncoding),
        ([("Transfer-Encoding", "chunked;x=1")], .unsupportedTransferEncoding),
        ([("Transfer-Encoding", "")], .unsupportedTransferEncoding),
        ([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], .severalTransferEncodings),
        ([("Transfer-Encoding", "chunked"), ("Content-Length", "5")], .transferEncodingWithContentLength),
        ([("Content-Length", "5"), ("Content-Length", "5")], .severalContentLengths),
        ([("Content-Length", "5, 5")], .invalidContentLength),
        ([("Content-Length", "+5")], .invalidContentLength),
        ([("Content-Length", "-1")], .invalidContentLength),
        ([("Content-Length", "0x5")], .invalidContentLength),
        ([("Content-Length", "")], .invalidContentLength),
        ([("Content-Length", "99999999999999999999")], .invalidContentLength),
    ])
    func ambiguousFramingIsRefused(headers: [(String, String)], rejection: RequestFraming.Rejection) {
        #expect(decide(headers) == .failure(rejection))
    }

    @Test func transferEncodingIsNotHTTP10() {
        #expect(decide([("Transfer-Encoding", "chunked")], version: .http1_0) == .failure(.transferEncodingInHTTP10))
    }
}

@Suite struct UpstreamRequestPlanTests {
    private let policy = ForwardingHeaders.RequestPolicy(reservedHeaderNames: ["x-user-id", "x-user-roles", "x-identity-assertion"], forwardAuthorization: false)
    private let untrusted = ClientConnectionInfo(peerAddress: "192.0.2.7", peerIsTrusted: false, scheme: "http")

    private func head(_ incoming: [(String, String)], framing: RequestFraming, webSocket: Bool = false) -> HTTPRequestHead {
        let headers = HTTPHeaders(incoming)
        let plan = UpstreamRequestPlan(
            method: .POST, uri: "/x", framing: framing, isWebSocketUpgrade: webSocket, identityHeaders: [("X-User-Id", "u1")])
        return plan.makeHead(from: headers, facts: RequestHeaderFacts(headers), policy: policy, connection: untrusted, requestID: "rid")
    }

    @Test func framingComesFromThePlanWhateverConnectionSays() {
        for connection in ["Content-Length", "keep-alive, content-length", "Transfer-Encoding", "Host", "X-Forwarded-For", "X-User-Id", "X-Request-Id"] {
            let length = head([("Host", "acme.test"), ("Connection", connection), ("Content-Length", "5")], framing: .contentLength(5))
            #expect(length.headers["content-length"] == ["5"], "\(connection)")
            #expect(!length.headers.contains(name: "transfer-encoding"))
            #expect(length.headers["host"] == ["acme.test"], "\(connection)")
            #expect(length.headers["x-forwarded-for"] == ["192.0.2.7"], "\(connection)")
            #expect(length.headers["x-user-id"] == ["u1"], "\(connection)")
            #expect(length.headers["x-request-id"] == ["rid"], "\(connection)")
            let chunked = head([("Host", "acme.test"), ("Connection", connection), ("Transfer-Encoding", "chunked")], framing: .chunked)
            #expect(chunked.headers["transfer-encoding"] == ["chunked"], "\(connection)")
            #expect(!chunked.headers.contains(name: "content-length"))
        }
        let none = head([("Host", "acme.test"), ("Content-Length", "7")], framing: .none)
        #expect(!none.headers.contains(name: "content-length"), "the client's own length never passes")
    }

    @Test func onlyAWebSocketUpgradePasses() {
        let other = head([("Host", "a"), ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMA")], framing: .none)
        for name in ["upgrade", "connection", "http2-settings"] { #expect(!other.headers.contains(name: name), "\(name)") }
        let socket = head([("Host", "a"), ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "k")], framing: .none, webSocket: true)
        #expect(socket.headers["upgrade"] == ["websocket"])
        #expect(socket.headers["connection"] == ["upgrade"])
        #expect(socket.headers["sec-websocket-key"] == ["k"])
    }

    @Test func lookAlikesOfGatewayHeadersAreStripped() {
        let result = head(
            [
                ("Host", "a"), ("X_User_Id", "forged"), ("x_user_roles", "admin"), ("X-User_Id", "forged"), ("X_Forwarded_For", "6.6.6.6"),
                ("X_Identity_Assertion", "forged"), ("Content_Length", "9"), ("X_Custom", "kept"), ("Api_Key", "kept"),
            ], framing: .none)
        #expect(result.headers.filter { $0.value == "forged" || $0.value == "admin" || $0.value == "6.6.6.6" || $0.value == "9" }.isEmpty)
        #expect(result.headers["x_custom"] == ["kept"])
        #expect(result.headers["api_key"] == ["kept"])
    }

    @Test func clientClaimsAboutTheClientNeedATrustedPeer() {
        let names = ["X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Prefix", "X-Forwarded-Port", "X-Real-IP", "Forwarded", "True-Client-IP", "X-Client-IP"]
        let incoming = HTTPHeaders([("Host", "a")] + names.map { ($0, "v") })
        let plan = UpstreamRequestPlan(method: .GET, uri: "/", framing: .none, isWebSocketUpgrade: false, identityHeaders: [])
        let fromAnyone = plan.makeHead(from: incoming, facts: RequestHeaderFacts(incoming), policy: policy, connection: untrusted, requestID: "r")
        let trusted = ClientConnectionInfo(peerAddress: "10.0.0.1", peerIsTrusted: true, scheme: "http")
        let fromProxy = plan.makeHead(from: incoming, facts: RequestHeaderFacts(incoming), policy: policy, connection: trusted, requestID: "r")
        for name in names {
            #expect(!fromAnyone.headers.contains(name: name), "\(name)")
            #expect(fromProxy.headers[name] == ["v"], "\(name)")
        }
    }

    @Test func upstreamsCannotSetTheGatewaysCookies() {
        let incoming = HTTPHeaders([
            ("Set-Cookie", "gatehouse_session=x; Domain=acme.test"), ("set-cookie", " GATEHOUSE_CSRF=y"), ("Set-Cookie", "gatehouse_sessionx=kept"),
            ("Set-Cookie", "theme=dark"),
        ])
        let headers = ForwardingHeaders.clientResponseHeaders(from: incoming, requestID: "r", keepUpgrade: false)
        #expect(headers["set-cookie"] == ["gatehouse_sessionx=kept", "theme=dark"])
    }

    @Test func a101MustNameWebSocket() {
        #expect(ForwardingHeaders.answersWebSocketUpgrade(HTTPHeaders([("Upgrade", "websocket"), ("Connection", "Upgrade")])))
        #expect(!ForwardingHeaders.answersWebSocketUpgrade(HTTPHeaders([("Upgrade", "h2c"), ("Connection", "Upgrade")])))
        #expect(!ForwardingHeaders.answersWebSocketUpgrade(HTTPHeaders([("Upgrade", "websocket")])))
        #expect(!ForwardingHeaders.answersWebSocketUpgrade(HTTPHeaders()))
    }

    @Test func everyKnownHeaderIsRecognisedInAnyCase() {
        for header in KnownHeader.allCases {
            #expect(KnownHeader(name: header.rawValue) == header)
            #expect(KnownHeader(name: header.rawValue.uppercased()) == header)
        }
        #expect(KnownHeader(name: "x-forwarded-hos") == nil)
        #expect(KnownHeader(name: "x-forwarded-pork") == nil)
    }
}
