import Foundation
import GatehouseIdentity
import GatehouseConfiguration
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// How the store reaches its database: the client pool's and the signal connection's configurations, from the
/// `store:` URL (§2). Holds the password; prints without it.
struct PostgresSettings: Sendable, CustomStringConvertible {
    let url: PostgresURL
    let tls: TLSConfiguration?
    /// At most this many connections per process: the login path holds one for a few milliseconds.
    let maximumConnections: Int

    init(url: PostgresURL, maximumConnections: Int = 10) throws {
        self.url = url
        self.maximumConnections = maximumConnections
        switch url.sslMode {
        case .disable:
            tls = nil
        case .require, .verifyFull:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if let root = url.sslRootCertificatePath {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(root))
                } catch {
                    throw IdentityStoreErrorDescription.failure("cannot read sslrootcert \(root): \(error)")
                }
            }
            // libpq's meanings: `require` checks the chain only when a root certificate is given, never the name;
            // `verify-full` checks both.
            if url.sslMode == .require {
                configuration.certificateVerification = url.sslRootCertificatePath == nil ? .none : .noHostnameVerification
            } else {
                configuration.certificateVerification = .fullVerification
            }
            tls = configuration
        }
    }

    var description: String { url.description }

    var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database,
            tls: tls.map { .require($0) } ?? .disable)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(15))
        // The server gives up too, and releases its locks, when a call is abandoned at the client's timeout.
        configuration.options.additionalStartupParameters = [("lock_timeout", "5s"), ("statement_timeout", "10s")]
        return configuration
    }

    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let connectionTLS: PostgresConnection.Configuration.TLS
        if let tls {
            connectionTLS = .require(try NIOSSLContext(configuration: tls))
        } else {
            connectionTLS = .disable
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: connectionTLS)
        configuration.options.connectTimeout = .seconds(3)
        return configuration
    }
}

/// One-line reasons for database failures, safe to log: never the password (postgres-nio's own descriptions are
/// deliberately vague, so the server's SQLSTATE and message, or the socket error, are spelled out here).
enum IdentityStoreErrorDescription: Error, CustomStringConvertible {
    case failure(String)

    var description: String {
        switch self {
        case .failure(let reason): return reason
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                let state = info[.sqlState] ?? "?"
                let message = info[.message] ?? "error"
                switch state {
                case "28P01", "28000": return "authentication failed: \(message)"
                case "3D000": return "the database does not exist: \(message)"
                default: return "the server answered \(state): \(message)"
                }
            }
            switch error.code {
            case .sslUnsupported: return "the server does not offer TLS (the URL asks for sslmode=require or verify-full)"
            case .connectionError:
                return "cannot connect: " + connectionFailure(error.underlying)
            case .serverClosedConnection: return "the server closed the connection"
            case .clientClosedConnection: return "the connection was closed"
            case .poolClosed: return "the connection pool is closed"
            default:
                if let underlying = error.underlying { return "\(error.code): \(underlying)" }
                return "\(error.code)"
            }
        }
        if let error = error as? IdentityStoreError, case .unavailable(let reason) = error { return reason }
        if let error = error as? IdentityStoreErrorDescription { return error.description }
        return "\(error)"
    }

    /// The socket's own reason ("Connection refused (errno: 111)", a DNS failure), not NIO's whole chain.
    private static func connectionFailure(_ underlying: (any Error)?) -> String {
        guard let underlying else { return "connection failed" }
        guard let failure = underlying as? NIOConnectionError else { return "\(underlying)" }
        if let dns = failure.dnsAError ?? failure.dnsAAAAError { return "cannot resolve \(failure.host): \(dns)" }
        if let last = failure.connectionErrors.last {
            if let io = last.error as? IOError { return "\(last.target): \(io.description)" }
            return "\(last.target): \(last.error)"
        }
        return "\(underlying)"
    }
}
