//! The standard endpoints beside Speckle's flows: the authorization code flow with PKCE (RFC 6749,
//! RFC 7636, RFC 9207) and RFC 7662 introspection driven by a standard client library (the
//! `oauth2` crate), RFC 8414 metadata, and RFC 7009 revocation in the RFC's own request form (the
//! `oauth2` crate refuses to revoke over plain http, which the test server speaks).

use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    PkceCodeChallenge, RedirectUrl, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    a_standard_client_signs_a_person_in_with_pkce,
    authorization_errors_go_back_to_the_client_or_stay_on_a_page,
    metadata_describes_the_endpoints,
    confidential_clients_need_their_secret,
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

/// The query pairs of a URL.
async fn a_standard_client_signs_a_person_in_with_pkce(app: TestApp) {
    let user = app.user("Library User").await;
    // Registered without a port: a native app's loopback listener may use any (RFC 8252 §7.3).
    let (id, _) = app
        .register_app(
            &user.token,
            "http://127.0.0.1/callback",
            &["profile:read", "profile:email", "streams:read"],
        )
        .await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let client = BasicClient::new(ClientId::new(id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/oauth/authorize", app.url)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/oauth/token", app.url)).unwrap())
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:53682/callback".into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(oauth2::Scope::new("profile:read".into()))
        .add_scope(oauth2::Scope::new("profile:email".into()))
        .set_pkce_challenge(challenge)
        .url();
    // The consent page lists what is asked, not everything the app may ask.
    let page = browser.get(&local(&url)).await.text().await.unwrap();
    assert!(
        page.contains("profile:email") && !page.contains("streams:read"),
        "{page}"
    );
    let location = browser.authorize(&local(&url)).await;
    assert!(
        location.starts_with("http://127.0.0.1:53682/callback?"),
        "{location}"
    );
    let answer = query(&location);
    assert_eq!(
        answer["state"],
        *csrf.secret(),
        "state comes back unchanged"
    );
    assert_eq!(answer["iss"], app.url, "RFC 9207");
    let token = client
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("the code exchange");
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["profile:read", "profile:email"]);
    assert!(token.expires_in().is_some());
    let (status, me) = app
        .graphql(
            Some(token.access_token().secret()),
            "{ activeUser { email } }",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["data"]["activeUser"]["email"], user.email.as_str());
    // Refresh with the library; the chain still rotates.
    let refresh = token.refresh_token().unwrap().clone();
    let next = client
        .exchange_refresh_token(&refresh)
        .request_async(&http())
        .await
        .expect("refresh");
    assert_ne!(next.access_token().secret(), token.access_token().secret());
    assert!(
        client
            .exchange_refresh_token(&refresh)
            .request_async(&http())
            .await
            .is_err(),
        "a used refresh token is refused"
    );
    // A code is spent once.
    assert!(
        client
            .exchange_code(AuthorizationCode::new(answer["code"].clone()))
            .set_pkce_verifier(oauth2::PkceCodeVerifier::new("x".repeat(43)))
            .request_async(&http())
            .await
            .is_err()
    );
}

