//! OpenID Connect, driven by a standard library (the `openidconnect` crate): discovery, the
//! authorization code flow with PKCE and a nonce, ID tokens checked against the JWKS, userinfo and
//! refresh; `prompt`; signing keys that rotate with a grace period and are the same on every
//! replica that shares the key file.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata, CoreTokenResponse,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_server::clock::Clock;
use tessera_server::domain::keys::{GRACE, PUBLISH_AHEAD, ROTATE_AFTER};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    a_standard_library_signs_in_with_openid_connect,
    userinfo_refuses_what_it_must,
    prompt_none_login_and_consent,
    id_tokens_still_verify_through_a_key_rotation,
    replicas_with_one_key_file_sign_alike,
);

const CALLBACK: &str = "http://127.0.0.1:47011/callback";

async fn provider(app: &TestApp) -> CoreProviderMetadata {
    CoreProviderMetadata::discover_async(IssuerUrl::new(app.url.clone()).unwrap(), &http())
        .await
        .expect("discovery")
}

/// An app that may read the profile and email, and a signed-in browser.
async fn setup(app: &TestApp) -> (User, String, Browser<'_>) {
    let user = app.user("Ada Identity").await;
    let (id, _) = app
        .register_app(
            &user.token,
            "http://127.0.0.1/callback",
            &["profile:read", "profile:email", "streams:read"],
        )
        .await;
    let browser = Browser::new(app);
    browser.sign_in(&user).await;
    (user, id, browser)
}

/// A sign-in through the library's authorization URL: (the code, the nonce sent, the verifier).
async fn sign_in(
    app: &TestApp,
    browser: &Browser<'_>,
    client_id: &str,
    scopes: &[&str],
) -> (String, Nonce, openidconnect::PkceCodeVerifier) {
    let client = CoreClient::from_provider_metadata(
        provider(app).await,
        ClientId::new(client_id.into()),
        None,
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).into()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    let location = browser.authorize(&local(&url)).await;
    assert!(location.starts_with(CALLBACK), "{location}");
    let answer = query(&location);
    assert_eq!(answer["state"], *state.secret());
    assert_eq!(answer["iss"], app.url);
    (answer["code"].clone(), nonce, verifier)
}

/// A whole sign-in: the library's authorization URL, the person's Allow, the code exchange.
async fn tokens(
    app: &TestApp,
    browser: &Browser<'_>,
    client_id: &str,
    scopes: &[&str],
) -> (CoreTokenResponse, Nonce) {
    let (code, nonce, verifier) = sign_in(app, browser, client_id, scopes).await;
    let client = CoreClient::from_provider_metadata(
        provider(app).await,
        ClientId::new(client_id.into()),
        None,
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("the code exchange");
    (token, nonce)
}

fn at(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis).unwrap()
}

/// The `kid` an ID token names in its header.
fn kid(token: &CoreIdToken) -> String {
    let header = token.to_string();
    let header = header.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn a_standard_library_signs_in_with_openid_connect(app: TestApp) {
    let (user, id, browser) = setup(&app).await;
    let metadata = provider(&app).await;
    assert_eq!(metadata.issuer().as_str(), app.url);
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(id.clone()), None)
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());

    let (token, nonce) = tokens(&app, &browser, &id, &["profile", "email"]).await;
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["profile:read", "profile:email", "openid"]);
    let id_token = token.id_token().expect("an ID token for openid");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("the ID token verifies against the JWKS");
    assert_eq!(claims.subject().as_str(), user.id);
    assert_eq!(claims.email().unwrap().as_str(), user.email);
    assert_eq!(claims.email_verified(), Some(false));
    assert_eq!(
        claims.name().and_then(|n| n.get(None)).unwrap().as_str(),
        "Ada Identity"
    );
    assert_eq!(claims.nonce().unwrap().secret(), nonce.secret());
    let auth_time = claims.auth_time().expect("auth_time");
    assert!(auth_time <= claims.issue_time(), "signed in before");
    assert!(claims.expiration() > claims.issue_time());
    // The nonce binds the token to this sign-in.
    assert!(
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new("another".into()))
            .is_err()
    );
    // Another client is not its audience.
    let stranger = CoreClient::from_provider_metadata(
        provider(&app).await,
        ClientId::new("someone-else".into()),
        None,
    );
    assert!(
        id_token
            .claims(&stranger.id_token_verifier(), &nonce)
            .is_err()
    );

    // userinfo says the same.
    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), None)
        .unwrap()
        .request_async(&http())
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), user.id);
    assert_eq!(info.email().unwrap().as_str(), user.email);

    // Refresh with the library: the new access token still says who the person is; the old
    // refresh token is spent.
    let refresh = token.refresh_token().unwrap().clone();
    let next = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http())
        .await
        .expect("refresh");
    let info: CoreUserInfoClaims = client
        .user_info(next.access_token().clone(), None)
        .unwrap()
        .request_async(&http())
        .await
        .expect("userinfo after refresh");
    assert_eq!(info.subject().as_str(), user.id);
    assert!(
        client
            .exchange_refresh_token(&refresh)
            .unwrap()
            .request_async(&http())
            .await
            .is_err()
    );

    // Without profile and email, the ID token says only who: `sub`.
    let (token, nonce) = tokens(&app, &browser, &id, &[]).await;
    let claims = token
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.subject().as_str(), user.id);
    assert!(claims.email().is_none() && claims.name().is_none());
    let (_, body) = app
        .graphql(
            Some(token.access_token().secret()),
            "{ activeUser { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "openid alone reads nothing: {body}"
    );

    // Speckle's flows are as they were: no ID token, Speckle's answer.
    let (verifier, challenge) = pkce_pair();
    let location = browser
        .authorize(&format!(
            "/authn/verify/{id}/{challenge}&code_challenge_method=S256"
        ))
        .await;
    let (status, body) = app
        .oauth_token(
            json!({"appId": id, "accessCode": access_code(&location), "codeVerifier": verifier}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["refreshToken", "token"]);
}

