import Foundation
import GatehouseConfiguration

/// The configuration loader on arbitrary tenant files: the input is written as `tenants/fuzz.yaml` beside a fixed
/// `gatehouse.yaml` and loaded. Nothing traps, and a refusal always names the file and a line.
let root = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-fuzz-config-\(getpid())")
let configured: Bool = {
    try? FileManager.default.createDirectory(at: root.appendingPathComponent("config"), withIntermediateDirectories: true)
    try? FileManager.default.createDirectory(at: root.appendingPathComponent("tenants"), withIntermediateDirectories: true)
    let gateway = "listen: 127.0.0.1:8080\ntenants: ../tenants\nstore: sqlite:../data/fuzz.sqlite\n"
    return (try? gateway.write(to: root.appendingPathComponent("config/gatehouse.yaml"), atomically: true, encoding: .utf8)) != nil
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, configured else { return 0 }
    let tenant = root.appendingPathComponent("tenants/fuzz.yaml")
    guard FileManager.default.createFile(atPath: tenant.path, contents: Data(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    switch ConfigurationLoader.load(configPath: root.appendingPathComponent("config/gatehouse.yaml").path, environment: [:]) {
    case .success:
        break
    case .failure(let error):
        precondition(error.description.contains("fuzz.yaml:") || error.description.contains("gatehouse.yaml:"), "no file:line: \(error)")
    }
    return 0
}
