//! Issue 7: no request can stall the server, brute force is throttled, bad input gets a clear
//! error, secrets are not cached, connections are bounded.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    fragment_fan_out_is_refused_at_once,
    input_errors_are_4xx_with_a_message,
    email_variants_are_one_account,
    access_codes_are_checked_whole_and_challenges_stored_as_digests,
    oversized_bodies_get_413,
    secret_bearing_responses_are_not_cached,
    planted_csrf_pairs_are_refused,
    idle_connections_do_not_stop_readiness,
);

const RATE_LIMITED: &str = "You have sent too many requests. You are being rate limited. Please \
                            try again later.";

/// `query { ...F0 } fragment F0 on Query { ...F1 ...F1 } … fragment Fk on Query { leaf }`.
fn fan_out(k: usize) -> String {
    let mut doc = String::from("query { ...F0 }\n");
    for i in 0..k {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
            n = i + 1
        ));
    }
    doc.push_str(&format!(
        "fragment F{k} on Query {{ serverInfo {{ name }} }}\n"
    ));
    doc
}

async fn fragment_fan_out_is_refused_at_once(app: TestApp) {
    let doc = fan_out(30);
    let started = Instant::now();
    let (status, body) = app.graphql(None, &doc, json!({})).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (code, message, _) = first_error(&body);
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");
    assert!(message.contains("too costly"), "{message}");
    // A generous bound: expanding the spreads would take minutes.
    assert!(took < Duration::from_secs(5), "refused in {took:?}");

    // Two clients send it in a loop; the health check keeps answering meanwhile.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut attackers = Vec::new();
    for _ in 0..2 {
        let (client, url, doc, stop) = (
            app.client.clone(),
            app.url.clone(),
            doc.clone(),
            stop.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = client
                    .post(format!("{url}/graphql"))
                    .json(&json!({ "query": doc }))
                    .send()
                    .await
                    .expect("the server answers the attacker too");
                assert_eq!(res.status(), StatusCode::BAD_REQUEST);
                sent += 1;
            }
            sent
        }));
    }
    for _ in 0..20 {
        let res = tokio::time::timeout(
            Duration::from_secs(5),
            app.client.get(format!("{}/readiness", app.url)).send(),
        )
        .await
        .expect("/readiness answers while the fan-out is sent in a loop")
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for attacker in attackers {
        assert!(attacker.await.unwrap() > 0);
    }

    // Aliases and directives are bounded too, and so is a batch.
    let aliases: String = (0..300)
        .map(|i| format!("a{i}: serverInfo {{ name }} "))
        .collect();
    let (status, body) = app
        .graphql(None, &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(first_error(&body).1.contains("aliases"), "{body}");
    let batch: Vec<Value> = (0..21)
        .map(|_| json!({"query": "{ serverInfo { name } }"}))
        .collect();
    let res = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("at most 20 operations"));
}

/// What a user can see of their own stored data, to show that refused input changed nothing.
async fn snapshot(app: &TestApp, token: &str) -> Value {
    let (_, body) = app
        .graphql(
            Some(token),
            "{ activeUser { name bio company avatar email
                 apiTokens { name scopes } createdApps { name redirectUrl description }
                 projects { totalCount items { name description models { totalCount } } } } }",
            json!({}),
        )
        .await;
    body
}

