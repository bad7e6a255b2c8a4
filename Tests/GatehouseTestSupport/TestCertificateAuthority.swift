import Foundation

/// A private CA and a server certificate it signed for `localhost` and `127.0.0.1`, made with openssl in a folder of
/// their own: for tests of TLS clients that must trust a private CA (the SMTP transport's `?ca=`).
public struct TestCertificateAuthority: Sendable {
    public let folder: String
    public var caCertificate: String { folder + "/ca.pem" }
    public var serverCertificate: String { folder + "/server.pem" }
    public var serverKey: String { folder + "/server.key" }

    /// - Parameters:
    ///   - folder: where the files go (created if missing); by default a new temporary folder.
    ///   - names: the server certificate's subject alternative names.
    public init(folder: String? = nil, names: [String] = ["DNS:localhost", "IP:127.0.0.1"]) throws {
        self.folder = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-ca-\(UUID().uuidString)").path
        let folder = self.folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try ("subjectAltName=" + names.joined(separator: ",") + "\n").write(toFile: folder + "/san.cnf", atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=Gatehouse test CA",
             "-keyout", folder + "/ca.key", "-out", folder + "/ca.pem"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-keyout", folder + "/server.key",
             "-out", folder + "/server.csr"],
            ["x509", "-req", "-in", folder + "/server.csr", "-CA", folder + "/ca.pem", "-CAkey", folder + "/ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", folder + "/san.cnf", "-out", folder + "/server.pem"],
        ]
        // posix_spawn and waitpid (PostgresTestServer.execute), not Foundation's Process, whose wait can hang on a
        // thread of the concurrency pool.
        for step in steps {
            let result = try PostgresTestServer.execute("/usr/bin/openssl", step)
            guard result.status == 0 else { throw SMTPTestServer.Failure(description: "openssl failed: \(result.output)") }
        }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: folder) }
}
