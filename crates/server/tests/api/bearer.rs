//! Bearer authentication on every route.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    token_sources_header_any_case_bare_or_cookie,
    invalid_tokens_get_403_on_every_route,
    no_token_is_anonymous,
    a_cached_check_touches_no_database_and_no_password_hash,
    revocation_and_logout_take_effect_on_the_next_request,
    health_checks_answer_whatever_the_token,
    liveness_answers_without_the_database,
    revocation_reaches_other_replicas,
);

async fn status_of(app: &TestApp, headers: &[(&str, String)]) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&json!({"query": "{ activeUser { id } }"}));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn token_sources_header_any_case_bare_or_cookie(app: TestApp) {
    let user = app.user("Sources").await;
    let t = &user.token;
    for headers in [
        vec![("authorization", format!("Bearer {t}"))],
        vec![("authorization", format!("bearer {t}"))],
        vec![("authorization", format!("BEARER {t}"))],
        vec![("authorization", t.clone())],
        vec![("cookie", format!("theme=dark; authn={t}"))],
    ] {
        let (status, body) = status_of(&app, &headers).await;
        assert_eq!(status, StatusCode::OK, "{headers:?}");
        assert_eq!(
            body["data"]["activeUser"]["id"],
            user.id.as_str(),
            "{headers:?}"
        );
    }
}

async fn invalid_tokens_get_403_on_every_route(app: TestApp) {
    let user = app.user("Invalid").await;
    let t = &user.token;
    let wrong_secret = format!("{}{}", &t[..10], "0".repeat(32));
    let bad: Vec<Vec<(&str, String)>> = vec![
        vec![("authorization", "Bearer garbage".into())],
        vec![("authorization", "Bearer ".into())],
        vec![("authorization", format!("Basic {t}"))],
        vec![("authorization", "Bearer None".into())],
        vec![("authorization", format!("Bearer {}", &t[..41]))],
        vec![("authorization", format!("Bearer {t}EXTRAJUNK"))],
        vec![("authorization", format!("Bearer {}", t.to_uppercase()))],
        vec![("authorization", format!("Bearer {wrong_secret}"))],
        vec![("authorization", format!("Bearer {}", "a".repeat(42)))],
        vec![("cookie", "authn=stale".into())],
    ];
    for headers in bad {
        let (status, body) = status_of(&app, &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(body.to_string(), INVALID_TOKEN, "{headers:?}");
    }
    // Not only GraphQL: a stale token breaks the REST routes too, as in Speckle.
    for path in [
        "/auth/local/login?challenge=c",
        "/auth/token",
        "/auth/logout",
    ] {
        let res = app
            .client
            .post(format!("{}{path}", app.url))
            .bearer_auth("garbage")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(res.text().await.unwrap(), INVALID_TOKEN);
    }
    let res = app
        .client
        .get(format!("{}/graphql?query={{serverInfo{{name}}}}", app.url))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The real token was not harmed by the failed attempts.
    assert_eq!(app.whoami(t).await.0, StatusCode::OK);
}

async fn no_token_is_anonymous(app: TestApp) {
    let (status, body) = status_of(&app, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"data": {"activeUser": null}}));
    let (status, body) = status_of(&app, &[("authorization", String::new())]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an empty header is no token: {body}"
    );
}

async fn a_cached_check_touches_no_database_and_no_password_hash(app: TestApp) {
    let user = app.user("Hot Path").await;
    let pat = app
        .pat(&user.token, &["profile:read", "profile:email"])
        .await;
    // The query the bench measures: the caller's user and the server (docs/ARCHITECTURE.md,
    // "The bearer cache": both are cached).
    let query = "{ activeUser { id name email } serverInfo { name version scopes { name } } }";
    // The first use loads the token and the user into their caches.
    assert_eq!(
        app.graphql(Some(&pat), query, json!({})).await.0,
        StatusCode::OK
    );
    let db_before = app
        .state
        .store_connections
        .load(std::sync::atomic::Ordering::Relaxed);
    let hashes_before = app.state.core.passwords_computed();
    for _ in 0..25 {
        let (status, body) = app.graphql(Some(&pat), query, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["errors"].is_null(), "{body}");
    }
    assert_eq!(
        app.state
            .store_connections
            .load(std::sync::atomic::Ordering::Relaxed),
        db_before,
        "checking a cached token must not use the database"
    );
    assert_eq!(app.state.core.passwords_computed(), hashes_before);
    // A change of the profile through this server shows at once.
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($u: UserUpdateInput!) { activeUserMutations { update(user: $u) { id } } }",
            json!({"u": {"name": "Renamed Path"}}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let (_, body) = app.graphql(Some(&pat), query, json!({})).await;
    assert_eq!(body["data"]["activeUser"]["name"], "Renamed Path");
}

async fn revocation_and_logout_take_effect_on_the_next_request(app: TestApp) {
    let user = app.user("Quick").await;
    let pat = app.pat(&user.token, &["profile:read"]).await;
    assert_eq!(app.whoami(&pat).await.0, StatusCode::OK);
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($t: String!) { apiTokenRevoke(token: $t) }",
            json!({"t": pat}),
        )
        .await;
    assert_eq!(body["data"]["apiTokenRevoke"], true);
    assert_eq!(app.whoami(&pat).await.0, StatusCode::FORBIDDEN);
}

