//! Authorization through the browser: the S256 flow of Speckle's docs at `POST /oauth/token`, the
//! legacy flows at `POST /auth/token` (the C# connector's `sca`), `GET /auth/accesscode`, and
//! every way these refuse.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    docs_pkce_flow_with_the_suffix_in_the_path,
    pkce_method_as_query_parameter_and_rfc_6749_form,
    oauth_token_probe_answers_200,
    verifier_rejections,
    reused_code_fails_and_revokes_what_it_issued,
    code_for_another_app_is_refused,
    no_downgrade_in_either_direction,
    deny_redirects_with_denied_true,
    state_comes_back_unchanged,
    refresh_at_oauth_token_rotates_and_keeps_scopes,
    confidential_chains_need_their_secret,
    app_tokens_carry_the_apps_scopes,
    csharp_legacy_connector_flow,
    access_code_endpoint_as_speckle_has_it,
    access_codes_never_grant_more_than_their_issuer_holds,
);

/// Registers a public-client app that redirects to a loopback callback: (id, secret).
async fn client_app(app: &TestApp, dev: &User) -> (String, String) {
    app.register_app(
        &dev.token,
        "http://127.0.0.1:5173/callback",
        &["profile:read", "profile:email"],
    )
    .await
}

async fn signed_in<'a>(app: &'a TestApp, name: &str) -> (User, Browser<'a>) {
    let user = app.user(name).await;
    let browser = Browser::new(app);
    browser.sign_in(&user).await;
    (user, browser)
}

