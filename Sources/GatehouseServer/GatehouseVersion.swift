/// The version this build reports (`gatehouse --version`, `gatehouse_build_info`).
public enum GatehouseVersion {
    public static let current = "0.13.0"
}