async fn input_errors_are_4xx_with_a_message(app: TestApp) {
    let user = app.user("Input Checker").await;
    let t = Some(user.token.as_str());
    let (_, created) = app
        .graphql(
            t,
            "mutation { projectMutations { create(input: {name: \"Kept\"}) { id } } }",
            json!({}),
        )
        .await;
    let project_id = created["data"]["projectMutations"]["create"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    app.register_app(&user.token, "https://kept.example/cb", &["profile:read"])
        .await;
    let before = snapshot(&app, &user.token).await;
    let long = |n: usize| "x".repeat(n);
    let cases: Vec<(&str, Value)> = vec![
        // Wrong types for input objects and scalars.
        (
            "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
            json!({"t": 5}),
        ),
        (
            "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
            json!({"t": {"name": 5, "scopes": "streams:read"}}),
        ),
        (
            "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
            json!({"t": {"name": long(600), "scopes": ["streams:read"]}}),
        ),
        (
            "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
            json!({"t": {"name": "n", "scopes": ["streams:read"], "lifespan": "forever"}}),
        ),
        (
            "mutation($u: UserUpdateInput!) { activeUserMutations { update(user: $u) { id } } }",
            json!({"u": {"name": long(600)}}),
        ),
        (
            "mutation($u: UserUpdateInput!) { activeUserMutations { update(user: $u) { id } } }",
            json!({"u": {"bio": long(5000)}}),
        ),
        (
            "mutation($u: UserUpdateInput!) { activeUserMutations { update(user: $u) { id } } }",
            json!({"u": {"name": "Eve\u{202E}"}}),
        ),
        (
            "mutation($u: UserUpdateInput!) { activeUserMutations { update(user: $u) { id } } }",
            json!({"u": []}),
        ),
        (
            "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
            json!({"a": {"name": long(300), "description": "d", "redirectUrl": "https://a.example/cb", "scopes": ["profile:read"]}}),
        ),
        (
            "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
            json!({"a": {"name": "A", "description": "d", "redirectUrl": "view-source:https://a.example/", "scopes": ["profile:read"]}}),
        ),
        (
            "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
            json!({"a": {"name": "A", "description": "d", "redirectUrl": format!("https://a.example/{}", long(2000)), "scopes": ["profile:read"]}}),
        ),
        (
            "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
            json!({"a": {"name": "A", "description": long(600), "redirectUrl": "https://a.example/cb", "scopes": ["profile:read"]}}),
        ),
        (
            "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
            json!({"a": {"name": "A", "description": "d", "redirectUrl": "https://a.example/cb", "scopes": []}}),
        ),
        (
            "mutation($i: ProjectCreateInput!) { projectMutations { create(input: $i) { id } } }",
            json!({"i": {"name": long(600)}}),
        ),
        (
            "mutation($i: ProjectCreateInput!) { projectMutations { create(input: $i) { id } } }",
            json!({"i": {"name": "P", "visibility": "SECRET"}}),
        ),
        (
            "mutation($i: ProjectUpdateInput!) { projectMutations { update(update: $i) { id } } }",
            json!({"i": {"id": project_id, "description": long(70_000)}}),
        ),
        (
            "mutation($i: CreateModelInput!) { modelMutations { create(input: $i) { id } } }",
            json!({"i": {"projectId": project_id, "name": long(600)}}),
        ),
        (
            "query($s: String!) { userSearch(query: $s) { items { id } } }",
            json!({"s": long(300_000)}),
        ),
        (
            "query($s: String!) { userSearch(query: $s) { items { id } } }",
            json!({"s": "%_%_%_".repeat(1000)}),
        ),
        (
            "query($s: String) { activeUser { projects(filter: {search: $s}) { totalCount } } }",
            json!({"s": long(100_000)}),
        ),
        (
            "query($c: String) { activeUser { projects(cursor: $c) { totalCount } } }",
            json!({"c": "not a cursor"}),
        ),
        (
            "query($l: Int!) { activeUser { projects(limit: $l) { totalCount } } }",
            json!({"l": -5}),
        ),
        (
            "query($l: Int!) { activeUser { projects(limit: $l) { totalCount } } }",
            json!({"l": 1e12}),
        ),
        (
            "mutation($t: String!) { apiTokenRevoke(token: $t) }",
            json!({"t": long(10_000)}),
        ),
        (
            "query($id: String!) { project(id: $id) { id } }",
            json!({"id": long(100_000)}),
        ),
        (
            "query($id: String!) { otherUser(id: $id) { id } }",
            json!({"id": ["array"]}),
        ),
    ];
    for (query, variables) in &cases {
        let (status, body) = app.graphql(t, query, variables.clone()).await;
        assert!(
            status.is_client_error() || status == StatusCode::OK,
            "{status} for {variables}: {body}"
        );
        let errors = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no error for {variables}: {body}"));
        for err in errors {
            let code = err["extensions"]["code"].as_str().unwrap_or_default();
            assert_ne!(code, "INTERNAL_SERVER_ERROR", "{variables}: {body}");
            assert!(
                err["extensions"]["statusCode"]
                    .as_u64()
                    .is_none_or(|s| s < 500),
                "{variables}: {body}"
            );
            assert!(!err["message"].as_str().unwrap_or_default().is_empty());
        }
    }
    let (_, body) = app.graphql(t, cases[0].0, cases[0].1.clone()).await;
    let (code, message, _) = first_error(&body);
    assert_eq!(code, "BAD_USER_INPUT", "{body}");
    assert!(
        message.contains("apiTokenCreate"),
        "the message names the field: {message}"
    );

    // REST routes with malformed and over-long values.
    let long_challenge = format!("/auth/local/login?challenge={}", long(1000));
    let rest: Vec<(&str, Value)> = vec![
        (
            "/auth/local/login?challenge=c",
            json!({"email": long(10_000), "password": "x"}),
        ),
        (
            "/auth/local/login?challenge=c",
            json!({"email": user.email, "password": long(50_000)}),
        ),
        (
            "/auth/local/login?challenge=c",
            json!({"email": ["a"], "password": "x"}),
        ),
        (
            "/auth/local/register?challenge=c",
            json!({"email": "new@example.org", "password": long(2000), "name": "N"}),
        ),
        (
            "/auth/local/register?challenge=c",
            json!({"email": "n\u{202E}w@example.org", "password": "password123", "name": "N"}),
        ),
        (
            "/auth/local/register?challenge=c",
            json!({"email": "new@example.org", "password": "password123", "name": "N\u{200B}"}),
        ),
        (
            &long_challenge,
            json!({"email": user.email, "password": user.password}),
        ),
        (
            "/auth/token",
            json!({"appId": long(5000), "appSecret": "x", "accessCode": long(42), "challenge": "c"}),
        ),
        (
            "/auth/token",
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": long(100)}),
        ),
        ("/auth/token", json!({"appId": {"nested": 1}})),
        (
            "/oauth/token",
            json!({"grant_type": "authorization_code", "code": long(5000), "client_id": "x", "code_verifier": long(500)}),
        ),
        ("/oauth/token", json!({"grant_type": long(5000)})),
        ("/auth/logout", json!({"token": long(5000)})),
    ];
    for (path, body) in &rest {
        let res = app.post_json(path, body.clone()).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_client_error(), "{path} {body}: {status} {text}");
        assert!(!text.trim().is_empty(), "{path}: a message");
    }
    for query in [
        format!(
            "/auth/accesscode?appId={}&challenge=c&token={}",
            long(5000),
            user.token
        ),
        format!(
            "/auth/accesscode?appId=spklwebapp&challenge={}&token={}",
            long(5000),
            user.token
        ),
        format!("/authn/verify/{}/{}", long(3000), long(3000)),
        format!("/graphql?query={}", "{".repeat(5000)),
    ] {
        let res = app
            .client
            .get(format!("{}{query}", app.url))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_client_error(),
            "{}: {}",
            &query[..40],
            res.status()
        );
    }
    assert_eq!(
        snapshot(&app, &user.token).await,
        before,
        "refused input changed nothing"
    );
    assert_eq!(
        app.login(&user.email, &user.password).await.status(),
        StatusCode::FOUND
    );
}

