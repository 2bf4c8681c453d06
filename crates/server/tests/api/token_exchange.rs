//! `POST /auth/token`: the code exchange and the rotating refresh grant.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    exchange_returns_exactly_a_token_pair_and_is_not_cached,
    exchange_accepts_forms_and_the_trailing_slash_route,
    cors_preflight_is_answered,
    missing_fields_get_speckles_messages,
    codes_are_single_use,
    code_for_another_app_is_not_consumed,
    wrong_challenge_or_secret_consume_the_code,
    codes_expire_after_ten_minutes,
    housekeeping_forgets_expired_codes,
    refresh_returns_a_new_pair_and_rotates,
    replayed_refresh_token_revokes_the_whole_chain,
    refresh_rejections,
    refresh_tokens_expire,
);

async fn new_code(app: &TestApp, user: &User, challenge: &str) -> String {
    let res = app
        .post_json(
            &format!("/auth/local/login?challenge={challenge}"),
            json!({"email": user.email, "password": user.password}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    access_code(&location(res.headers()))
}

fn err(message: &str) -> Value {
    json!({ "err": message })
}

async fn exchange_returns_exactly_a_token_pair_and_is_not_cached(app: TestApp) {
    let user = app.user("Pair").await;
    let code = new_code(&app, &user, "c1").await;
    let res = app
        .post_json(
            "/auth/token",
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": code, "challenge": "c1"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.contains("no-store"), "{cache}");
    let body: Value = res.json().await.unwrap();
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["refreshToken", "token"]);
    for key in ["token", "refreshToken"] {
        let value = body[key].as_str().unwrap();
        assert_eq!(value.len(), 42);
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
    let (_, me) = app.whoami(body["token"].as_str().unwrap()).await;
    assert_eq!(me["data"]["activeUser"]["id"], user.id.as_str());
}

async fn exchange_accepts_forms_and_the_trailing_slash_route(app: TestApp) {
    let user = app.user("Form").await;
    let code = new_code(&app, &user, "c2").await;
    let res = app
        .post_form(
            "/auth/token/",
            &[
                ("appId", "spklwebapp"),
                ("appSecret", "spklwebapp"),
                ("accessCode", &code),
                ("challenge", "c2"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token"].as_str().unwrap().len(), 42);
}

async fn cors_preflight_is_answered(app: TestApp) {
    for path in ["/auth/token", "/graphql"] {
        let res = app
            .client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.url))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            // A stale token must not break the preflight.
            .header("authorization", "Bearer garbage")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        let allowed = res.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(allowed == "*" || allowed.contains("POST"), "{allowed}");
    }
}

async fn missing_fields_get_speckles_messages(app: TestApp) {
    let p = "Invalid request, insufficient information provided.";
    let cases = [
        (json!({}), format!("{p} App Id is required.")),
        (
            json!({"accessCode": "x", "challenge": "y"}),
            format!("{p} App Id is required."),
        ),
        (
            json!({"appId": "spklwebapp"}),
            format!("{p} App Secret is required."),
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp"}),
            format!("{p} Access Code is required."),
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": "abc"}),
            format!("{p} Challenge is required."),
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": ""}),
            format!("{p} A valid refresh token is required."),
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": "nope", "challenge": "c"}),
            "Access code not found.".to_owned(),
        ),
    ];
    for (body, message) in cases {
        let (status, reply) = app.token_endpoint(body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(reply, err(&message), "{body}");
    }
    // An empty body is the same as no fields.
    let res = app
        .client
        .post(format!("{}/auth/token", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        err(&format!("{p} App Id is required."))
    );
}

async fn codes_are_single_use(app: TestApp) {
    let user = app.user("Once").await;
    let code = new_code(&app, &user, "c3").await;
    assert_eq!(app.exchange(&code, "c3").await.0, StatusCode::OK);
    let (status, body) = app.exchange(&code, "c3").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, err("Access code not found."));
}

async fn code_for_another_app_is_not_consumed(app: TestApp) {
    let user = app.user("Other App").await;
    let code = new_code(&app, &user, "c4").await;
    let (status, body) = app
        .token_endpoint(
            json!({"appId": "sdm", "appSecret": "sdm", "accessCode": code, "challenge": "c4"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, err("Invalid request: application id does not match."));
    assert_eq!(
        app.exchange(&code, "c4").await.0,
        StatusCode::OK,
        "the code survived"
    );
}

async fn wrong_challenge_or_secret_consume_the_code(app: TestApp) {
    let user = app.user("Careless").await;
    let code = new_code(&app, &user, "right").await;
    let (status, body) = app.exchange(&code, "WRONG").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        err(
            "Code challenge mismatch. Ensure the same challenge is used for authentication and token exchange."
        )
    );
    assert_eq!(
        app.exchange(&code, "right").await.1,
        err("Access code not found.")
    );

    let code = new_code(&app, &user, "right").await;
    let (status, body) = app
        .token_endpoint(json!({"appId": "spklwebapp", "appSecret": "wrong", "accessCode": code, "challenge": "right"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        err("Invalid app secret. Ensure the app secret is correct.")
    );
    assert_eq!(
        app.exchange(&code, "right").await.1,
        err("Access code not found.")
    );
}

async fn codes_expire_after_ten_minutes(app: TestApp) {
    let user = app.user("Slow").await;
    let code = new_code(&app, &user, "c5").await;
    app.clock.advance(10 * 60 * 1000);
    assert_eq!(
        app.exchange(&code, "c5").await.0,
        StatusCode::OK,
        "still valid at 10 minutes"
    );

    let code = new_code(&app, &user, "c5").await;
    app.clock.advance(10 * 60 * 1000 + 1);
    let (status, body) = app.exchange(&code, "c5").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, err("Access code expired"));
    assert_eq!(
        app.exchange(&code, "c5").await.1,
        err("Access code not found.")
    );
}

async fn refresh(app: &TestApp, refresh_token: &str) -> (StatusCode, Value) {
    app.token_endpoint(
        json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": refresh_token}),
    )
    .await
}

async fn refresh_returns_a_new_pair_and_rotates(app: TestApp) {
    let user = app.user("Refresher").await;
    let res = app
        .post_json(
            "/auth/token",
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": user.refresh_token}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    let pair: Value = res.json().await.unwrap();
    let (token, next) = (
        pair["token"].as_str().unwrap(),
        pair["refreshToken"].as_str().unwrap(),
    );
    assert_ne!(token, user.token);
    assert_ne!(next, user.refresh_token);
    let (_, me) = app.whoami(token).await;
    assert_eq!(me["data"]["activeUser"]["id"], user.id.as_str());
    // The chain goes on with the new refresh token.
    let (status, again) = refresh(&app, next).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    // The new token keeps the web app's scopes (a refresh never widens them).
    let (_, body) = app
        .graphql(
            Some(again["token"].as_str().unwrap()),
            "{ activeUser { apiTokens { id } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

async fn replayed_refresh_token_revokes_the_whole_chain(app: TestApp) {
    let user = app.user("Victim").await;
    let (status, first) = refresh(&app, &user.refresh_token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, second) = refresh(&app, first["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    // Someone presents the original refresh token again.
    let (status, body) = refresh(&app, &user.refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["err"]
            .as_str()
            .unwrap()
            .starts_with("Refresh token already used."),
        "{body}"
    );
    // Every token of the chain is dead: the original, both refreshed ones, and the live refresh token.
    for token in [
        &user.token,
        first["token"].as_str().unwrap(),
        second["token"].as_str().unwrap(),
    ] {
        let (status, body) = app.whoami(token).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body.to_string(), INVALID_TOKEN);
    }
    let (status, body) = refresh(&app, second["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, err("Invalid request"));
    // Another chain of the same user is untouched.
    let other = app.login(&user.email, &user.password).await;
    let (_, pair) = app
        .exchange(&access_code(&location(other.headers())), CHALLENGE)
        .await;
    assert_eq!(
        app.whoami(pair["token"].as_str().unwrap()).await.0,
        StatusCode::OK
    );
}

async fn refresh_rejections(app: TestApp) {
    let user = app.user("Rejected").await;
    let r = &user.refresh_token;
    let tampered = format!("{}{}", &r[..10], "0".repeat(32));
    let cases = [
        (
            json!({"appId": "sdm", "appSecret": "sdm", "refreshToken": r}),
            "Invalid request",
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "nope", "refreshToken": r}),
            "Invalid request",
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": "0123456789".repeat(4) + "ab"}),
            "Invalid request",
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": "short"}),
            "Invalid request",
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": format!("{r}EXTRA")}),
            "Invalid request",
        ),
        (
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": tampered}),
            "Invalid token",
        ),
    ];
    for (body, message) in cases {
        let (status, reply) = app.token_endpoint(body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(reply, err(message), "{body}");
    }
    // None of the rejected attempts spent the refresh token.
    assert_eq!(refresh(&app, r).await.0, StatusCode::OK);
}

async fn refresh_tokens_expire(app: TestApp) {
    let user = app.user("Old").await;
    app.clock.advance(183 * 24 * 3600 * 1000);
    let (status, body) = refresh(&app, &user.refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, err("Refresh token expired"));
    assert_eq!(
        refresh(&app, &user.refresh_token).await.1,
        err("Invalid request")
    );
}

/// Spent codes are kept to catch replays, but only while they could still be redeemed.
async fn housekeeping_forgets_expired_codes(app: TestApp) {
    let count = || async {
        let mut conn = raw_connection(&app).await;
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM access_codes")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    let user = app.user("Tidy").await; // registration issued (and spent) one code
    app.clock.advance(5 * 60 * 1000);
    new_code(&app, &user, "fresh").await; // unspent, five minutes younger
    app.state.core.housekeeping().await.unwrap();
    assert_eq!(count().await, 2, "nothing has expired yet");
    app.clock.advance(5 * 60 * 1000 + 1);
    app.state.core.housekeeping().await.unwrap();
    assert_eq!(count().await, 1, "the first code expired and is gone");
    app.clock.advance(5 * 60 * 1000);
    app.state.core.housekeeping().await.unwrap();
    assert_eq!(count().await, 0);
}
