/// The Mustache sources of the login, signup and sign-out pages. `{{name}}` is HTML-escaped by the engine; the one
/// unescaped value, `{{{style}}}`, is the page's own style sheet (its only variable is the validated accent colour).
enum PageTemplates {
    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="strict-origin">
        <title>{{title}} · {{tenantName}}</title>
        <style>{{{style}}}</style>
        </head>
        <body>
        <main class="card" aria-labelledby="page-title">
          <header>
            {{#hasLogo}}<img class="logo" src="{{logoURL}}" alt="{{tenantName}}">{{/hasLogo}}
            {{^hasLogo}}<p class="tenant">{{tenantName}}</p>{{/hasLogo}}
            <h1 id="page-title">{{title}}</h1>
          </header>
          {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
          {{#formError}}<p class="form-error" role="alert" id="form-error">{{formError}}</p>{{/formError}}
          {{$content}}{{/content}}
        </main>
        </body>
        </html>

        """

    static let login = """
        {{<layout}}
        {{$content}}
          <form method="post" action="/auth/login"{{#formError}} aria-describedby="form-error"{{/formError}}>
            <input type="hidden" name="csrf_token" value="{{csrfToken}}">
            <input type="hidden" name="rd" value="{{rd}}">
            <div class="field">
              <label for="email">Email</label>
              <input id="email" name="email" type="email" inputmode="email" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="254" value="{{email}}"{{#emailError}} aria-invalid="true" aria-describedby="email-error"{{/emailError}}{{^email}} autofocus{{/email}}>
              {{#emailError}}<p class="field-error" id="email-error">{{emailError}}</p>{{/emailError}}
            </div>
            <div class="field">
              <label for="password">Password</label>
              <input id="password" name="password" type="password" autocomplete="current-password" required{{#email}} autofocus{{/email}}>
            </div>
            <button type="submit">Sign in</button>
          </form>
          {{#showResend}}
          <form method="post" action="/auth/verify-email/resend" class="secondary">
            <input type="hidden" name="csrf_token" value="{{csrfToken}}">
            <input type="hidden" name="email" value="{{email}}">
            <button type="submit">Send the confirmation e-mail again</button>
          </form>
          {{/showResend}}
          {{#resetEnabled}}<p class="alt"><a href="/auth/password/forgot">Forgot password?</a></p>{{/resetEnabled}}
          {{#signupEnabled}}<p class="alt">New here? <a href="{{signupHref}}">Create an account</a></p>{{/signupEnabled}}
        {{/content}}
        {{/layout}}
        """

    static let signup = """
        {{<layout}}
        {{$content}}
          {{#signupEnabled}}
          <form method="post" action="/auth/signup"{{#formError}} aria-describedby="form-error"{{/formError}}>
            <input type="hidden" name="csrf_token" value="{{csrfToken}}">
            <input type="hidden" name="rd" value="{{rd}}">
            <div class="field">
              <label for="name">Name</label>
              <input id="name" name="name" type="text" autocomplete="name" maxlength="200" value="{{name}}" autofocus>
            </div>
            <div class="field">
              <label for="email">Email</label>
              <input id="email" name="email" type="email" inputmode="email" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="254" value="{{email}}"{{#emailError}} aria-invalid="true" aria-describedby="email-error"{{/emailError}}>
              {{#emailError}}<p class="field-error" id="email-error">{{emailError}}</p>{{/emailError}}
            </div>
            <div class="field">
              <label for="password">Password</label>
              <input id="password" name="password" type="password" autocomplete="new-password" required minlength="{{minimumPasswordLength}}" aria-describedby="password-hint{{#passwordError}} password-error{{/passwordError}}"{{#passwordError}} aria-invalid="true"{{/passwordError}}>
              <p class="hint" id="password-hint">At least {{minimumPasswordLength}} characters.</p>
              {{#passwordError}}<p class="field-error" id="password-error">{{passwordError}}</p>{{/passwordError}}
            </div>
            <button type="submit">Create account</button>
          </form>
          {{/signupEnabled}}
          <p class="alt">Already have an account? <a href="{{loginHref}}">Sign in</a></p>
        {{/content}}
        {{/layout}}
        """

    static let signOut = """
        {{<layout}}
        {{$content}}
          {{#signedInAs}}
          <p class="who">Signed in as <strong>{{signedInAs}}</strong>.</p>
          <form method="post" action="/auth/logout">
            <input type="hidden" name="csrf_token" value="{{csrfToken}}">
            <button type="submit">Sign out</button>
          </form>
          {{/signedInAs}}
          {{^signedInAs}}<p class="alt"><a href="{{loginHref}}">Sign in</a></p>{{/signedInAs}}
        {{/content}}
        {{/layout}}
        """

    static let forgotPassword = """
        {{<layout}}
        {{$content}}
          <p class="hint intro">Enter the address of your account. If it has one, we send it a code and a link to choose a new password.</p>
          <form method="post" action="/auth/password/forgot"{{#formError}} aria-describedby="form-error"{{/formError}}>
            <input type="hidden" name="csrf_token" value="{{csrfToken}}">
            <div class="field">
              <label for="email">Email</label>
              <input id="email" name="email" type="email" inputmode="email" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="254" value="{{email}}"{{#emailError}} aria-invalid="true" aria-describedby="email-error"{{/emailError}} autofocus>
              {{#emailError}}<p class="field-error" id="email-error">{{emailError}}</p>{{/emailError}}
            </div>
            <button type="submit">Send reset link</button>
          </form>
          <p class="alt"><a href="/auth/login">Back to sign in</a></p>
        {{/content}}
        {{/layout}}
        """

    static let resetPassword = """
        {{<layout}}
        {{$content}}
          {{#token}}
          <form method="post" action="/auth/password/reset"{{#formError}} aria-describedby="form-error"{{/formError}}>
            <input type="hidden" name="csrf_token" value="{{csrfToken}}">
            <input type="hidden" name="token" value="{{token}}">
            <div class="field">
              <label for="password">New password</label>
              <input id="password" name="password" type="password" autocomplete="new-password" required minlength="{{minimumPasswordLength}}" aria-describedby="password-hint{{#passwordError}} password-error{{/passwordError}}"{{#passwordError}} aria-invalid="true"{{/passwordError}} autofocus>
              <p class="hint" id="password-hint">At least {{minimumPasswordLength}} characters.</p>
              {{#passwordError}}<p class="field-error" id="password-error">{{passwordError}}</p>{{/passwordError}}
            </div>
            <button type="submit">Change password</button>
          </form>
          {{/token}}
          {{^token}}<p class="alt"><a href="/auth/password/forgot">Ask for a new link</a></p>{{/token}}
          <p class="alt"><a href="/auth/login">Back to sign in</a></p>
        {{/content}}
        {{/layout}}
        """

    /// The verification link's page: a button that confirms (a POST with the CSRF token), so a mail scanner that
    /// follows every link verifies nothing.
    static let confirmEmail = """
        {{<layout}}
        {{$content}}
          {{#token}}
          <form method="post" action="/auth/verify-email">
            <input type="hidden" name="csrf_token" value="{{csrfToken}}">
            <input type="hidden" name="token" value="{{token}}">
            <button type="submit">Confirm my address</button>
          </form>
          {{/token}}
          <p class="alt"><a href="/auth/login">Go to sign in</a></p>
        {{/content}}
        {{/layout}}
        """

    /// "Check your e-mail", "address confirmed", "link no longer works": a notice or an error, and the way back.
    static let message = """
        {{<layout}}
        {{$content}}
          <p class="alt"><a href="/auth/login">Go to sign in</a></p>
        {{/content}}
        {{/layout}}
        """

    /// The style sheet; hashed into the page's Content-Security-Policy, so no other style can apply.
    static let style = """
        :root{--accent:{{accent}}}\
        *{box-sizing:border-box}\
        body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;padding:16px;background:#f3f4f6;\
        font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328}\
        .card{width:100%;max-width:400px;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.15);padding:32px 28px}\
        header{text-align:center;margin-bottom:24px}\
        .logo{display:block;margin:0 auto 8px;max-height:56px;max-width:200px}\
        .tenant{margin:0;font-weight:600;color:#57606a}\
        h1{margin:4px 0 0;font-size:1.5rem}\
        .field{margin-bottom:16px}\
        label{display:block;font-weight:600;margin-bottom:4px}\
        input{width:100%;padding:10px 12px;font:inherit;border:1px solid #6e7781;border-radius:6px}\
        input:focus{outline:3px solid var(--accent);outline-offset:1px}\
        input[aria-invalid=true]{border-color:#b3261e}\
        .hint{margin:4px 0 0;font-size:.875rem;color:#57606a}\
        .field-error{margin:4px 0 0;font-size:.875rem;color:#b3261e}\
        .form-error{margin:0 0 16px;padding:10px 12px;border-radius:6px;background:#fdecea;color:#8c1d18}\
        .notice{margin:0 0 16px;padding:10px 12px;border-radius:6px;background:#e6f4ea;color:#1e4620}\
        button{width:100%;padding:12px;font:inherit;font-weight:600;color:#fff;background:var(--accent);border:0;border-radius:6px;cursor:pointer}\
        button:focus-visible{outline:3px solid #1f2328;outline-offset:2px}\
        .alt{text-align:center;margin:20px 0 0}\
        .secondary{margin-top:12px}\
        .intro{margin:0 0 16px}\
        .secondary button{color:var(--accent);background:#fff;border:2px solid var(--accent)}\
        a{color:var(--accent)}
        """
}