fn err_code(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

async fn docs_pkce_flow_with_the_suffix_in_the_path(app: TestApp) {
    let (user, browser) = signed_in(&app, "Docs Reader").await;
    let (id, _) = client_app(&app, &user).await;
    let (verifier, challenge) = pkce_pair();
    // Exactly the URL the docs build: `&code_challenge_method=S256` appended to the path.
    let location = browser
        .authorize(&format!(
            "/authn/verify/{id}/{challenge}&code_challenge_method=S256"
        ))
        .await;
    assert!(
        location.starts_with("http://127.0.0.1:5173/callback?access_code="),
        "{location}"
    );
    let res = app
        .post_json(
            "/oauth/token",
            json!({"appId": id, "accessCode": access_code(&location), "codeVerifier": verifier}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    let body: Value = res.json().await.unwrap();
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["refreshToken", "token"]);
    let (_, me) = app
        .graphql(
            body["token"].as_str(),
            "{ activeUser { name email } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["activeUser"],
        json!({"name": "Docs Reader", "email": user.email})
    );
}

async fn pkce_method_as_query_parameter_and_rfc_6749_form(app: TestApp) {
    let (user, browser) = signed_in(&app, "Form Client").await;
    let (id, _) = client_app(&app, &user).await;
    let (verifier, challenge) = pkce_pair();
    let location = browser
        .authorize(&format!(
            "/authn/verify/{id}/{challenge}?code_challenge_method=S256"
        ))
        .await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &access_code(&location)),
                ("code_verifier", &verifier),
                ("client_id", &id),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    // The RFC 6749 request gets the RFC 6749 §5.1 answer.
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ],
        "{body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "profile:read profile:email");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert_eq!(
        app.whoami(body["access_token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    // Refreshing in RFC form answers in RFC form too.
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ("client_id", &id),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let refreshed: Value = res.json().await.unwrap();
    assert!(refreshed["access_token"].is_string(), "{refreshed}");
}

async fn oauth_token_probe_answers_200(app: TestApp) {
    let res = app
        .client
        .get(format!("{}/oauth/token", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/oauth/token", app.url))
        .header("origin", "https://spa.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

async fn verifier_rejections(app: TestApp) {
    let (user, browser) = signed_in(&app, "Verifier").await;
    let (id, _) = client_app(&app, &user).await;
    let (verifier, challenge) = pkce_pair();
    let path = format!("/authn/verify/{id}/{challenge}&code_challenge_method=S256");
    let code = access_code(&browser.authorize(&path).await);
    // Malformed verifiers are refused before the code is touched.
    for bad in [
        "short".to_owned(),
        "a".repeat(42),
        "a".repeat(129),
        format!("{}+/", "a".repeat(43)),
    ] {
        let (status, body) = app
            .oauth_token(json!({"appId": id, "accessCode": code, "codeVerifier": bad}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(err_code(&body), "invalid_request");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("43 to 128")
        );
    }
    for missing in [
        json!({"appId": id, "accessCode": code}),
        json!({"accessCode": code, "codeVerifier": verifier}),
    ] {
        let (status, body) = app.oauth_token(missing).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err_code(&body), "invalid_request");
    }
    // A well-formed but wrong verifier spends the code.
    let (wrong, _) = pkce_pair();
    let (status, body) = app
        .oauth_token(json!({"appId": id, "accessCode": code, "codeVerifier": wrong}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "The code verifier does not match the code challenge."
    );
    let (_, body) = app
        .oauth_token(json!({"appId": id, "accessCode": code, "codeVerifier": verifier}))
        .await;
    assert_eq!(err_code(&body), "invalid_grant", "the code is spent");
    let (status, body) = app
        .oauth_token(json!({"grant_type": "password", "client_id": id}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err_code(&body), "unsupported_grant_type");
}

async fn reused_code_fails_and_revokes_what_it_issued(app: TestApp) {
    let (user, browser) = signed_in(&app, "Replay Victim").await;
    let (id, _) = client_app(&app, &user).await;
    let (verifier, challenge) = pkce_pair();
    let code = access_code(
        &browser
            .authorize(&format!(
                "/authn/verify/{id}/{challenge}?code_challenge_method=S256"
            ))
            .await,
    );
    let request = json!({"appId": id, "accessCode": code, "codeVerifier": verifier});
    let (status, first) = app.oauth_token(request.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.whoami(first["token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
    let (status, body) = app.oauth_token(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err_code(&body), "invalid_grant");
    assert_eq!(
        app.whoami(first["token"].as_str().unwrap()).await.0,
        StatusCode::FORBIDDEN,
        "the tokens of the first use are revoked"
    );
    let (_, body) = app
        .oauth_token(json!({"appId": id, "refreshToken": first["refreshToken"]}))
        .await;
    assert_eq!(err_code(&body), "invalid_grant");
    // The same holds at the legacy endpoint.
    let code = access_code(
        &browser
            .authorize(&format!("/authn/verify/{id}/legacychallenge"))
            .await,
    );
    let (_, secret_body) = app
        .graphql(
            Some(&user.token),
            "query($id: String!) { app(id: $id) { secret } }",
            json!({"id": id}),
        )
        .await;
    let secret = secret_body["data"]["app"]["secret"].as_str().unwrap();
    let legacy = json!({"appId": id, "appSecret": secret, "accessCode": code, "challenge": "legacychallenge"});
    let (_, pair) = app.token_endpoint(legacy.clone()).await;
    let (status, body) = app.token_endpoint(legacy).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"err": "Access code not found."}));
    assert_eq!(
        app.whoami(pair["token"].as_str().unwrap()).await.0,
        StatusCode::FORBIDDEN
    );
}

async fn code_for_another_app_is_refused(app: TestApp) {
    let (user, browser) = signed_in(&app, "Two Apps").await;
    let (id, _) = client_app(&app, &user).await;
    let (other, _) = client_app(&app, &user).await;
    let (verifier, challenge) = pkce_pair();
    let code = access_code(
        &browser
            .authorize(&format!(
                "/authn/verify/{id}/{challenge}?code_challenge_method=S256"
            ))
            .await,
    );
    let (status, body) = app
        .oauth_token(json!({"appId": other, "accessCode": code, "codeVerifier": verifier}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error_description"],
        "The access code was issued to another app."
    );
    let (status, _) = app
        .oauth_token(json!({"appId": id, "accessCode": code, "codeVerifier": verifier}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the code was not spent by the wrong app"
    );
}

async fn no_downgrade_in_either_direction(app: TestApp) {
    let (user, browser) = signed_in(&app, "Downgrader").await;
    let (id, secret) = client_app(&app, &user).await;
    // An S256 code cannot be redeemed at /auth/token, with the bare challenge or the verifier.
    let (verifier, challenge) = pkce_pair();
    for presented in [challenge.clone(), verifier.clone()] {
        let code = access_code(
            &browser
                .authorize(&format!(
                    "/authn/verify/{id}/{challenge}&code_challenge_method=S256"
                ))
                .await,
        );
        let (status, body) = app
            .token_endpoint(json!({"appId": id, "appSecret": secret, "accessCode": code, "challenge": presented}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            body["err"].as_str().unwrap().contains("/oauth/token"),
            "{body}"
        );
    }
    // A plain code cannot be redeemed at /oauth/token, even with a verifier equal to it.
    let plain = "a".repeat(50);
    let code = access_code(
        &browser
            .authorize(&format!("/authn/verify/{id}/{plain}"))
            .await,
    );
    let (status, body) = app
        .oauth_token(json!({"appId": id, "accessCode": code, "codeVerifier": plain}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err_code(&body), "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("/auth/token")
    );
}

async fn deny_redirects_with_denied_true(app: TestApp) {
    let (user, browser) = signed_in(&app, "Denier").await;
    let (id, _) = client_app(&app, &user).await;
    let path = format!("/authn/verify/{id}/denychallenge");
    let page = browser.get(&path).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = browser.csrf();
    let res = browser
        .post(&path, &[("csrf", &csrf), ("decision", "deny")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(res.headers()),
        "http://127.0.0.1:5173/callback?denied=true"
    );
}

async fn state_comes_back_unchanged(app: TestApp) {
    let (user, browser) = signed_in(&app, "Stateful").await;
    let (id, _) = client_app(&app, &user).await;
    let state = "xyz/+= &é";
    let encoded: String = url::form_urlencoded::byte_serialize(state.as_bytes()).collect();
    // Allowed: the state comes back before the access code (which Speckle's clients read last).
    let location = browser
        .authorize(&format!(
            "/authn/verify/{id}/statechallenge?state={encoded}"
        ))
        .await;
    let url = url::Url::parse(&location).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs[0],
        ("state".to_owned(), state.to_owned()),
        "{location}"
    );
    assert_eq!(pairs[1].0, "access_code", "{location}");
    // Denied: with the state too.
    let path = format!("/authn/verify/{id}/statechallenge?state={encoded}");
    browser.get(&path).await;
    let csrf = browser.csrf();
    let res = browser
        .post(&path, &[("csrf", &csrf), ("decision", "deny")])
        .await;
    assert_eq!(
        location_of(&res),
        format!("http://127.0.0.1:5173/callback?state={encoded}&denied=true")
    );
    // Without one, nothing is added (the C# SDK's flow is unchanged).
    let location = browser
        .authorize(&format!("/authn/verify/{id}/statechallenge"))
        .await;
    assert!(location.starts_with("http://127.0.0.1:5173/callback?access_code="));
    // A state that is too long is refused on an error page, never redirected.
    let long = "s".repeat(2000);
    let res = browser
        .get(&format!("/authn/verify/{id}/statechallenge?state={long}"))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

fn location_of(res: &reqwest::Response) -> String {
    location(res.headers())
}

async fn refresh_at_oauth_token_rotates_and_keeps_scopes(app: TestApp) {
    let (user, browser) = signed_in(&app, "Public Client").await;
    let (id, _) = client_app(&app, &user).await;
    let (verifier, challenge) = pkce_pair();
    let code = access_code(
        &browser
            .authorize(&format!(
                "/authn/verify/{id}/{challenge}?code_challenge_method=S256"
            ))
            .await,
    );
    let (_, first) = app
        .oauth_token(json!({"appId": id, "accessCode": code, "codeVerifier": verifier}))
        .await;
    let (status, second) = app
        .oauth_token(json!({"grant_type": "refresh_token", "refresh_token": first["refreshToken"], "client_id": id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (_, body) = app
        .graphql(
            second["token"].as_str(),
            "{ activeUser { email } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["activeUser"]["email"], user.email.as_str());
    let (_, body) = app
        .graphql(
            second["token"].as_str(),
            "{ activeUser { apiTokens { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        first_error(&body).2.as_deref(),
        Some("tokens:read"),
        "no wider than the app's scopes"
    );
    // Replaying the first refresh token kills the chain.
    let (_, body) = app
        .oauth_token(json!({"appId": id, "refreshToken": first["refreshToken"]}))
        .await;
    assert_eq!(err_code(&body), "invalid_grant");
    assert_eq!(
        app.whoami(second["token"].as_str().unwrap()).await.0,
        StatusCode::FORBIDDEN
    );
}

async fn confidential_chains_need_their_secret(app: TestApp) {
    let (user, browser) = signed_in(&app, "Confidential").await;
    let (id, secret) = client_app(&app, &user).await;
    let code = access_code(
        &browser
            .authorize(&format!("/authn/verify/{id}/confidential"))
            .await,
    );
    let (_, pair) = app
        .token_endpoint(json!({"appId": id, "appSecret": secret, "accessCode": code, "challenge": "confidential"}))
        .await;
    let refresh = pair["refreshToken"].as_str().unwrap();
    let (status, body) = app
        .oauth_token(json!({"appId": id, "refreshToken": refresh}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err_code(&body), "invalid_client");
    let (status, body) = app
        .oauth_token(json!({"appId": id, "appSecret": "wrong", "refreshToken": refresh}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err_code(&body), "invalid_client");
    // With the secret (here as HTTP Basic), it works.
    let res = app
        .client
        .post(format!("{}/oauth/token", app.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn app_tokens_carry_the_apps_scopes(app: TestApp) {
    let (user, browser) = signed_in(&app, "Scoped").await;
    let (id, _) = app
        .register_app(
            &user.token,
            "http://127.0.0.1:5173/callback",
            &["profile:read"],
        )
        .await;
    let (verifier, challenge) = pkce_pair();
    let code = access_code(
        &browser
            .authorize(&format!(
                "/authn/verify/{id}/{challenge}?code_challenge_method=S256"
            ))
            .await,
    );
    let (_, pair) = app
        .oauth_token(json!({"appId": id, "accessCode": code, "codeVerifier": verifier}))
        .await;
    let token = pair["token"].as_str();
    let (_, body) = app
        .graphql(token, "{ activeUser { name email } }", json!({}))
        .await;
    assert_eq!(body["data"]["activeUser"]["name"], "Scoped");
    assert_eq!(
        body["data"]["activeUser"]["email"],
        Value::Null,
        "no profile:email"
    );
    let (_, body) = app
        .graphql(
            token,
            "query($id: String!) { otherUser(id: $id) { id } }",
            json!({"id": user.id}),
        )
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("users:read"));
    let (_, body) = app
        .graphql(token, "{ authenticatedAsApp { id } }", json!({}))
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("apps:read"));
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "{ authenticatedAsApp { id } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["authenticatedAsApp"]["id"], "spklwebapp");
}

/// The C# SDK's legacy connector login: browser to `/authn/verify/sca/<challenge>`, the code comes
/// back on `http://localhost:29363/?access_code=…`, then `POST /auth/token` with `sca`/`sca`.
async fn csharp_legacy_connector_flow(app: TestApp) {
    let (user, browser) = signed_in(&app, "Revit User").await;
    // 32 random bytes in base64 with everything outside [A-Za-z0-9_.@-] removed, as the SDK does.
    let challenge = "Xq3Zt0aY9b2Lk7Wm4Np8Rs1Uv5Cd6Ef0Gh3Ij2Kl";
    let res = browser.get(&format!("/authn/verify/sca/{challenge}")).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "sca is trusted: no question asked"
    );
    let location = location(res.headers());
    assert!(
        location.starts_with("http://localhost:29363?access_code="),
        "the registered URL byte for byte, as Speckle sends it: {location}"
    );
    assert!(!location.contains("29363/?"), "{location}");
    let (status, pair) = app
        .token_endpoint(json!({"appId": "sca", "appSecret": "sca", "accessCode": access_code(&location), "challenge": challenge}))
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    // The legacy account query the connector runs next.
    let (_, body) = app
        .graphql(
            pair["token"].as_str(),
            "query { activeUser { id name email company avatar streams { totalCount } commits { totalCount } } \
             serverInfo { name company adminContact description version migration { movedFrom movedTo } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["activeUser"]["email"], user.email.as_str());
    // And its refresh, with sca/sca.
    let (status, _) = app
        .token_endpoint(
            json!({"appId": "sca", "appSecret": "sca", "refreshToken": pair["refreshToken"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn access_code_endpoint_as_speckle_has_it(app: TestApp) {
    let user = app.user("Frontend").await;
    let get = |query: String| {
        let client = app.client.clone();
        let url = format!("{}/auth/accesscode?{query}", app.url);
        async move { client.get(url).send().await.unwrap() }
    };
    let t = &user.token;
    let res = get(format!("appId=sdm&challenge=abc&token={t}")).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = location(res.headers());
    assert!(loc.starts_with("speckle://account?access_code="), "{loc}");
    let (status, _) = app
        .token_endpoint(json!({"appId": "sdm", "appSecret": "sdm", "accessCode": access_code(&loc), "challenge": "abc"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let res = get(format!(
        "appId=explorer&challenge=abc&token={t}&preventRedirect=true"
    ))
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["redirectUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/explorer?access_code=", app.url)),
        "{body}"
    );
    let pat = app.pat(t, &["profile:read"]).await;
    let cases = [
        (
            "challenge=abc".to_owned(),
            "appId missing from querystring.",
        ),
        (
            format!("appId=nope&challenge=abc&token={t}"),
            "App does not exist.",
        ),
        (format!("appId=sdm&token={t}"), "Missing challenge"),
        ("appId=sdm&challenge=abc".to_owned(), "Missing token"),
        (
            "appId=sdm&challenge=abc&token=garbage".to_owned(),
            "Invalid token",
        ),
        (
            format!("appId=sdm&challenge=abc&token={pat}"),
            "Your auth token does not have the required scope: tokens:write.",
        ),
    ];
    for (query, message) in cases {
        let res = get(query.clone()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(res.text().await.unwrap(), message, "{query}");
    }
}

/// A token with `tokens:write` but few other scopes (here Power BI's) cannot turn itself into an
/// all-scope token by asking `/auth/accesscode` for a code of the web app.
async fn access_codes_never_grant_more_than_their_issuer_holds(app: TestApp) {
    let user = app.user("Escalator").await;
    let code_for = |token: String, app_id: &'static str| {
        let client = app.client.clone();
        let url = format!(
            "{}/auth/accesscode?appId={app_id}&challenge=c&token={token}&preventRedirect=true",
            app.url
        );
        async move {
            let res = client.get(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            access_code(
                res.json::<Value>().await.unwrap()["redirectUrl"]
                    .as_str()
                    .unwrap(),
            )
        }
    };
    let exchange = |app_id: &'static str, code: String| {
        let app = &app;
        async move {
            let (status, body) = app
                .token_endpoint(json!({"appId": app_id, "appSecret": app_id, "accessCode": code, "challenge": "c"}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["token"].as_str().unwrap().to_owned()
        }
    };
    let powerbi = exchange(
        "spklpwerbi",
        code_for(user.token.clone(), "spklpwerbi").await,
    )
    .await;
    let web = exchange("spklwebapp", code_for(powerbi.clone(), "spklwebapp").await).await;
    // The new token has at most Power BI's scopes: no tokens:read, no apps:write.
    let (_, body) = app
        .graphql(Some(&web), "{ activeUser { apiTokens { id } } }", json!({}))
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("tokens:read"));
    let (_, body) = app
        .graphql(Some(&web), "mutation { appCreate(app: {name: \"x\", description: \"d\", redirectUrl: \"https://x.example\", scopes: [\"profile:read\"]}) }", json!({}))
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("apps:write"));
    let (_, body) = app
        .graphql(Some(&web), "{ activeUser { email } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["activeUser"]["email"],
        user.email.as_str(),
        "it keeps what it had"
    );
    // An app asking only for scopes the token lacks gets no code at all.
    let (dev_app, _) = app
        .register_app(&user.token, "https://a.example/cb", &["apps:read"])
        .await;
    let res = app
        .client
        .get(format!(
            "{}/auth/accesscode?appId={dev_app}&challenge=c&token={powerbi}",
            app.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.text().await.unwrap(),
        "Your auth token holds none of the scopes this app asks for."
    );
}