async fn email_variants_are_one_account(app: TestApp) {
    let res = app
        .register("josé@bücher.example", "password123", "José")
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    for variant in [
        "jose\u{301}@bücher.example",
        "JOSÉ@BÜCHER.EXAMPLE",
        "josé@xn--bcher-kva.example",
        "jo\u{200B}sé@bücher.example",
        "jos\u{E9}@bu\u{308}cher.example",
    ] {
        let res = app.register(variant, "password123", "Impostor").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{variant:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["error"]["message"], "Email taken. Try logging in?",
            "{variant:?}"
        );
        // And each variant signs in to the one account.
        assert_eq!(
            app.login(variant, "password123").await.status(),
            StatusCode::FOUND,
            "{variant:?}"
        );
    }
    let res = app
        .register("ad\u{202E}min@example.org", "password123", "Bidi")
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("not valid"));
    let res = app
        .register("plain@example.org", "password123", "Zero\u{200B}Width")
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("invisible or control characters")
    );
}

async fn access_codes_are_checked_whole_and_challenges_stored_as_digests(app: TestApp) {
    let res = app
        .register("whole@example.org", "password123", "Whole")
        .await;
    let code = access_code(&location(res.headers()));
    let tampered = format!("{}{}", "0123456789", &code[10..]);
    let (status, body) = app.exchange(&tampered, CHALLENGE).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a code with another id part: {body}"
    );
    assert_eq!(body["err"], "Access code not found.");
    let mut conn = raw_connection(&app).await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT challenge FROM access_codes")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], CHALLENGE, "the plain challenge is not kept");
    assert_eq!(stored[0], tessera_proto::pkce::challenge_digest(CHALLENGE));
    let (status, _) = app.exchange(&code, CHALLENGE).await;
    assert_eq!(status, StatusCode::OK, "the whole code still works");
}

