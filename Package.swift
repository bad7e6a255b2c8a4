// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
        // The parsers the fuzz targets in Fuzzing/ exercise.
        .library(name: "GatehouseProxy", targets: ["GatehouseProxy"]),
        .library(name: "GatehouseTokens", targets: ["GatehouseTokens"]),
        .library(name: "GatehouseBrowser", targets: ["GatehouseBrowser"]),
        .library(name: "GatehouseConfiguration", targets: ["GatehouseConfiguration"]),
        // For Benchmarks/: what recording a request's metrics costs, in isolation.
        .library(name: "GatehouseMetrics", targets: ["GatehouseMetrics"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
    ],
    targets: [
        // Parsing and validation of config/gatehouse.yaml and tenants/*.yaml.
        .target(
            name: "GatehouseConfiguration",
            dependencies: ["GatehouseTokens", "GatehouseMail", .product(name: "Yams", package: "Yams")]
        ),
        // System libraries: argon2id (Debian libsodium-dev, whose SIMD code hashes; libargon2-dev for more than one
        // lane, which libsodium does not compute) and libxcrypt's bcrypt (libcrypt-dev).
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CArgon2", pkgConfig: "libargon2", providers: [.apt(["libargon2-dev"])]),
        .systemLibrary(name: "CCrypt", pkgConfig: "libcrypt", providers: [.apt(["libcrypt-dev"])]),
        // JWS signing and verification, keys, revocation and the verified-token cache. No I/O.
        .target(
            name: "GatehouseTokens",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Users, passwords, logins, the store protocol and the service that issues tokens; the stores are modules
        // of their own, chosen where the application is assembled.
        .target(
            name: "GatehouseIdentity",
            dependencies: [
                "GatehouseConfiguration",
                "GatehouseTokens",
                "GatehouseMail",
                "CSodium",
                "CArgon2",
                "CCrypt",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The embedded store: one SQLite file (GRDB), shared by the gateway and the command line on one host.
        .target(
            name: "GatehouseSQLiteStore",
            dependencies: [
                "GatehouseIdentity",
                "GatehouseConfiguration",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The shared store of several replicas: PostgreSQL through postgres-nio, with LISTEN/NOTIFY for revocations.
        .target(
            name: "GatehousePostgresStore",
            dependencies: [
                "GatehouseIdentity",
                "GatehouseConfiguration",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The §10 metrics: the swift-metrics series of the gateway, and the swift-prometheus backend that serves them.
        .target(
            name: "GatehouseMetrics",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // Account e-mail (§11): the message builder, SMTP submission over SwiftNIO and the webhook transport.
        .target(
            name: "GatehouseMail",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        // Tenant resolution, routing, path normalization and the upstream side of forwarding.
        .target(
            name: "GatehouseProxy",
            dependencies: [
                "GatehouseConfiguration",
                "GatehouseMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Writing the responses the process makes itself, the one way: the gateway, its admin listener, the echo server.
        .target(
            name: "GatehouseHTTP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The browser side of §7: login and signup pages (Mustache), CSRF form tokens, cookies, safe redirects.
        .target(
            name: "GatehouseBrowser",
            dependencies: [
                "GatehouseConfiguration",
                "GatehouseTokens",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The listeners that wire configuration, policy and proxy together.
        .target(
            name: "GatehouseServer",
            dependencies: [
                "GatehouseConfiguration",
                "GatehouseProxy",
                "GatehouseIdentity",
                "GatehouseSQLiteStore",
                "GatehousePostgresStore",
                "GatehouseTokens",
                "GatehouseBrowser",
                "GatehouseMetrics",
                "GatehouseMail",
                "GatehouseHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // `gatehouse echo`: a tiny upstream that answers with the request it got.
        .target(
            name: "GatehouseEcho",
            dependencies: [
                "GatehouseHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseConfiguration",
                "GatehouseIdentity",
                "GatehouseSQLiteStore",
                "GatehousePostgresStore",
                "GatehouseTokens",
                "GatehouseServer",
                "GatehouseEcho",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Raw-socket client, misbehaving upstreams and process helpers shared by the end-to-end tests.
        .target(
            name: "GatehouseTestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/GatehouseTestSupport"
        ),
        .testTarget(
            name: "GatehouseConfigurationTests",
            dependencies: ["GatehouseConfiguration", "GatehouseMail"]
        ),
        .testTarget(
            name: "GatehouseTokensTests",
            dependencies: ["GatehouseTokens", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "GatehouseIdentityTests",
            dependencies: ["GatehouseIdentity", "GatehouseTokens", "GatehouseConfiguration", "CSodium", "CArgon2"]
        ),
        .testTarget(
            name: "GatehouseSQLiteStoreTests",
            dependencies: ["GatehouseSQLiteStore", "GatehouseIdentity", "GatehouseConfiguration", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "GatehousePostgresStoreTests",
            dependencies: [
                "GatehousePostgresStore", "GatehouseIdentity", "GatehouseConfiguration", "GatehouseTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        // One suite, every test run against each store: SQLite and a private PostgreSQL cluster.
        .testTarget(
            name: "GatehouseStoreConformanceTests",
            dependencies: [
                "GatehouseIdentity", "GatehouseSQLiteStore", "GatehousePostgresStore", "GatehouseTokens", "GatehouseConfiguration",
                "GatehouseMail", "GatehouseTestSupport", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "GatehouseMailTests",
            dependencies: [
                "GatehouseMail", "GatehouseTestSupport", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "GatehouseMetricsTests",
            dependencies: ["GatehouseMetrics", "GatehouseTestSupport", .product(name: "CoreMetrics", package: "swift-metrics")]
        ),
        .testTarget(
            name: "GatehouseBrowserTests",
            dependencies: ["GatehouseBrowser", "GatehouseConfiguration", "GatehouseTestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "GatehouseProxyTests",
            dependencies: [
                "GatehouseProxy", "GatehouseConfiguration", "GatehouseTestSupport", .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "GatehouseServerTests",
            dependencies: [
                "GatehouseServer",
                "GatehouseProxy",
                "GatehouseIdentity",
                "GatehouseTokens",
                .product(name: "Crypto", package: "swift-crypto"),
                "GatehouseEcho",
                "GatehouseConfiguration",
                "GatehouseTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "GatehouseHTTPTests",
            dependencies: [
                "GatehouseHTTP", .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Runs the real `gatehouse` binary: exit codes, signals, streaming memory.
        .testTarget(
            name: "GatehouseCommandTests",
            dependencies: [
                "gatehouse",
                "GatehouseEcho",
                "GatehouseTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
