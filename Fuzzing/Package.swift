// swift-tools-version: 6.0
// libFuzzer targets for Gatehouse's parsers, one small executable each. Kept out of the main package: an executable
// built for libFuzzer has no `main` of its own and links only with the fuzzer runtime. Run with scripts/fuzz.sh.
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which depends on where the repository was cloned.
let gatehouse = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

func target(_ name: String, _ products: [String]) -> Target {
    .executableTarget(name: name, dependencies: products.map { .product(name: $0, package: gatehouse) })
}

let package = Package(
    name: "gatehouse-fuzzing",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        target("FuzzPathNormalizer", ["GatehouseProxy"]),
        .executableTarget(
            name: "FuzzRequestHeaders",
            dependencies: [.product(name: "GatehouseProxy", package: gatehouse), .product(name: "NIOHTTP1", package: "swift-nio")]),
        target("FuzzCredentials", ["GatehouseTokens", "GatehouseBrowser"]),
        target("FuzzRedirectTarget", ["GatehouseBrowser"]),
        target("FuzzAccessToken", ["GatehouseTokens"]),
        target("FuzzEmailAddress", ["GatehouseConfiguration"]),
        target("FuzzFormBody", ["GatehouseBrowser"]),
        target("FuzzJSONBody", ["GatehouseBrowser"]),
        target("FuzzConfiguration", ["GatehouseConfiguration"]),
    ],
    swiftLanguageModes: [.v6]
)
