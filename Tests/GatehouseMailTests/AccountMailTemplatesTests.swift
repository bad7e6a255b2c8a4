import GatehouseMail
import Testing

/// The three messages of §11: the code on a line of its own, the link on another, the tenant's name and colour,
/// and every value escaped in the HTML part (a name is user input).
@Suite struct AccountMailTemplatesTests {
    let templates = AccountMailTemplates()
    let values = AccountMailTemplates.Values(
        tenantName: "Acme & Co", accentColor: "#aa3300", recipientName: "Ann <b>", code: "01234567",
        link: "http://acme.test/auth/password/reset?token=abc&x=1", validFor: "15 minutes")

    @Test(arguments: [OutgoingMail.Kind.reset, .verify]) func aCodeMessageHoldsTheCodeAndTheLinkOnLinesOfTheirOwn(_ kind: OutgoingMail.Kind) {
        let content = templates.render(kind, values)
        let lines = content.text.split(separator: "\n").map(String.init)
        #expect(lines.contains("01234567"))
        #expect(lines.contains("http://acme.test/auth/password/reset?token=abc&x=1"))
        #expect(lines.first == "Hello Ann <b>,")
        #expect(content.text.contains("for 15 minutes"))
        #expect(content.html.contains("Hello Ann &lt;b&gt;,") && !content.html.contains("<b>"))
        #expect(content.html.contains("href=\"http://acme.test/auth/password/reset?token=abc&amp;x=1\""))
        #expect(content.html.contains("background:#aa3300") && content.html.contains("Acme &amp; Co"))
    }

    @Test func theSubjectsNameTheTenant() {
        #expect(templates.render(.reset, values).subject == "Reset your Acme & Co password")
        #expect(templates.render(.verify, values).subject == "Confirm your e-mail address for Acme & Co")
        let changed = templates.render(.changed, values)
        #expect(changed.subject == "Your Acme & Co password was changed")
        #expect(!changed.text.contains("01234567") && changed.text.contains("signed out"))
    }

    @Test func withoutANameTheGreetingIsPlain() {
        var anonymous = values
        anonymous.recipientName = ""
        #expect(templates.render(.reset, anonymous).text.hasPrefix("Hello,\n"))
    }
}
