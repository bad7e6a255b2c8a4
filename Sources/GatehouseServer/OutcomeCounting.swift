import GatehouseIdentity
import GatehouseMetrics
import GatehouseProxy

/// Counts a login or a sign-up in its tenant's series by how it ended: one place maps the identity errors to the
/// fixed `result` labels, for the JSON endpoints and the HTML forms alike.
extension TenantMetrics {
    func countingLogin<Result>(_ attempt: () async throws -> Result) async throws -> Result {
        try await counting(attempt, success: { count(LoginResult.success) }, failure: { LoginResult($0).map(count) })
    }

    func countingSignup<Result>(_ attempt: () async throws -> Result) async throws -> Result {
        try await counting(attempt, success: { count(SignupResult.success) }, failure: { SignupResult($0).map(count) })
    }

    private func counting<Result>(_ attempt: () async throws -> Result, success: () -> Void, failure: (any Error) -> Void?) async throws -> Result {
        do {
            let result = try await attempt()
            success()
            return result
        } catch {
            _ = failure(error)
            throw error
        }
    }
}

extension LoginResult {
    /// nil for an error that is no login attempt (a malformed body is refused before anything is checked).
    init?(_ error: any Error) {
        switch error {
        case IdentityError.invalidCredentials: self = .invalidCredentials
        case IdentityError.lockedOut: self = .locked
        case IdentityError.emailUnverified: self = .unverified
        case IdentityError.overloaded, IdentityStoreError.unavailable: self = .overloaded
        default: return nil
        }
    }
}

extension SignupResult {
    init?(_ error: any Error) {
        switch error {
        case IdentityError.invalidEmail, IdentityError.passwordTooShort, IdentityError.passwordTooLong, IdentityError.invalidName,
            IdentityError.invalidRole:
            self = .invalid
        case IdentityError.signupDisabled, IdentityError.domainNotAllowed: self = .forbidden
        case IdentityError.emailTaken, IdentityStoreError.emailTaken: self = .emailTaken
        case IdentityError.overloaded, IdentityStoreError.unavailable: self = .overloaded
        default: return nil
        }
    }
}
