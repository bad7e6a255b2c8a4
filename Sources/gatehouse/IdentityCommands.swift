import ArgumentParser
import Foundation
import GatehouseConfiguration
import GatehouseIdentity
import GatehouseServer
import Logging

/// The options every `users` and `keys` subcommand takes.
struct TenantOptions: ParsableArguments {
    @OptionGroup var config: ConfigOption

    @Option(help: "The tenant id (its file name in the tenants folder).")
    var tenant: String

    /// Loads the configuration, finds the tenant and opens the store the gateway uses, runs `body`, and closes.
    /// Identity and key errors become one-line failures prefixed with `command`.
    func withIdentity<T>(_ command: String, _ body: (IdentityService, TenantConfiguration) async throws -> T) async throws -> T {
        let loaded: LoadedConfiguration
        switch ConfigurationLoader.load(configPath: config.config, environment: ProcessInfo.processInfo.environment) {
        case .success(let value): loaded = value
        case .failure(let error): throw Failure(description: error.description)
        }
        guard let tenant = loaded.tenants.tenants[tenant] else {
            throw Failure(description: "no tenant '\(tenant)' in \(loaded.gateway.tenantsDirectory)")
        }
        let warn: (String) -> Void = { warning in FileHandle.standardError.write(Data(("warning: " + warning + "\n").utf8)) }
        do {
            return try await StoreBootstrap.withIdentity(loaded.gateway, logger: Gatehouse.commandLogger, warn: warn) { identity in
                try await body(identity, tenant)
            }
        } catch let error as IdentityError {
            throw Failure(description: "\(command): \(Users.describe(error, tenant: tenant))")
        } catch let error as SigningKeyManager.KeyFailure {
            throw Failure(description: "\(command): \(error)")
        } catch let error as StoreBootstrap.Failure {
            throw Failure(description: "\(command): \(error)")
        } catch let error as IdentityStoreError {
            throw Failure(description: "\(command): \(error)")
        }
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage a tenant's users in the store a running gateway uses.",
        subcommands: [Add.self, List.self, SetRoles.self, Disable.self, Import.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user; the password is read from standard input (one line).")

        @OptionGroup var options: TenantOptions
        @Option(help: "The user's email.") var email: String
        @Option(help: "The user's display name.") var name: String = ""
        @Option(name: .customLong("role"), help: "A role (repeat for several; default: the tenant's signup.default_roles).")
        var roles: [String] = []

        func run() async throws {
            guard let password = readLine(strippingNewline: true) else {
                throw Failure(description: "users add: no password on standard input")
            }
            let user = try await options.withIdentity("users add") { identity, tenant in
                try await identity.addUser(
                    tenant: tenant, email: email, password: password, name: name, roles: roles.isEmpty ? tenant.signup.defaultRoles : roles)
            }
            print("added \(user.email) (\(user.id)) to \(user.tenant) with roles [\(user.roles.joined(separator: ", "))]")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's users, one per line (tab-separated).")

        @OptionGroup var options: TenantOptions

        func run() async throws {
            let users = try await options.withIdentity("users list") { identity, tenant in try await identity.store.users(tenant: tenant.id) }
            for user in users {
                let created = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(user.createdAt)))
                print(
                    [
                        user.email, user.id, user.name, user.roles.joined(separator: ","), user.disabled ? "disabled" : "active", created,
                        user.emailVerified ? "verified" : "unverified",
                    ].joined(separator: "\t"))
            }
        }
    }

    struct SetRoles: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-roles", abstract: "Replace a user's roles (new tokens carry them; existing ones until they expire).")

        @OptionGroup var options: TenantOptions
        @Option(help: "The user's email.") var email: String
        @Option(name: .customLong("role"), help: "A role (repeat for several).") var roles: [String] = []

