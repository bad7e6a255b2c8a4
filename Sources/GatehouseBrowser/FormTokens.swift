import Crypto
import GatehouseTokens

/// CSRF tokens for the login and signup forms (§7), login CSRF included: there is no session yet to tie a token
/// to, so each browser gets a random binding in a cookie, and the form carries an HMAC of it. A page of another
/// site can neither read the token nor set the cookie, so it cannot forge a form post.
public struct FormTokens: Sendable {
    private let key: SymmetricKey

    /// - Parameter key: derived from the master key, so every replica accepts every other's forms.
    public init(key: SymmetricKey) {
        self.key = key
    }

    /// A fresh binding for a browser without one: 256 random bits, base64url.
    public static func newBinding() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Base64URL.encode($0) }
    }

    /// Whether a cookie value could be a binding we made (43 base64url characters).
    public static func isWellFormedBinding(_ value: String) -> Bool {
        value.utf8.count == 43 && Base64URL.decode(value)?.count == 32
    }

    /// The token the forms of `tenant` carry for this binding.
    public func token(binding: String, tenant: String) -> String {
        Base64URL.encode(HMAC<SHA256>.authenticationCode(for: Array(message(binding, tenant).utf8), using: key))
    }

    /// Whether `token` is this binding's token at this tenant; compared in constant time.
    public func isValid(_ token: String, binding: String, tenant: String) -> Bool {
        guard Self.isWellFormedBinding(binding), token.utf8.count == 43, let mac = Base64URL.decode(token) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(message(binding, tenant).utf8), using: key)
    }

    private func message(_ binding: String, _ tenant: String) -> String {
        "gatehouse form\n" + tenant + "\n" + binding
    }
}
