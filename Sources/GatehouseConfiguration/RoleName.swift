/// Role names (§5): `[A-Za-z0-9_.:-]{1,64}`, wherever they come from (tenant file, command line, import). One check,
/// so a role can never carry the `,` that joins roles in `X-User-Roles`, a blank, or a control character.
public enum RoleName {
    public static let maximumLength = 64

    public static func isValid(_ name: String) -> Bool {
        let bytes = name.utf8
        guard !bytes.isEmpty, bytes.count <= maximumLength else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// What a refusal says about `name` (its text escaped, so a control character shows as such).
    public static func problem(_ name: String) -> String {
        "\(name.debugDescription) is not a role name (1 to \(maximumLength) of A-Z a-z 0-9 _ . : -)"
    }
}