async fn oversized_bodies_get_413(app: TestApp) {
    let big = "x".repeat(200 * 1024);
    for path in [
        "/auth/local/login?challenge=c",
        "/auth/token",
        "/oauth/token",
    ] {
        let res = app
            .post_json(path, json!({"email": big, "password": "x"}))
            .await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(res.text().await.unwrap().contains("too large"), "{path}");
    }
    let res = app
        .post_json(
            "/graphql",
            json!({"query": "{ serverInfo { name } }", "x": "y".repeat(2 << 20)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // An avatar-sized GraphQL body is fine.
    let user = app.user("Avatar").await;
    let avatar = format!("data:image/png;base64,{}", "A".repeat(400_000));
    let (status, body) = app
        .graphql(
            Some(&user.token),
            "mutation($u: UserUpdateInput!) { activeUserMutations { update(user: $u) { id } } }",
            json!({"u": {"avatar": avatar}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["errors"].is_null(), "{body}");
}

fn assert_no_store(res: &reqwest::Response, what: &str) {
    let value = res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok());
    assert!(
        value.is_some_and(|v| v.split(',').any(|d| d.trim() == "no-store")),
        "{what} must not be cached: {value:?}"
    );
}

async fn secret_bearing_responses_are_not_cached(app: TestApp) {
    let res = app
        .register("cache@example.org", "password123", "Cache")
        .await;
    assert_no_store(&res, "the registration redirect (a code in Location)");
    let res = app.login("cache@example.org", "password123").await;
    assert_no_store(&res, "the sign-in redirect (a code in Location)");
    let code = access_code(&location(res.headers()));
    let res = app
        .post_json(
            "/auth/token",
            json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": code, "challenge": CHALLENGE}),
        )
        .await;
    assert_no_store(&res, "/auth/token");
    let pair: Value = res.json().await.unwrap();
    let token = pair["token"].as_str().unwrap().to_owned();
    let res = app
        .client
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&token)
        .json(&json!({"query": "mutation { apiTokenCreate(token: {name: \"t\", scopes: [\"profile:read\"]}) }"}))
        .send()
        .await
        .unwrap();
    assert_no_store(&res, "apiTokenCreate");
    let (id, _) = app
        .register_app(&token, "https://cache.example/cb", &["profile:read"])
        .await;
    let res = app
        .client
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&token)
        .json(&json!({"query": format!("{{ app(id: \"{id}\") {{ secret }} }}")}))
        .send()
        .await
        .unwrap();
    assert_no_store(&res, "app { secret }");
    for prevent in ["&preventRedirect=true", ""] {
        let res = app
            .client
            .get(format!(
                "{}/auth/accesscode?appId={id}&challenge=c&token={token}{prevent}",
                app.url
            ))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{}",
            res.status()
        );
        assert_no_store(&res, "/auth/accesscode");
    }
    let (verifier, challenge) = pkce_pair();
    let browser = Browser::new(&app);
    let user = User {
        id: String::new(),
        email: "cache@example.org".into(),
        password: "password123".into(),
        token: token.clone(),
        refresh_token: String::new(),
    };
    browser.sign_in(&user).await;
    let back = browser
        .authorize(&format!(
            "/authn/verify/{id}/{challenge}?code_challenge_method=S256"
        ))
        .await;
    let code = access_code(&back);
    let res = app
        .post_json(
            "/oauth/token",
            json!({"appId": id, "accessCode": code, "codeVerifier": verifier}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_no_store(&res, "/oauth/token");
    let res = browser.get("/").await;
    assert_no_store(&res, "the account page");
    // The stylesheet may be cached.
    let res = app
        .client
        .get(format!("{}/assets/tessera.css", app.url))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(
        res.headers().get("strict-transport-security").is_none(),
        "not over plain http"
    );
}

async fn planted_csrf_pairs_are_refused(app: TestApp) {
    let user = app.user("Planted").await;
    // An attacker's own browser gets a genuine cookie and form token ...
    let attacker = Browser::new(&app);
    attacker.get("/authn/login").await;
    let (cookie, field) = (
        attacker.cookie("__Host-tessera-csrf").unwrap(),
        attacker.csrf(),
    );
    assert_ne!(
        cookie, field,
        "the form token is derived, not a copy of the cookie"
    );
    // ... and a matching cookie/field pair made up by anyone is refused.
    let victim = Browser::new(&app);
    victim.set_cookie("__Host-tessera-csrf", &cookie);
    let res = victim
        .post(
            "/authn/login",
            &[
                ("csrf", &cookie),
                ("email", &user.email),
                ("password", &user.password),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "cookie copied into the field"
    );
    // A signed-in victim's forms are bound to their own session: the attacker's valid
    // browser-bound pair does not approve an app for them.
    victim.sign_in(&user).await;
    victim.set_cookie("__Host-tessera-csrf", &cookie);
    let res = victim
        .post(
            "/authn/verify/sdui/somechallenge",
            &[("csrf", &field), ("decision", "allow")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get("location").is_none());
    let other = Browser::new(&app);
    other.sign_in(&app.user("Other").await).await;
    let res = victim
        .post("/authn/logout", &[("csrf", &other.csrf())])
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "another session's token"
    );
    victim.get("/").await;
    let res = victim
        .post("/authn/logout", &[("csrf", &victim.csrf())])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "its own token works");
}

async fn idle_connections_do_not_stop_readiness(app: TestApp) {
    let address = app.url.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(&address).await.expect("connect"));
    }
    // Slow headers: started, never finished.
    for stream in idle.iter_mut().take(500) {
        stream
            .write_all(b"GET /readiness HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
    }
    for _ in 0..5 {
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            app.client.get(format!("{}/readiness", app.url)).send(),
        )
        .await
        .expect("/readiness answers beside 2,000 idle connections")
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The server closes a connection that does not finish its headers in time.
    let mut slow = idle.pop().unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "a slow-header connection is closed by the server"
    );
}

/// With the cap reached, a new connection gets a clean 503 and the server recovers once the
/// connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_cleanly() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.max_connections = 20).await else {
        return;
    };
    let address = app.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(&address).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_string(&mut answer))
        .await
        .expect("the refusal comes at once")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("too many connections"), "{answer}");
    drop(held);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(res) = app
            .client
            .get(format!("{}/readiness", app.url))
            .send()
            .await
            && res.status() == StatusCode::OK
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the server recovers when connections close");
}

