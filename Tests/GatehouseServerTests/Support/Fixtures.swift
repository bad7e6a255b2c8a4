import GatehouseTestSupport

/// The tenant most end-to-end tests run against.
let acmeTenant = """
    hosts: [acme.test, "*.acme.test"]
    routes:
      - {path: /api/admin, methods: [GET, POST], upstream: "{{ECHO}}", require: {roles: [admin]}}
      - {path: /api, upstream: "{{ECHO}}", strip_prefix: true, require: public}
      - {path: /private, upstream: "{{ECHO}}"}
      - {path: /silent, upstream: "{{SILENT}}", require: public}
      - {path: /down, upstream: "http://127.0.0.1:1", require: public}
      - {path: /cut, upstream: "{{CUT}}", require: public}
      - {path: /reset, upstream: "{{RESET}}", require: public}
      - {path: /ws, upstream: "{{WS}}", require: public}
      - {path: /ws-private, upstream: "{{WS}}"}
      - {path: /flaky, upstream: "{{FLAKY}}", require: public}
      - {path: /hop, upstream: "{{HOP}}", require: public}
      - {path: /, upstream: "{{ECHO}}", require: public}
    """

let acmeUpstreams: [String: UpstreamBehaviour] = [
    "SILENT": .silent, "CUT": .closeMidBody, "RESET": .resetMidBody, "WS": .upgradeAndEcho, "FLAKY": .closeOnSecondRequest, "HOP": .hopByHopHeaders,
]

let testLimits = """
    limits:
      max_body_bytes: 64KiB
      upstream_connect_timeout: 2s
      upstream_timeout: 1s
      request_head_timeout: 1s
      max_header_bytes: 16KiB

    """

/// Runs `body` against a gateway serving `acmeTenant` with `testLimits`.
func withAcmeGateway(_ body: (TestGateway) async throws -> Void) async throws {
    try await TestGateway.with(gatewayExtra: testLimits, body)
}