async fn health_checks_answer_whatever_the_token(app: TestApp) {
    for path in ["/readiness", "/liveness"] {
        let res = app
            .client
            .get(format!("{}{path}", app.url))
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    }
}

/// `/liveness` asks nothing of the database, `/readiness` does: with the database refusing
/// connections the first stays 200 and the second turns 503. (On SQLite the file cannot be taken
/// away from an open pool, so there only the 200 is shown.)
async fn liveness_answers_without_the_database(app: TestApp) {
    let get = async |path: &str| {
        app.client
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(get("/liveness").await, StatusCode::OK);
    if !app.is_postgres() {
        return;
    }
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let admin_url = format!("{}/postgres", app.database_url.rsplit_once('/').unwrap().0);
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&admin_url).await.unwrap();
    let cut_off = async |allow: bool| {
        sqlx::query(&format!(
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS {allow}"
        ))
        .execute(&admin)
        .await
        .unwrap();
        sqlx::query(&format!(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&admin)
        .await
        .unwrap();
    };
    cut_off(false).await;
    assert_eq!(get("/liveness").await, StatusCode::OK);
    assert_eq!(get("/readiness").await, StatusCode::SERVICE_UNAVAILABLE);
    cut_off(true).await;
    let mut ready = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        ready = get("/readiness").await;
        if ready == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        ready,
        StatusCode::OK,
        "ready again once the database is back"
    );
}

/// docs/ARCHITECTURE.md, "The bearer cache": a revocation on one server reaches the token caches of the others, on
/// PostgreSQL at once (NOTIFY), and everywhere within the cache lifetime.
async fn revocation_reaches_other_replicas(app: TestApp) {
    if !app.is_postgres() {
        // One SQLite file serves one server: a second one on it is refused (see
        // `serve::a_second_server_on_one_data_directory_refuses_to_start`).
        let second = tessera_server::Application::build(
            crate::support::test_config(&app.database_url),
            std::sync::Arc::new(tessera_server::clock::SystemClock),
        )
        .await;
        let err = second
            .err()
            .expect("a second server on the same SQLite file is refused");
        assert!(
            err.to_string().contains("in use by another Tessera server"),
            "{err}"
        );
        return;
    }
    let other = app.replica().await;
    let user = app.user("Replicated").await;
    let pat = app.pat(&user.token, &["profile:read"]).await;
    // Both servers have the token in their cache.
    assert_eq!(app.whoami(&pat).await.0, StatusCode::OK);
    assert_eq!(other.whoami(&pat).await.0, StatusCode::OK);
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($t: String!) { apiTokenRevoke(token: $t) }",
            json!({"t": pat}),
        )
        .await;
    assert_eq!(body["data"]["apiTokenRevoke"], true);
    let acknowledged = std::time::Instant::now();
    assert_eq!(
        app.whoami(&pat).await.0,
        StatusCode::FORBIDDEN,
        "at once where it was revoked"
    );
    // The other replica hears of it through NOTIFY, well within a second.
    let mut status = StatusCode::OK;
    while acknowledged.elapsed() < std::time::Duration::from_secs(1) {
        status = other.whoami(&pat).await.0;
        if status == StatusCode::FORBIDDEN {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the other replica rejects the token within 1 s of the acknowledgement"
    );
}