/// Behind a trusted proxy, each test address comes from `X-Forwarded-For`.
async fn login_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(format!(
            "{}/auth/local/login?challenge={CHALLENGE}",
            app.url
        ))
        .header("x-forwarded-for", address)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

fn with_limits(config: &mut tessera_server::config::Config) {
    config.rate_limits = tessera_server::config::RateLimits::default();
    config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
}

async fn assert_rate_limited(res: reqwest::Response) -> u64 {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": RATE_LIMITED, "code": "RATE_LIMIT_ERROR"}})
    );
    retry
}

async fn wrong_passwords_are_throttled_but_the_owner_gets_in(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        with_limits(c);
        // The per-address bucket (real time) stays out of the way: this is the per-account rule.
        c.rate_limits.sign_in_per_minute = 100;
    })
    .await
    else {
        return;
    };
    let user = app.user("Target").await;
    let mut limited = None;
    let hashes = app.state.core.passwords_computed();
    for attempt in 1..=30 {
        let res = login_from(&app, "198.51.100.7", &user.email, "wrong password").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited.get_or_insert((attempt, assert_rate_limited(res).await));
        } else {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let (first_limited, _) = limited.expect("30 wrong passwords from one address meet a 429");
    assert!(
        first_limited <= 11,
        "throttled after a few failures, not at {first_limited}"
    );
    assert!(
        app.state.core.passwords_computed() - hashes < 15,
        "refused guesses never reach the hasher"
    );
    // The owner, from their own address, signs in straight away.
    let res = login_from(&app, "203.0.113.20", &user.email, &user.password).await;
    assert_eq!(
        res.status(),
        StatusCode::FOUND,
        "the owner is not locked out"
    );
    // The attacker's address waits, then may try again (it is slowed, not banned forever).
    app.clock
        .advance(tessera_server::domain::limits::MAX_PAIR_DELAY + 1);
    let res = login_from(&app, "198.51.100.7", &user.email, &user.password).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    // Without a trusted proxy, X-Forwarded-For picks no bucket: that is the rule of the other
    // test kit configuration, checked in the unit tests of `http::client`.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_throttled_but_the_owner_gets_in_sqlite() {
    wrong_passwords_are_throttled_but_the_owner_gets_in(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_throttled_but_the_owner_gets_in_postgres() {
    wrong_passwords_are_throttled_but_the_owner_gets_in(Backend::Postgres).await;
}

/// Guesses spread over two replicas are counted together: the per-account count lives in the
/// database, the per-address buckets (10 a minute on each node) do not come into play.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_split_over_two_replicas_are_counted_together() {
    let Some(app) = spawn_app_with(Backend::Postgres, with_limits).await else {
        return;
    };
    let other = app.replica_with(with_limits).await;
    let user = app.user("Replicated Target").await;
    let mut statuses = Vec::new();
    for attempt in 0..8 {
        let node = if attempt % 2 == 0 { &app } else { &other };
        statuses.push(
            login_from(node, "198.51.100.9", &user.email, "wrong")
                .await
                .status(),
        );
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        5,
        "five free failures in all, not five per replica: {statuses:?}"
    );
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_buckets_shed_a_flood() {
    let Some(app) = spawn_app_with(Backend::Sqlite, with_limits).await else {
        return;
    };
    let hashes = app.state.core.passwords_computed();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let email = format!("nobody{i}@example.org");
        statuses.push(
            login_from(&app, "192.0.2.50", &email, "wrong")
                .await
                .status(),
        );
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        limited, 20,
        "10 sign-ins a minute per address: {statuses:?}"
    );
    assert_eq!(
        app.state.core.passwords_computed() - hashes,
        10,
        "the flood never reached the hasher"
    );
    // Another address is not affected; the page form answers 429 with the same wait.
    let res = login_from(&app, "192.0.2.51", "someone@example.org", "wrong").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .client
        .post(format!("{}/authn/login", app.url))
        .header("x-forwarded-for", "192.0.2.50")
        .form(&[("email", "x@example.org"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("Too many attempts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_transport_security_when_the_public_url_is_https() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.public_url = Some("https://auth.example.com".into());
    })
    .await
    else {
        return;
    };
    let res = app
        .client
        .get(format!("{}/readiness", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

/// A database locked by another writer makes a write wait, then answer 503 with a retry hint,
/// not an internal error; once the lock is gone the same request works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_is_a_503_with_a_retry_hint() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let user = app.user("Locked Out").await;
    let mut outsider = raw_connection(&app).await;
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut outsider)
        .await
        .unwrap();
    let create = || {
        app.client
            .post(format!("{}/graphql", app.url))
            .bearer_auth(&user.token)
            .json(&json!({"query": "mutation { apiTokenCreate(token: {name: \"t\", scopes: [\"profile:read\"]}) }"}))
            .send()
    };
    let res = create().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    let (code, message, _) = first_error(&body);
    assert_eq!(code, "SERVICE_UNAVAILABLE", "{body}");
    assert!(message.contains("busy"), "{message}");
    sqlx::query("COMMIT").execute(&mut outsider).await.unwrap();
    let res = create().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["data"]["apiTokenCreate"].is_string(), "{body}");
}

/// Without a trusted-proxy setting, `X-Forwarded-For` is ignored: a client cannot pick a fresh
/// bucket for each guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_ignored_unless_the_proxy_is_trusted() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.rate_limits = tessera_server::config::RateLimits::default();
    })
    .await
    else {
        return;
    };
    let mut limited = 0;
    for i in 0..15 {
        let res = login_from(
            &app,
            &format!("203.0.113.{i}"),
            &format!("u{i}@example.org"),
            "x",
        )
        .await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert_eq!(limited, 5, "all fifteen came from one address: the peer");
}
