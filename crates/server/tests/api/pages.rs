//! The sign-in, registration, consent and account pages, as a browser sees them over HTTP. (The
//! real-browser run is in the `browser` module.)

use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    pages_send_protective_headers_and_cookies,
    login_errors_show_inline_and_keep_the_email,
    forms_without_the_csrf_token_are_refused,
    pending_authorization_survives_sign_in,
    register_page_creates_an_account_or_explains,
    broken_authorization_requests_never_redirect,
    next_cannot_leave_the_site,
    sign_out_ends_the_session,
    account_page_lists_and_revokes_authorized_apps,
    invitations_on_the_account_pages,
    access_tokens_page,
    apps_pages,
    authorized_apps_page,
    profile_page,
    changing_the_password_signs_out_other_sessions,
);

async fn pages_send_protective_headers_and_cookies(app: TestApp) {
    let browser = Browser::new(&app);
    for path in ["/authn/login", "/authn/register"] {
        let res = browser.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains("default-src 'none'"),
            "no inline script: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let body = res.text().await.unwrap();
        // The one script is the static file; nothing inline.
        let scripts: Vec<&str> = body.split("<script").skip(1).collect();
        assert!(
            scripts
                .iter()
                .all(|s| s.starts_with(" src=\"/assets/tessera.js\" defer></script>")),
            "only the static script on {path}: {scripts:?}"
        );
    }
    let res = browser.get("/authn/login").await;
    // The CSRF cookie was set on the first visit only.
    assert!(res.headers().get("set-cookie").is_none());
    let user = app.user("Cookie Checker").await;
    browser.get("/authn/login").await;
    let res = browser
        .post(
            "/authn/login",
            &[
                ("csrf", &browser.csrf()),
                ("email", &user.email),
                ("password", &user.password),
            ],
        )
        .await;
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-tessera-session="))
        .expect("a session cookie");
    for attr in [
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Max-Age=2592000",
    ] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    let css = app
        .client
        .get(format!("{}/assets/tessera.css", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

async fn login_errors_show_inline_and_keep_the_email(app: TestApp) {
    let user = app.user("Forgetful").await;
    let browser = Browser::new(&app);
    browser.get("/authn/login").await;
    let res = browser
        .post(
            "/authn/login",
            &[
                ("csrf", &browser.csrf()),
                ("email", &user.email),
                ("password", "not my password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("location").is_none());
    let body = res.text().await.unwrap();
    assert!(body.contains("Wrong email or password."), "{body}");
    assert!(
        body.contains(&format!("value=\"{}\"", user.email)),
        "the email is kept"
    );
    assert!(browser.cookie("__Host-tessera-session").is_none());
}

async fn forms_without_the_csrf_token_are_refused(app: TestApp) {
    let user = app.user("Csrf Target").await;
    let browser = Browser::new(&app);
    browser.get("/authn/login").await;
    for csrf in ["", "0123456789abcdef0123456789abcdef"] {
        let res = browser
            .post(
                "/authn/login",
                &[
                    ("csrf", csrf),
                    ("email", &user.email),
                    ("password", &user.password),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.text().await.unwrap().contains("This form has expired"));
    }
    assert!(
        browser.cookie("__Host-tessera-session").is_none(),
        "no session was created"
    );
    // A signed-in browser cannot be made to approve an app by a form from elsewhere.
    browser.sign_in(&user).await;
    let res = browser
        .post(
            "/authn/verify/sdui/somechallenge",
            &[("csrf", "forged"), ("decision", "allow")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get("location").is_none());
    let res = browser
        .post(
            "/authn/verify/sdui/somechallenge",
            &[("csrf", &browser.csrf()), ("decision", "maybe")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
}

async fn pending_authorization_survives_sign_in(app: TestApp) {
    let user = app.user("Returning").await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce_pair();
    let path = format!("/authn/verify/sdui/{challenge}&code_challenge_method=S256");
    let res = browser.get(&path).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to_login = location(res.headers());
    assert!(to_login.starts_with("/authn/login?next="), "{to_login}");
    let page = browser.get(&to_login).await.text().await.unwrap();
    assert!(
        page.contains("to continue to <strong>DUI</strong>"),
        "{page}"
    );
    let next = reqwest::Url::parse(&format!("{}{to_login}", app.url))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(next, path);
    let res = browser
        .post(
            "/authn/login",
            &[
                ("csrf", &browser.csrf()),
                ("email", &user.email),
                ("password", &user.password),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(res.headers()), path, "back to the consent page");
    let consent = browser.get(&path).await;
    assert_eq!(consent.status(), StatusCode::OK);
    let csp = consent.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://dui.speckle.systems"),
        "{csp}"
    );
    let html = consent.text().await.unwrap();
    for expected in [
        "DUI wants to access your account",
        "A first-party app of this server",
        "Read your streams, and any associated information",
        "streams:read",
        "https://dui.speckle.systems/authn/callback",
        "Returning",
        &user.email,
    ] {
        assert!(html.contains(expected), "{expected} on the consent page");
    }
}

async fn register_page_creates_an_account_or_explains(app: TestApp) {
    let existing = app.user("Existing").await;
    let browser = Browser::new(&app);
    browser.get("/authn/register").await;
    let res = browser
        .post(
            "/authn/register",
            &[
                ("csrf", &browser.csrf()),
                ("name", "Twin"),
                ("email", &existing.email),
                ("password", "password123"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body = res.text().await.unwrap();
    assert!(body.contains("Email taken. Try logging in?"));
    assert!(body.contains("value=\"Twin\""), "the name is kept");
    let res = browser
        .post(
            "/authn/register",
            &[
                ("csrf", &browser.csrf()),
                ("name", "Newcomer"),
                ("email", "newcomer@example.org"),
                ("password", "short"),
            ],
        )
        .await;
    assert!(res.text().await.unwrap().contains("Password too short"));
    let res = browser
        .post(
            "/authn/register",
            &[
                ("csrf", &browser.csrf()),
                ("name", "Newcomer"),
                ("email", "newcomer@example.org"),
                ("password", "long enough password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let home = browser.get("/").await.text().await.unwrap();
    assert!(home.contains("Newcomer") && home.contains("newcomer@example.org"));
}

async fn broken_authorization_requests_never_redirect(app: TestApp) {
    let user = app.user("Careful Browser").await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let cases = [
        (
            "/authn/verify/nosuchapp/abc".to_owned(),
            StatusCode::NOT_FOUND,
            "Unknown app",
        ),
        (
            "/authn/verify/sdui/tooshort&code_challenge_method=S256".to_owned(),
            StatusCode::BAD_REQUEST,
            "43 characters",
        ),
        (
            "/authn/verify/sdui/abc?code_challenge_method=S512".to_owned(),
            StatusCode::BAD_REQUEST,
            "Unsupported",
        ),
        (
            format!("/authn/verify/sdui/{}", "a".repeat(300)),
            StatusCode::BAD_REQUEST,
            "too long",
        ),
        (
            "/authn/verify/sdui/a%3Cb".to_owned(),
            StatusCode::BAD_REQUEST,
            "may only contain",
        ),
    ];
    for (path, status, message) in cases {
        // Signed in or not, the answer is an error page.
        for b in [&browser, &Browser::new(&app)] {
            let res = b.get(&path).await;
            assert_eq!(res.status(), status, "{path}");
            assert!(
                res.headers().get("location").is_none(),
                "{path} must not redirect"
            );
            assert!(res.text().await.unwrap().contains(message), "{path}");
        }
    }
}

async fn next_cannot_leave_the_site(app: TestApp) {
    let user = app.user("Phished").await;
    for next in [
        "//evil.example/steal",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let browser = Browser::new(&app);
        browser.get("/authn/login").await;
        let res = browser
            .post(
                "/authn/login",
                &[
                    ("csrf", &browser.csrf()),
                    ("email", &user.email),
                    ("password", &user.password),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(location(res.headers()), "/", "{next}");
    }
}

async fn sign_out_ends_the_session(app: TestApp) {
    let user = app.user("Leaving").await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let session_token = browser.cookie("__Host-tessera-session").unwrap();
    assert_eq!(app.whoami(&session_token).await.0, StatusCode::OK);
    let res = browser
        .post("/authn/logout", &[("csrf", &browser.csrf())])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        browser.cookie("__Host-tessera-session").is_none(),
        "the cookie is cleared"
    );
    assert_eq!(
        app.whoami(&session_token).await.0,
        StatusCode::FORBIDDEN,
        "and the token revoked"
    );
    let res = browser.get("/").await;
    assert_eq!(location(res.headers()), "/authn/login");
    // A stale session cookie is just "signed out", not an error.
    browser.set_cookie("__Host-tessera-session", &session_token);
    assert_eq!(browser.get("/authn/login").await.status(), StatusCode::OK);
}

async fn account_page_lists_and_revokes_authorized_apps(app: TestApp) {
    let user = app.user("Account Owner").await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let (id, secret) = app
        .register_app(
            &user.token,
            "http://127.0.0.1:5173/callback",
            &["profile:read"],
        )
        .await;
    let code = access_code(
        &browser
            .authorize(&format!("/authn/verify/{id}/homechallenge"))
            .await,
    );
    let (_, pair) = app
        .token_endpoint(json!({"appId": id, "appSecret": secret, "accessCode": code, "challenge": "homechallenge"}))
        .await;
    let home = browser.get("/").await.text().await.unwrap();
    assert!(home.contains("Test App"), "{home}");
    assert!(home.contains(&format!("/authn/apps/{id}/revoke")));
    let res = browser
        .post(
            &format!("/authn/apps/{id}/revoke"),
            &[("csrf", &browser.csrf())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.whoami(pair["token"].as_str().unwrap()).await.0,
        StatusCode::FORBIDDEN
    );
    let home = browser.get("/").await.text().await.unwrap();
    assert!(!home.contains("Test App"));
    assert!(home.contains("No app has access to your account yet."));
}

/// The invitee declines on the account page (CSRF-checked); the inviter's page shows the link
/// to pass on, and someone without an account registers through it, verified, with the
/// invitation waiting.
async fn invitations_on_the_account_pages(app: TestApp) {
    let owner = app.user("Page Owner").await;
    let friend = app.user("Page Friend").await;
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation { projectMutations { create(input: {name: \"Tower\"}) { id } } }",
            json!({}),
        )
        .await;
    let project = body["data"]["projectMutations"]["create"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = "mutation($p: ID!, $i: ProjectInviteCreateInput!) { projectMutations { invites { create(projectId: $p, input: $i) { id } } } }";
    app.graphql(
        Some(&owner.token),
        create,
        json!({"p": project, "i": {"userId": friend.id}}),
    )
    .await;
    app.graphql(
        Some(&owner.token),
        create,
        json!({"p": project, "i": {"email": "new.person@example.org", "role": "stream:reviewer"}}),
    )
    .await;
    // The invitee's page offers the invitation.
    let browser = Browser::new(&app);
    browser.sign_in(&friend).await;
    let page = browser.get("/").await.text().await.unwrap();
    assert!(
        page.contains("Tower") && page.contains("Page Owner invited you"),
        "{page}"
    );
    let token = page
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the invitation's token in the form")
        .to_owned();
    let action = format!("/authn/invites/{project}/decline");
    // Without the session's CSRF token, nothing happens.
    let res = browser
        .post(&action, &[("csrf", "forged"), ("token", &token)])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let csrf = browser.csrf();
    let res = browser
        .post(&action, &[("csrf", &csrf), ("token", &token)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = browser.get("/").await.text().await.unwrap();
    assert!(!page.contains("invited you"), "declined: {page}");
    assert!(page.contains("You do not collaborate on any project yet."));
    // The inviter's page shows the registration link for the email without an account.
    let inviter = Browser::new(&app);
    inviter.sign_in(&owner).await;
    let page = inviter.get("/").await.text().await.unwrap();
    assert!(page.contains("Invitations you sent"), "{page}");
    let link = page
        .split("value=\"")
        .find_map(|rest| {
            let value = rest.split('"').next()?;
            value
                .contains("/authn/register?token=")
                .then(|| value.to_owned())
        })
        .expect("the registration link");
    let path = link.trim_start_matches(&app.url).replace("&amp;", "&");
    // The newcomer follows it: the form carries the token, the account is verified and the
    // invitation waits on their page.
    let newcomer = Browser::new(&app);
    let form = newcomer.get(&path).await.text().await.unwrap();
    let invite_token = path.split("token=").nth(1).unwrap().to_owned();
    assert!(form.contains(&invite_token), "the token rides in the form");
    let csrf = newcomer.csrf();
    let res = newcomer
        .post(
            "/authn/register",
            &[
                ("csrf", &csrf),
                ("next", "/"),
                ("token", &invite_token),
                ("name", "New Person"),
                ("email", "new.person@example.org"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    newcomer.get(&location(res.headers())).await;
    let page = newcomer.get("/").await.text().await.unwrap();
    assert!(
        page.contains("Tower") && page.contains("as reviewer"),
        "{page}"
    );
}

/// The value of the read-only field that shows a new token, if the page has one.
fn shown_token(page: &str) -> Option<String> {
    let rest = page.split("id=\"new-token\"").nth(1)?;
    let value = rest.split("value=\"").nth(1)?;
    value.split('"').next().map(str::to_owned)
}

/// Settings → Developer → Access Tokens: create (shown once), list, regenerate, revoke; every
/// form checks the session's CSRF token; nobody else's token can be touched.
async fn access_tokens_page(app: TestApp) {
    let user = app.user("Page Tokens").await;
    let other = app.user("Other Tokens").await;
    let theirs = app.pat(&other.token, &["profile:read"]).await;
    let browser = Browser::new(&app);
    // Not signed in: to the sign-in page, coming back here.
    let res = browser.get("/settings/tokens").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(res.headers()).starts_with("/authn/login"));
    browser.sign_in(&user).await;
    for (path, to) in [
        ("/profile", "/settings/profile"),
        ("/settings", "/settings/tokens"),
    ] {
        let res = browser.get(path).await;
        assert_eq!(location(res.headers()), to, "{path}");
    }
    let page = browser.get("/settings/tokens").await.text().await.unwrap();
    assert!(page.contains("You have no access tokens yet."), "{page}");
    assert!(page.contains("name=\"scope:streams:read\""));
    assert!(
        !page.contains("name=\"scope:tokens:write\""),
        "a token cannot mint tokens"
    );
    assert!(
        !page.contains("checked"),
        "least privilege: nothing is pre-ticked"
    );
    let csrf = browser.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "CI script"),
        ("scope:profile:read", "on"),
        ("scope:streams:read", "on"),
        ("expiry", "7"),
    ];
    let res = browser.post("/settings/tokens", &form).await;
    // Post, then redirect: a reload of the page that follows creates nothing more.
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(res.headers()), "/settings/tokens");
    let page = browser.get("/settings/tokens").await.text().await.unwrap();
    assert!(page.contains("you won't see it again"), "{page}");
    let token = shown_token(&page).expect("the new token, shown once");
    assert_eq!(token.len(), 42);
    assert_eq!(app.whoami(&token).await.0, StatusCode::OK, "it works");
    let page = browser.get("/settings/tokens").await.text().await.unwrap();
    assert!(shown_token(&page).is_none(), "not shown again");
    assert!(!page.contains(&token));
    assert!(page.contains("CI script") && page.contains(&format!("…{}", &token[36..])));
    assert!(page.contains("never used"));
    assert!(
        page.contains("class=\"warn\""),
        "a week's expiry is highlighted"
    );
    // A token planted in the cookie is shown only if it is one of this person's.
    browser.set_cookie("__Host-tessera-new-token", &theirs);
    let page = browser.get("/settings/tokens").await.text().await.unwrap();
    assert!(shown_token(&page).is_none() && !page.contains(&theirs));
    // Forms without the session's CSRF token do nothing.
    let id = &token[..10];
    let res = browser
        .post(
            &format!("/settings/tokens/{id}/revoke"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.whoami(&token).await.0, StatusCode::OK);
    // Someone else's token cannot be revoked or regenerated from here.
    let csrf = browser.csrf();
    for action in ["revoke", "regenerate"] {
        let res = browser
            .post(
                &format!("/settings/tokens/{}/{action}", &theirs[..10]),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{action}");
    }
    assert_eq!(
        app.whoami(&theirs).await.0,
        StatusCode::OK,
        "theirs still works"
    );
    // A rule of creation is explained above the form, keeping the name.
    let res = browser
        .post(
            "/settings/tokens",
            &[("csrf", &csrf), ("name", "No scopes"), ("expiry", "30")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("role=\"alert\"") && page.contains("value=\"No scopes\""),
        "{page}"
    );
    // Regenerate: a new secret, the old one refused.
    let res = browser
        .post(
            &format!("/settings/tokens/{id}/regenerate"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = browser.get("/settings/tokens").await.text().await.unwrap();
    let fresh = shown_token(&page).expect("the regenerated token");
    let page = browser.get("/settings/tokens").await.text().await.unwrap();
    assert!(shown_token(&page).is_none(), "shown once");
    assert_eq!(app.whoami(&token).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.whoami(&fresh).await.0, StatusCode::OK);
    // Revoke.
    let res = browser
        .post(
            &format!("/settings/tokens/{}/revoke", &fresh[..10]),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.whoami(&fresh).await.0, StatusCode::FORBIDDEN);
    let page = browser.get("/settings/tokens").await.text().await.unwrap();
    assert!(page.contains("You have no access tokens yet."), "{page}");
}

/// A form as borrowed pairs.
fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The value of an input, found by its id.
fn input_value(page: &str, id: &str) -> Option<String> {
    let rest = page.split(&format!("id=\"{id}\"")).nth(1)?;
    let value = rest.split("value=\"").nth(1)?;
    value.split('"').next().map(str::to_owned)
}

/// Settings → Developer → Apps: register, see the ID and secret, regenerate the secret, edit,
/// delete; only the author reaches an app's page; every form checks the CSRF token.
async fn apps_pages(app: TestApp) {
    let author = app.user("App Author").await;
    let other = app.user("App Outsider").await;
    let browser = Browser::new(&app);
    browser.sign_in(&author).await;
    let page = browser.get("/settings/apps").await.text().await.unwrap();
    assert!(
        page.contains("You have not registered an app yet."),
        "{page}"
    );
    assert!(!page.contains(" checked"), "no scope is pre-ticked");
    let csrf = browser.csrf();
    let fields = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("name".to_owned(), "Viewer".to_owned()),
            (
                "redirectUrl".to_owned(),
                "https://viewer.example.com/cb".to_owned(),
            ),
            ("scope:streams:read".to_owned(), "on".to_owned()),
            ("scope:profile:read".to_owned(), "on".to_owned()),
        ]
    };
    let forged = fields("forged");
    let res = browser.post("/settings/apps", &as_refs(&forged)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // No scopes: explained above the form, keeping what was typed.
    let res = browser
        .post(
            "/settings/apps",
            &[
                ("csrf", &csrf),
                ("name", "Viewer"),
                ("redirectUrl", "https://viewer.example.com/cb"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Cannot create an app with no scopes."),
        "{page}"
    );
    assert!(page.contains("value=\"Viewer\""));
    let good = fields(&csrf);
    let res = browser.post("/settings/apps", &as_refs(&good)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let path = location(res.headers());
    assert!(path.starts_with("/settings/apps/"), "{path}");
    let page = browser.get(&path).await.text().await.unwrap();
    let app_id = path.trim_start_matches("/settings/apps/").to_owned();
    assert!(page.contains(&app_id) && page.contains("Reveal"), "{page}");
    let secret = input_value(&page, "app-secret").expect("the secret");
    assert_eq!(secret.len(), 32);
    assert!(
        page.contains("checked"),
        "the app's scopes are ticked in the edit form"
    );
    // Regenerate the secret.
    let csrf = browser.csrf();
    let res = browser
        .post(&format!("{path}/secret"), &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = browser.get(&path).await.text().await.unwrap();
    let fresh = input_value(&page, "app-secret").unwrap();
    assert_ne!(fresh, secret, "a new secret");
    // Edit.
    let csrf = browser.csrf();
    let mut edit = fields(&csrf);
    edit[1].1 = "Viewer Pro".to_owned();
    let res = browser.post(&path, &as_refs(&edit)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = browser.get("/settings/apps").await.text().await.unwrap();
    assert!(page.contains("Viewer Pro"), "{page}");
    // Someone else cannot see or change it.
    let outsider = Browser::new(&app);
    outsider.sign_in(&other).await;
    let res = outsider.get(&path).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let csrf_other = outsider.csrf();
    let res = outsider
        .post(&format!("{path}/delete"), &[("csrf", &csrf_other)])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Delete.
    let csrf = browser.csrf();
    let res = browser
        .post(&format!("{path}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = browser.get("/settings/apps").await.text().await.unwrap();
    assert!(
        page.contains("You have not registered an app yet."),
        "{page}"
    );
    let (_, body) = app
        .graphql(
            Some(&author.token),
            "query($id: String!) { app(id: $id) { id } }",
            json!({"id": app_id}),
        )
        .await;
    assert!(body["data"]["app"].is_null(), "{body}");
}

/// Settings → Developer → Authorized Apps: the app, its author, what it can do, since when;
/// Revoke access signs it out and comes back to the page.
async fn authorized_apps_page(app: TestApp) {
    let developer = app.user("Dev Eloper").await;
    let user = app.user("Grant Giver").await;
    let stranger = app.user("Grant Stranger").await;
    let (id, secret) = app
        .register_app(
            &developer.token,
            "http://127.0.0.1:5173/callback",
            &["profile:read", "streams:read"],
        )
        .await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let page = browser
        .get("/settings/authorized-apps")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("No app has access to your account yet."),
        "{page}"
    );
    let code = access_code(
        &browser
            .authorize(&format!("/authn/verify/{id}/grantchallenge"))
            .await,
    );
    let (_, pair) = app
        .token_endpoint(json!({"appId": id, "appSecret": secret, "accessCode": code, "challenge": "grantchallenge"}))
        .await;
    let token = pair["token"].as_str().unwrap().to_owned();
    let page = browser
        .get("/settings/authorized-apps")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Test App") && page.contains("Registered by Dev Eloper"),
        "{page}"
    );
    assert!(page.contains("streams:read") && page.contains("profile:read"));
    assert!(
        !page.contains("Speckle Web App") && !page.contains("spklwebapp"),
        "not the web app"
    );
    // Nobody else sees it.
    let other = Browser::new(&app);
    other.sign_in(&stranger).await;
    let theirs = other
        .get("/settings/authorized-apps")
        .await
        .text()
        .await
        .unwrap();
    assert!(!theirs.contains("Test App"));
    // Forged CSRF does nothing; a real revoke signs the app out and returns here.
    let action = format!("/authn/apps/{id}/revoke");
    let res = browser
        .post(
            &action,
            &[("csrf", "forged"), ("next", "/settings/authorized-apps")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.whoami(&token).await.0, StatusCode::OK);
    let csrf = browser.csrf();
    let res = browser
        .post(
            &action,
            &[("csrf", &csrf), ("next", "/settings/authorized-apps")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(res.headers()), "/settings/authorized-apps");
    assert_eq!(app.whoami(&token).await.0, StatusCode::FORBIDDEN);
    let page = browser
        .get("/settings/authorized-apps")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("No app has access to your account yet."),
        "{page}"
    );
}

/// Settings → Profile: edit what others see; bad input explained, keeping what was typed.
async fn profile_page(app: TestApp) {
    let user = app.user("Pat Profile").await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let page = browser.get("/settings/profile").await.text().await.unwrap();
    assert!(
        page.contains("value=\"Pat Profile\"") && page.contains(&user.email),
        "{page}"
    );
    let res = browser
        .post(
            "/settings/profile",
            &[("csrf", "forged"), ("name", "Someone Else")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let csrf = browser.csrf();
    let res = browser
        .post(
            "/settings/profile",
            &[("csrf", &csrf), ("name", ""), ("company", "Kept")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("User name cannot be empty") && page.contains("value=\"Kept\""),
        "{page}"
    );
    let res = browser
        .post(
            "/settings/profile",
            &[("csrf", &csrf), ("name", "Pat \u{202e}Evil")],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "hidden characters refused"
    );
    let res = browser
        .post(
            "/settings/profile",
            &[
                ("csrf", &csrf),
                ("name", "Pat Renamed"),
                ("company", "ACME"),
                ("bio", "Builds bridges"),
                ("avatar", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = browser
        .get(&location(res.headers()))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Saved.") && page.contains("value=\"Pat Renamed\""),
        "{page}"
    );
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { name company bio } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["activeUser"],
        json!({"name": "Pat Renamed", "company": "ACME", "bio": "Builds bridges"})
    );
}

/// Changing the password needs the current one, follows the password rules, and signs out
/// every other browser (this one stays); the new password then signs in, the old one does not.
async fn changing_the_password_signs_out_other_sessions(app: TestApp) {
    let user = app.user("Pass Changer").await;
    let here = Browser::new(&app);
    here.sign_in(&user).await;
    let elsewhere = Browser::new(&app);
    elsewhere.sign_in(&user).await;
    here.get("/settings/profile").await;
    let csrf = here.csrf();
    let res = here
        .post(
            "/settings/password",
            &[
                ("csrf", "forged"),
                ("current", &user.password),
                ("password", "brand new secret"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = here
        .post(
            "/settings/password",
            &[
                ("csrf", &csrf),
                ("current", "not my password"),
                ("password", "brand new secret"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("The current password is not right.")
    );
    let res = here
        .post(
            "/settings/password",
            &[
                ("csrf", &csrf),
                ("current", &user.password),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("Password too short"));
    assert_eq!(
        elsewhere.get("/settings/profile").await.status(),
        StatusCode::OK,
        "nothing changed yet"
    );
    let res = here
        .post(
            "/settings/password",
            &[
                ("csrf", &csrf),
                ("current", &user.password),
                ("password", "brand new secret"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = here
        .get(&location(res.headers()))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Password changed."),
        "this session stays: {page}"
    );
    let res = elsewhere.get("/settings/profile").await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the other browser is signed out"
    );
    assert!(location(res.headers()).starts_with("/authn/login"));
    let login = |password: &'static str| {
        let app = &app;
        let email = user.email.clone();
        async move {
            app.post_form(
                "/auth/local/login?challenge=abc",
                &[("email", email.as_str()), ("password", password)],
            )
            .await
            .status()
        }
    };
    assert_eq!(login("brand new secret").await, StatusCode::FOUND);
    assert_eq!(
        login("correct horse battery").await,
        StatusCode::UNAUTHORIZED
    );
}