async fn userinfo_refuses_what_it_must(app: TestApp) {
    let (user, _, _) = setup(&app).await;
    let url = format!("{}/oauth/userinfo", app.url);
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = app
        .client
        .get(&url)
        .bearer_auth("0".repeat(42))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // A token that was not granted openid (a personal access token) is not an identity.
    let res = app
        .client
        .post(&url)
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    // The library reports the same as an error, not as claims.
    let client =
        CoreClient::from_provider_metadata(provider(&app).await, ClientId::new("x".into()), None);
    let refused: Result<CoreUserInfoClaims, _> = client
        .user_info(AccessToken::new(user.token.clone()), None)
        .unwrap()
        .request_async(&http())
        .await;
    assert!(refused.is_err());
}

async fn prompt_none_login_and_consent(app: TestApp) {
    let (user, id, browser) = setup(&app).await;
    let (verifier, challenge) = pkce_pair();
    let url = |prompt: &str| {
        format!(
            "/oauth/authorize?response_type=code&client_id={id}&redirect_uri={CALLBACK}\
             &scope=openid&state=s1&code_challenge={challenge}&code_challenge_method=S256\
             &prompt={prompt}"
        )
    };
    // prompt=none before the person ever allowed the app: back to it with consent_required.
    let res = browser.get(&url("none")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let answer = query(&location(res.headers()));
    assert_eq!(answer["error"], "consent_required");
    assert_eq!(answer["state"], "s1");
    // Not signed in: login_required, and no page.
    let stranger = Browser::new(&app);
    let res = stranger.get(&url("none")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(query(&location(res.headers()))["error"], "login_required");
    // Once allowed (and the app holds its tokens), prompt=none signs in without a page.
    let allowed = query(&browser.authorize(&url("consent")).await);
    let (status, body) = app
        .oauth_token(json!({"appId": id, "accessCode": allowed["code"], "codeVerifier": verifier}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let res = browser.get(&url("none")).await;
    let answer = query(&location(res.headers()));
    assert!(answer.contains_key("code"), "{answer:?}");
    // prompt=consent asks again even so.
    let res = browser.get(&url("consent")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("wants to access your account")
    );
    // prompt=login: the sign-in page even with a session, then the same request without it.
    let res = browser.get(&url("login")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(res.headers());
    assert!(to.starts_with("/authn/login?again=1&next="), "{to}");
    let page = browser.get(&to).await;
    assert_eq!(page.status(), StatusCode::OK, "the form, not a redirect");
    let next = query(&format!("http://x{to}"))["next"].clone();
    assert!(!next.contains("prompt"), "{next}");
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
    assert_eq!(location(res.headers()), next);
    // Unknown and contradictory prompts go back as invalid_request.
    for bad in ["create", "none%20login"] {
        let res = browser.get(&url(bad)).await;
        assert_eq!(
            query(&location(res.headers()))["error"],
            "invalid_request",
            "{bad}"
        );
    }
}

async fn id_tokens_still_verify_through_a_key_rotation(app: TestApp) {
    let (user, id, browser) = setup(&app).await;
    let exchange = async |browser: &Browser<'_>| {
        let (token, nonce) = tokens(&app, browser, &id, &[]).await;
        (token.id_token().unwrap().clone(), nonce)
    };
    // Verifies `token` issued at `issued` against the JWKS the server publishes now.
    let verifies = async |token: &CoreIdToken, nonce: &Nonce, issued: i64| {
        let client = CoreClient::from_provider_metadata(
            provider(&app).await,
            ClientId::new(id.clone()),
            None,
        );
        let verifier = client.id_token_verifier().set_time_fn(move || at(issued));
        token.claims(&verifier, nonce).is_ok()
    };
    let jwks = async || -> Vec<String> {
        let res = app
            .client
            .get(format!("{}/oauth/jwks", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["cache-control"], "public, max-age=300");
        let body: Value = res.json().await.unwrap();
        body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };

    let first_at = app.clock.now();
    let (first, first_nonce) = exchange(&browser).await;
    let old = kid(&first);
    assert_eq!(jwks().await, std::slice::from_ref(&old));
    // Housekeeping before rotation is due changes nothing.
    app.state.core.housekeeping().await.unwrap();
    assert_eq!(jwks().await.len(), 1);

    // Due: a successor is published at once but does not sign yet.
    app.clock.advance(ROTATE_AFTER);
    app.state.core.housekeeping().await.unwrap();
    let published = jwks().await;
    assert_eq!(published.len(), 2, "{published:?}");
    assert_eq!(published[0], old);
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let (still_old, _) = exchange(&browser).await;
    assert_eq!(kid(&still_old), old, "the new key is only published so far");

    // It signs once published long enough; the old key's tokens still verify.
    app.clock.advance(PUBLISH_AHEAD + 1000);
    let second_at = app.clock.now();
    let (second, second_nonce) = exchange(&browser).await;
    assert_eq!(kid(&second), published[1]);
    assert!(verifies(&second, &second_nonce, second_at).await);
    assert!(
        verifies(&first, &first_nonce, first_at).await,
        "a token signed with the previous key verifies during the grace period"
    );

    // After the grace period the old key is gone, and its tokens no longer verify.
    app.clock.advance(GRACE + 1000);
    app.state.core.housekeeping().await.unwrap();
    assert_eq!(jwks().await, [published[1].clone()]);
    assert!(!verifies(&first, &first_nonce, first_at).await);
    assert!(verifies(&second, &second_nonce, second_at).await);
}

async fn replicas_with_one_key_file_sign_alike(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys").join("tessera.key");
    // The key file is made on first start and read back the same afterwards.
    let config = tessera_server::config::Config {
        key_file: Some(key_file.clone()),
        ..test_config(&app.database_url)
    };
    let made = config.load_key_file().unwrap();
    assert_eq!(config.load_key_file().unwrap().to_text(), made.to_text());
    std::fs::write(dir.path().join("bad.key"), "not a key").unwrap();
    let bad = tessera_server::config::Config {
        key_file: Some(dir.path().join("bad.key")),
        ..test_config(&app.database_url)
    };
    let err = bad.load_key_file().unwrap_err();
    assert!(err.contains("64 hex digits"), "{err}");
    if !app.is_postgres() {
        eprintln!(
            "NOTE: one SQLite file serves one server, so the replica half of \
             replicas_with_one_key_file_sign_alike runs on PostgreSQL only"
        );
        return;
    }
    let a = app
        .replica_with(|c| c.key_file = Some(key_file.clone()))
        .await;
    let b = app
        .replica_with(|c| c.key_file = Some(key_file.clone()))
        .await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads the key file");
    }
    let (_user, id, browser) = setup(&a).await;
    let (token, nonce) = tokens(&a, &browser, &id, &[]).await;
    let client =
        CoreClient::from_provider_metadata(provider(&a).await, ClientId::new(id.clone()), None);
    // Replica B publishes the key replica A signed with.
    let b_keys: Value = b
        .client
        .get(format!("{}/oauth/jwks", b.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = token.id_token().unwrap();
    assert_eq!(b_keys["keys"][0]["kid"], kid(id_token));
    assert!(id_token.claims(&client.id_token_verifier(), &nonce).is_ok());
    // A replica given another key file cannot open the keys, and says what to do.
    let other = tessera_server::Application::build(
        tessera_server::config::Config {
            key_file: Some(dir.path().join("another.key")),
            ..test_config(&app.database_url)
        },
        std::sync::Arc::new(tessera_server::clock::SystemClock),
    )
    .await;
    let err = other.err().expect("refused at start").to_string();
    assert!(err.contains("sealed with another key file"), "{err}");
    // The private key is sealed in the database, not stored in the clear.
    let mut conn = raw_connection(&app).await;
    let sealed: Vec<String> = sqlx::query_scalar("SELECT sealed_private_key FROM signing_keys")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(sealed.len(), 1);
    assert!(sealed[0].starts_with("v1.") && !sealed[0].contains("PRIVATE"));
}
