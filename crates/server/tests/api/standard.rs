//! The standard endpoints beside Speckle's flows: RFC 7662 introspection driven by a standard
//! client library (the `oauth2` crate), and RFC 7009 revocation in the RFC's own request form
//! (the `oauth2` crate refuses to revoke over plain http, which the test server speaks).

use oauth2::basic::BasicClient;
use oauth2::{AccessToken, ClientId, ClientSecret, IntrospectionUrl, TokenIntrospectionResponse};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    a_client_revokes_its_tokens_with_a_standard_library,
    introspection_says_what_a_token_is_and_stops_after_revocation,
    introspection_and_revocation_refuse_what_they_must,
);

/// A signed-in person's app tokens for `app_id` through the PKCE flow: (token, refresh token).
async fn app_pair(app: &TestApp, browser: &Browser<'_>, app_id: &str) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let location = browser
        .authorize(&format!(
            "/authn/verify/{app_id}/{challenge}&code_challenge_method=S256"
        ))
        .await;
    let (status, body) = app
        .oauth_token(json!({"appId": app_id, "accessCode": access_code(&location), "codeVerifier": verifier}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["refreshToken"].as_str().unwrap().to_owned(),
    )
}

/// `POST /oauth/revoke` as RFC 7009 §2.1 has it: the token and its hint in a form, the client
/// by HTTP Basic when it has a secret to show, else by `client_id`.
async fn revoke(
    app: &TestApp,
    client_id: &str,
    secret: Option<&str>,
    token: &str,
    hint: &str,
) -> StatusCode {
    let mut form = vec![("token", token), ("token_type_hint", hint)];
    let mut req = app.client.post(format!("{}/oauth/revoke", app.url));
    match secret {
        Some(secret) => req = req.basic_auth(client_id, Some(secret)),
        None => form.push(("client_id", client_id)),
    }
    let res = req.form(&form).send().await.unwrap();
    let status = res.status();
    assert!(res.text().await.unwrap().is_empty(), "an empty body");
    status
}

fn http() -> oauth2::reqwest::Client {
    oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn setup(app: &TestApp) -> (User, String, String, Browser<'_>) {
    let user = app.user("Standard Person").await;
    let (id, secret) = app
        .register_app(
            &user.token,
            "http://127.0.0.1:5173/callback",
            &["profile:read", "streams:read"],
        )
        .await;
    let browser = Browser::new(app);
    browser.sign_in(&user).await;
    (user, id, secret, browser)
}

async fn a_client_revokes_its_tokens_with_a_standard_library(app: TestApp) {
    let (_user, id, secret, browser) = setup(&app).await;
    // A public client (no secret) revokes an access token: only that token ends.
    let (token, refresh) = app_pair(&app, &browser, &id).await;
    let status = revoke(&app, &id, None, &token, "access_token").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.whoami(&token).await.0, StatusCode::FORBIDDEN);
    let (status, body) = app
        .oauth_token(json!({"appId": id, "refreshToken": refresh}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the refresh token still works: {body}"
    );

    // A confidential client (HTTP Basic) revokes a refresh token: its whole chain ends. (A
    // wrong hint is only a hint.)
    let (token, refresh) = app_pair(&app, &browser, &id).await;
    let status = revoke(&app, &id, Some(&secret), &refresh, "access_token").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.whoami(&token).await.0,
        StatusCode::FORBIDDEN,
        "the chain's token"
    );
    let (status, _) = app
        .oauth_token(json!({"appId": id, "refreshToken": refresh}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Unknown, already revoked and malformed tokens answer 200 too (RFC 7009 §2.2).
    for value in [token.as_str(), "nonsense", &"0".repeat(42)] {
        let status = revoke(&app, &id, None, value, "access_token").await;
        assert_eq!(status, StatusCode::OK, "200 for a dead token");
    }
}

async fn introspection_says_what_a_token_is_and_stops_after_revocation(app: TestApp) {
    let (user, id, secret, browser) = setup(&app).await;
    let client = BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret.clone()))
        .set_introspection_url(
            IntrospectionUrl::new(format!("{}/oauth/introspect", app.url)).unwrap(),
        );
    let (token, refresh) = app_pair(&app, &browser, &id).await;
    let about = client
        .introspect(&AccessToken::new(token.clone()))
        .request_async(&http())
        .await
        .expect("introspection");
    assert!(about.active());
    assert_eq!(about.client_id().map(|c| c.as_str()), Some(id.as_str()));
    assert_eq!(about.sub(), Some(user.id.as_str()));
    assert_eq!(about.token_type().map(|t| t.as_ref()), Some("bearer"));
    let mut scopes: Vec<String> = about
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["profile:read", "streams:read"]);
    assert!(about.exp().unwrap() > about.iat().unwrap());
    assert_eq!(about.iss(), Some(app.url.as_str()));

    // The refresh token too.
    let about = client
        .introspect(&AccessToken::new(refresh.clone()))
        .set_token_type_hint("refresh_token")
        .request_async(&http())
        .await
        .unwrap();
    assert!(about.active());

    // Revoked: inactive, and nothing else said.
    let status = revoke(&app, &id, Some(&secret), &token, "access_token").await;
    assert_eq!(status, StatusCode::OK);
    let about = client
        .introspect(&AccessToken::new(token.clone()))
        .request_async(&http())
        .await
        .unwrap();
    assert!(!about.active());
    assert_eq!(about.sub(), None);

    // Another app's tokens are inactive to this client; a personal access token too.
    let (other_id, other_secret) = app
        .register_app(&user.token, "http://127.0.0.1:5174/cb", &["profile:read"])
        .await;
    let (theirs, _) = app_pair(&app, &browser, &other_id).await;
    let pat = app.pat(&user.token, &["profile:read"]).await;
    for value in [&theirs, &pat] {
        let about = client
            .introspect(&AccessToken::new(value.clone()))
            .request_async(&http())
            .await
            .unwrap();
        assert!(!about.active(), "not this client's token");
    }
    let _ = other_secret;

    // A server admin's token with tokens:introspect may ask about any token (a resource
    // server's key); the first user of the server is its admin.
    let key = app.pat(&user.token, &["tokens:introspect"]).await;
    let res = app
        .client
        .post(format!("{}/oauth/introspect", app.url))
        .bearer_auth(&key)
        .form(&[("token", pat.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(
        body["client_id"],
        Value::Null,
        "a personal access token has no client"
    );
    assert_eq!(body["sub"], user.id.as_str());
}

async fn introspection_and_revocation_refuse_what_they_must(app: TestApp) {
    let (user, id, secret, browser) = setup(&app).await;
    let (token, _) = app_pair(&app, &browser, &id).await;
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(format!("{}{path}", app.url))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    // Introspection needs the secret: a public client learns nothing.
    let (status, body) = post(
        "/oauth/introspect",
        vec![("client_id", id.clone()), ("token", token.clone())],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    // A wrong secret, an unknown client, a missing token, a bad hint.
    let cases = [
        (
            "/oauth/introspect",
            vec![
                ("client_id", id.clone()),
                ("client_secret", "wrong".to_owned()),
                ("token", token.clone()),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "/oauth/revoke",
            vec![
                ("client_id", id.clone()),
                ("client_secret", "wrong".to_owned()),
                ("token", token.clone()),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "/oauth/revoke",
            vec![
                ("client_id", "nosuchapp0".to_owned()),
                ("token", token.clone()),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "/oauth/revoke",
            vec![("client_id", id.clone())],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/oauth/revoke",
            vec![("token", token.clone())],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/oauth/revoke",
            vec![
                ("client_id", id.clone()),
                ("token", token.clone()),
                ("token_type_hint", "id_token".to_owned()),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
        ),
    ];
    for (path, form, status, error) in cases {
        let (got, body) = post(path, form.clone()).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{path} {form:?}: {body}"
        );
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    assert_eq!(
        app.whoami(&token).await.0,
        StatusCode::OK,
        "nothing was revoked"
    );

    // Another client cannot revoke this client's token (and is told nothing).
    let (other_id, _) = app
        .register_app(&user.token, "http://127.0.0.1:5174/cb", &["profile:read"])
        .await;
    let (status, _) = post(
        "/oauth/revoke",
        vec![("client_id", other_id), ("token", token.clone())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.whoami(&token).await.0, StatusCode::OK, "still alive");

    // A bearer without tokens:introspect, or whose owner is no admin, is refused.
    let narrow = app.pat(&user.token, &["profile:read"]).await;
    let res = app
        .client
        .post(format!("{}/oauth/introspect", app.url))
        .bearer_auth(&narrow)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let member = app.user("Not Admin").await;
    let key = app.pat(&member.token, &["tokens:introspect"]).await;
    let res = app
        .client
        .post(format!("{}/oauth/introspect", app.url))
        .bearer_auth(&key)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let _ = secret;
}
