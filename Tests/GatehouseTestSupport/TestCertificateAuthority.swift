import Foundation

/// A private CA and a server certificate it signed for `localhost` and `127.0.0.1`, made with openssl in a folder of
/// their own: for tests of TLS clients that must trust a private CA (the SMTP transport's `?ca=`).
public struct TestCertificateAuthority: Sendable {
    public let folder: String
    public var caCertificate: String { folder + "/ca.pem" }
    public var serverCertificate: String { folder + "/server.pem" }
    public var serverKey: String { folder + "/server.key" }

    public init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-ca-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: folder + "/san.cnf", atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=Gatehouse test CA",
             "-keyout", folder + "/ca.key", "-out", folder + "/ca.pem"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-keyout", folder + "/server.key",
             "-out", folder + "/server.csr"],
            ["x509", "-req", "-in", folder + "/server.csr", "-CA", folder + "/ca.pem", "-CAkey", folder + "/ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", folder + "/san.cnf", "-out", folder + "/server.pem"],
        ]
        for step in steps {
            let result = try run("/usr/bin/openssl", step)
            guard result.status == 0 else { throw SMTPTestServer.Failure(description: "openssl failed: \(result.error)") }
        }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: folder) }
}
