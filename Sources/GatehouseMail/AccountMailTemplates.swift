import Mustache

/// The subject, text and HTML of one account message.
public struct MailContent: Sendable, Equatable {
    public var subject: String
    public var text: String
    public var html: String

    public init(subject: String, text: String, html: String) {
        self.subject = subject
        self.text = text
        self.html = html
    }
}

/// The three messages of §11 (reset, verify, changed) in a tenant's branding: its display name and accent colour.
/// Mustache escapes every value in the HTML part (the text part takes them as they are); the text part holds the code on a line of its own and the link
/// on another, so a mail client (or a test) finds both without parsing HTML.
///
/// Operators cannot replace them with files of their own in this version: a replaced template could drop the code
/// or the link, and the branding covers what tenants asked for so far.
public struct AccountMailTemplates: Sendable {
    /// What a message says besides its kind.
    public struct Values: Sendable {
        public var tenantName: String
        /// `#rgb` or `#rrggbb`, validated by the tenant parser.
        public var accentColor: String
        /// The recipient's name, or empty.
        public var recipientName: String
        public var code: String?
        public var link: String?
        /// How long the code and link work, in words ("15 minutes").
        public var validFor: String

        public init(tenantName: String, accentColor: String, recipientName: String, code: String? = nil, link: String? = nil, validFor: String = "") {
            self.tenantName = tenantName
            self.accentColor = accentColor
            self.recipientName = recipientName
            self.code = code
            self.link = link
            self.validFor = validFor
        }
    }

    private let library: MustacheLibrary

    public init() {
        var library = MustacheLibrary()
        do {
            for kind in [OutgoingMail.Kind.reset, .verify, .changed] {
                try library.register(Self.text(kind), named: kind.rawValue + ".txt")
                try library.register(Self.html(kind), named: kind.rawValue + ".html")
            }
        } catch {
            // Compiled into the binary; a test renders every one.
            preconditionFailure("built-in mail template does not parse: \(error)")
        }
        self.library = library
    }

    public func render(_ kind: OutgoingMail.Kind, _ values: Values) -> MailContent {
        var model: [String: Any] = [
            "tenantName": values.tenantName, "accent": values.accentColor, "validFor": values.validFor,
            "greeting": values.recipientName.isEmpty ? "Hello," : "Hello \(values.recipientName),",
        ]
        if let code = values.code { model["code"] = code }
        if let link = values.link { model["link"] = link }
        let subject: String
        switch kind {
        case .reset: subject = "Reset your \(values.tenantName) password"
        case .verify: subject = "Confirm your e-mail address for \(values.tenantName)"
        case .changed: subject = "Your \(values.tenantName) password was changed"
        }
        return MailContent(
            subject: subject, text: library.render(model, withTemplate: kind.rawValue + ".txt") ?? "",
            html: library.render(model, withTemplate: kind.rawValue + ".html") ?? "")
    }

    private static func text(_ kind: OutgoingMail.Kind) -> String {
        switch kind {
        case .reset:
            return """
                {{{greeting}}}

                Someone asked to reset the password of your {{{tenantName}}} account. If it was you, enter this code:

                {{{code}}}

                or open this link:

                {{{link}}}

                The code and the link work once, for {{{validFor}}}. If you did not ask, ignore this message: your password stays as it is.

                """
        case .verify:
            return """
                {{{greeting}}}

                Please confirm that this is your e-mail address for {{{tenantName}}}. Enter this code:

                {{{code}}}

                or open this link:

                {{{link}}}

                The code and the link work once, for {{{validFor}}}. If you did not create an account, ignore this message.

                """
        case .changed:
            return """
                {{{greeting}}}

                The password of your {{{tenantName}}} account was just changed, and every device signed in to it was signed out.

                If this was not you, reset your password at once and tell your administrator.

                """
        }
    }

    private static func html(_ kind: OutgoingMail.Kind) -> String {
        let body: String
        switch kind {
        case .reset:
            body = """
                <p>Someone asked to reset the password of your {{tenantName}} account. If it was you, enter this code:</p>
                <p style="font-size:28px;font-weight:700;letter-spacing:4px;margin:16px 0">{{code}}</p>
                <p><a href="{{link}}" style="display:inline-block;padding:12px 20px;border-radius:6px;background:{{accent}};color:#ffffff;text-decoration:none;font-weight:600">Choose a new password</a></p>
                <p style="color:#57606a">The code and the link work once, for {{validFor}}. If you did not ask, ignore this message: your password stays as it is.</p>
                """
        case .verify:
            body = """
                <p>Please confirm that this is your e-mail address for {{tenantName}}. Enter this code:</p>
                <p style="font-size:28px;font-weight:700;letter-spacing:4px;margin:16px 0">{{code}}</p>
                <p><a href="{{link}}" style="display:inline-block;padding:12px 20px;border-radius:6px;background:{{accent}};color:#ffffff;text-decoration:none;font-weight:600">Confirm my address</a></p>
                <p style="color:#57606a">The code and the link work once, for {{validFor}}. If you did not create an account, ignore this message.</p>
                """
        case .changed:
            body = """
                <p>The password of your {{tenantName}} account was just changed, and every device signed in to it was signed out.</p>
                <p style="color:#57606a">If this was not you, reset your password at once and tell your administrator.</p>
                """
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>{{tenantName}}</title></head>
            <body style="margin:0;padding:24px;background:#f3f4f6;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328">
            <div style="max-width:480px;margin:0 auto;background:#ffffff;border-radius:12px;padding:28px;border-top:6px solid {{accent}}">
            <p style="margin:0 0 16px;font-weight:600;color:#57606a">{{tenantName}}</p>
            <p>{{greeting}}</p>
            \(body)
            </div>
            </body></html>

            """
    }
}
