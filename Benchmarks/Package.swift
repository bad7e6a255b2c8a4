// swift-tools-version: 6.0
// Micro-benchmarks of single steps of the proxy path, kept out of the main package (they are run by hand, in
// release builds: `swift run -c release --package-path Benchmarks MetricsRecordingCost`). The figures that count
// are scripts/bench.sh's, under load against the peers; these explain them.
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which depends on where the repository was cloned.
let gatehouse = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "gatehouse-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "MetricsRecordingCost",
            dependencies: [.product(name: "GatehouseMetrics", package: gatehouse), .product(name: "GatehouseProxy", package: gatehouse)])
    ]
)