async fn authorization_errors_go_back_to_the_client_or_stay_on_a_page(app: TestApp) {
    let user = app.user("Careful Client").await;
    let (id, _) = app
        .register_app(&user.token, "https://client.example/cb", &["profile:read"])
        .await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let (_, challenge) = pkce_pair();
    let base = |extra: &str| {
        format!(
            "/oauth/authorize?response_type=code&client_id={id}&state=st8&code_challenge={challenge}&code_challenge_method=S256{extra}"
        )
    };
    // Unknown client, or a redirect that is not the registered one: a page, never a redirect.
    for (path, status) in [
        (
            format!(
                "/oauth/authorize?response_type=code&client_id=nosuchapp0&code_challenge={challenge}&code_challenge_method=S256"
            ),
            StatusCode::NOT_FOUND,
        ),
        (
            base("&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"),
            StatusCode::BAD_REQUEST,
        ),
        (
            base("&redirect_uri=https%3A%2F%2Fclient.example%2Fcb%2Fmore"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/oauth/authorize?response_type=code".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = browser.get(&path).await;
        assert_eq!(res.status(), status, "{path}");
        assert!(
            res.headers().get("location").is_none(),
            "never redirected: {path}"
        );
    }
    // Everything else goes back to the client with the error, the state and the issuer.
    let no_pkce = format!("/oauth/authorize?response_type=code&client_id={id}&state=st8");
    let plain = format!(
        "/oauth/authorize?response_type=code&client_id={id}&state=st8&code_challenge={challenge}&code_challenge_method=plain"
    );
    let token_type = format!(
        "/oauth/authorize?response_type=token&client_id={id}&state=st8&code_challenge={challenge}&code_challenge_method=S256"
    );
    for (path, error) in [
        (no_pkce, "invalid_request"),
        (plain, "invalid_request"),
        (token_type, "unsupported_response_type"),
        (base("&scope=streams%3Awrite"), "invalid_scope"),
        (base("&scope=nonsense"), "invalid_scope"),
    ] {
        let res = browser.get(&path).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        let location = location(res.headers());
        assert!(
            location.starts_with("https://client.example/cb?"),
            "{location}"
        );
        let answer = query(&location);
        assert_eq!(answer["error"], error, "{path}: {location}");
        assert_eq!(answer["state"], "st8");
        assert_eq!(answer["iss"], app.url);
        assert!(!answer["error_description"].is_empty());
    }
    // Denied on the consent page: access_denied, with the state.
    let path = base("");
    browser.get(&path).await;
    let csrf = browser.csrf();
    let res = browser
        .post(&path, &[("csrf", &csrf), ("decision", "deny")])
        .await;
    let answer = query(&location(res.headers()));
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["state"], "st8");
    // Signed out, the person signs in first and comes back to the request.
    let res = Browser::new(&app).get(&path).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(res.headers()).starts_with("/authn/login?next="));
}

async fn metadata_describes_the_endpoints(app: TestApp) {
    let fetch = async |path: &str| -> Value {
        let res = app
            .client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    };
    // RFC 8414 metadata and OpenID Connect discovery say the same.
    let meta = fetch("/.well-known/oauth-authorization-server").await;
    assert_eq!(fetch("/.well-known/openid-configuration").await, meta);
    assert_eq!(meta["issuer"], app.url);
    for (key, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("jwks_uri", "/oauth/jwks"),
        (
            "device_authorization_endpoint",
            "/oauth/device_authorization",
        ),
    ] {
        assert_eq!(meta[key], format!("{}{path}", app.url));
    }
    assert_eq!(
        meta["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        meta["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(meta["subject_types_supported"], json!(["public"]));
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_secret_basic"))
    );
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    let scopes = meta["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!("streams:read")));
    assert!(scopes.contains(&json!("openid")));
    assert!(
        !scopes.contains(&json!("tokens:write")),
        "public scopes only"
    );
}

async fn confidential_clients_need_their_secret(app: TestApp) {
    let user = app.user("Server Side").await;
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
            json!({"a": {"name": "Backend", "description": "A server-side app",
                         "redirectUrl": "https://backend.example/cb", "scopes": ["profile:read"],
                         "confidential": true}}),
        )
        .await;
    let id = body["data"]["appCreate"].as_str().unwrap().to_owned();
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "query($id: String!) { app(id: $id) { secret confidential } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(body["data"]["app"]["confidential"], true, "{body}");
    let secret = body["data"]["app"]["secret"].as_str().unwrap().to_owned();
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let public = BasicClient::new(ClientId::new(id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/oauth/authorize", app.url)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/oauth/token", app.url)).unwrap())
        .set_redirect_uri(RedirectUrl::new("https://backend.example/cb".into()).unwrap());
    let confidential = public.clone().set_client_secret(ClientSecret::new(secret));
    let sign_in = async || {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _) = public
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .url();
        let location = browser.authorize(&local(&url)).await;
        (
            AuthorizationCode::new(query(&location)["code"].clone()),
            verifier,
        )
    };
    // Without the secret: refused, even with the right verifier.
    let (code, verifier) = sign_in().await;
    let refused = public
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await;
    match refused {
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_client", "{e:?}");
        }
        other => panic!("a confidential client without its secret: {other:?}"),
    }
    // With it (HTTP Basic, as the library sends it): a token, and refreshing needs it too.
    let (code, verifier) = sign_in().await;
    let token = confidential
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("with the secret");
    let refresh = token.refresh_token().unwrap();
    assert!(
        public
            .exchange_refresh_token(refresh)
            .request_async(&http())
            .await
            .is_err(),
        "no refresh without the secret"
    );
    confidential
        .exchange_refresh_token(refresh)
        .request_async(&http())
        .await
        .expect("refresh with the secret");
    // The Apps page shows and keeps the choice.
    let page = browser
        .get(&format!("/settings/apps/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"confidential\" value=\"on\" checked"),
        "{page}"
    );
}