        func run() async throws {
            try await options.withIdentity("users set-roles") { identity, tenant in
                try await identity.setRoles(tenant: tenant, email: email, roles: roles)
            }
            print("\(email): roles [\(roles.joined(separator: ", "))]")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user and revoke all of their logins at once.")

        @OptionGroup var options: TenantOptions
        @Option(help: "The user's email.") var email: String

        func run() async throws {
            try await options.withIdentity("users disable") { identity, tenant in
                try await identity.setDisabled(tenant: tenant, email: email, disabled: true)
            }
            print("\(email): disabled; every login revoked")
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import users from JSON lines: {\"email\", \"name\"?, \"roles\"?, \"password_hash\"} (bcrypt $2a$/$2b$ or argon2id).")

        @OptionGroup var options: TenantOptions
        @Argument(help: "The JSONL file.") var file: String

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw Failure(description: "users import: cannot read \(file)") }
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            let (imported, problems) = try await options.withIdentity("users import") { identity, tenant in
                var imported = 0
                var problems: [String] = []
                for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    switch ImportedUser.parse(line) {
                    case .failure(let message):
                        problems.append("\(file):\(index + 1): \(message)")
                    case .success(let entry) where !(entry.roles ?? []).allSatisfy(RoleName.isValid):
                        problems.append("\(file):\(index + 1): \(RoleName.problem((entry.roles ?? []).first { !RoleName.isValid($0) } ?? ""))")
                    case .success(let entry):
                        let user = UserRecord(
                            tenant: tenant.id, email: entry.email, name: entry.name, roles: entry.roles ?? tenant.signup.defaultRoles,
                            passwordHash: entry.passwordHash, emailVerified: true, createdAt: Int64(Date().timeIntervalSince1970))
                        do {
                            try await identity.store.insertUser(user)
                            imported += 1
                        } catch IdentityStoreError.emailTaken {
                            problems.append("\(file):\(index + 1): \(entry.email) already exists; skipped")
                        }
                    }
                }
                if imported > 0 { await identity.recordImport(tenant: tenant, count: imported, skipped: problems.count) }
                return (imported, problems)
            }
            for problem in problems { FileHandle.standardError.write(Data((problem + "\n").utf8)) }
            print("imported \(imported) user\(imported == 1 ? "" : "s"); \(problems.count) line\(problems.count == 1 ? "" : "s") rejected")
            if !problems.isEmpty { throw ExitCode(1) }
        }
    }

    static func describe(_ error: IdentityError, tenant: TenantConfiguration) -> String {
        switch error {
        case .invalidEmail: return "not a valid email address"
        case .passwordTooShort(let minimum): return "the password must be at least \(minimum) characters"
        case .passwordTooLong: return "the password must be at most \(IdentityService.maximumPasswordBytes) bytes"
        case .emailTaken: return "a user with this email already exists in \(tenant.id)"
        case .unknownUser: return "no such user in \(tenant.id)"
        case .invalidRole(let role): return RoleName.problem(role)
        default: return "\(error)"
        }
    }
}

/// One line of a `users import` file.
struct ImportedUser {
    var email: String
    var name: String
    var roles: [String]?
    var passwordHash: String

    static func parse(_ line: Substring) -> Result<ImportedUser, ImportProblem> {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            return .failure("not a JSON object")
        }
        guard let text = object["email"] as? String, let email = EmailAddress(text)?.canonical else {
            return .failure("'email' is missing or not a plain local@domain address")
        }
        if let name = object["name"] as? String, (try? IdentityService.checkName(name)) == nil {
            return .failure("'name' has a control character or is longer than 256 bytes")
        }
        guard let hash = object["password_hash"] as? String else { return .failure("'password_hash' is missing") }
        guard PasswordHasher.isSupportedHash(hash) else {
            return .failure(ImportProblem(stringLiteral: "'password_hash' is not a bcrypt ($2a$/$2b$/$2y$, cost 4 to \(PasswordHasher.maximumBcryptCost)) or argon2id hash"))
        }
        let roles = object["roles"].flatMap { $0 as? [String] }
        if object["roles"] != nil && roles == nil { return .failure("'roles' must be a list of strings") }
        return .success(ImportedUser(email: email, name: (object["name"] as? String) ?? "", roles: roles, passwordHash: hash))
    }
}

struct ImportProblem: Error, ExpressibleByStringLiteral, CustomStringConvertible {
    var description: String
    init(stringLiteral value: String) { description = value }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List or rotate a tenant's signing keys.", subcommands: [List.self, Rotate.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's keys: kid, algorithm, created, state.")

        @OptionGroup var options: TenantOptions

        func run() async throws {
            let keys = try await options.withIdentity("keys list") { identity, tenant in try await identity.keys.storedKeys(for: tenant.id) }
            let now = Int64(Date().timeIntervalSince1970)
            let format = ISO8601DateFormatter()
            func time(_ seconds: Int64) -> String { format.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))) }
            for key in keys {
                let state: String
                if key.retiredAt == nil {
                    state = "active"
                } else if let until = key.verifiesUntil, until >= now {
                    state = "verifying until \(time(until))"
                } else {
                    state = "retired"
                }
                print([key.kid, key.algorithm, time(key.createdAt), state].joined(separator: "\t"))
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new active key; the previous one keeps verifying until its last token can have expired.")

        @OptionGroup var options: TenantOptions

        func run() async throws {
            let kid = try await options.withIdentity("keys rotate") { identity, tenant in
                try await identity.keys.setTenants([tenant])
                return try await identity.rotateKey(tenant: tenant)
            }
            print("new active key \(kid); running gateways pick it up within 5 s")
        }
    }
}
