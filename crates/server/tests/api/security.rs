//! Settings → Security: the sessions list with sign-out, and the access log (`/settings/activity`
//! and `activeUser.activity`): what is recorded, paging, filters, retention, and what is refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    sessions_list_devices_and_sign_out_one_or_all_others,
    session_forms_refuse_forged_and_foreign_requests,
    activity_records_what_happened_and_pages,
    activity_is_kept_for_the_retention_period,
    expired_and_newly_located_tokens_are_noted,
    activity_page_filters_and_refuses_bad_input,
    speckle_sign_ins_are_sessions_with_a_device,
);

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
                     (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/120.0.0.0 Safari/537.36";

/// The id in the sign-out form of the session row that mentions `device`.
fn sign_out_id(page: &str, device: &str) -> String {
    let row = page
        .split("<tr>")
        .find(|row| row.contains(device))
        .unwrap_or_else(|| panic!("a session row for {device}: {page}"));
    let rest = row
        .split("/settings/sessions/")
        .nth(1)
        .expect("a sign-out form in the row");
    rest.split("/sign-out").next().unwrap().to_owned()
}

async fn signed_in(browser: &Browser<'_>) -> bool {
    browser.get("/settings/profile").await.status() == StatusCode::OK
}

async fn sessions_list_devices_and_sign_out_one_or_all_others(app: TestApp) {
    let user = app.user("Session Keeper").await;
    let laptop = Browser::with_user_agent(&app, LAPTOP);
    laptop.sign_in(&user).await;
    let phone = Browser::with_user_agent(&app, PHONE);
    phone.sign_in(&user).await;

    let res = laptop.get("/settings/sessions").await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("Chrome on Linux"), "{page}");
    assert!(page.contains("Safari on iPhone"), "{page}");
    assert!(page.contains("127.0.0.1"), "{page}");
    assert!(page.contains("This session"), "{page}");
    assert!(page.contains("Sign out all other sessions"));
    // Every session but this one has a sign-out button: the phone's, and the one Speckle's
    // sign-in flow gave the API token of `app.user` (a web-app token, from an unknown device).
    assert_eq!(page.matches("/sign-out\"").count(), 2, "{page}");
    assert!(page.contains("Unknown device"), "{page}");
    let phone_id = sign_out_id(&page, "Safari on iPhone");

    let csrf = laptop.csrf();
    let res = laptop
        .post(
            &format!("/settings/sessions/{phone_id}/sign-out"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(res.headers()), "/settings/sessions");
    assert!(!signed_in(&phone).await, "the phone is signed out at once");
    assert!(signed_in(&laptop).await, "the laptop stays");

    // Two more sessions; "all others" ends both and keeps this one.
    phone.sign_in(&user).await;
    let tablet = Browser::new(&app);
    tablet.sign_in(&user).await;
    laptop.get("/settings/sessions").await;
    let csrf = laptop.csrf();
    let res = laptop
        .post("/settings/sessions/sign-out-others", &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!signed_in(&phone).await);
    assert!(!signed_in(&tablet).await);
    assert!(signed_in(&laptop).await);
    let page = laptop.get("/settings/sessions").await.text().await.unwrap();
    assert!(!page.contains("Sign out all other sessions"), "{page}");
    assert!(!page.contains("Safari on iPhone"), "{page}");

    // The API token of the user (from Speckle's sign-in flow) is a session too, ended with the
    // others: it came from the web app.
    let (status, _) = app.whoami(&user.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let activity = laptop.get("/settings/activity").await.text().await.unwrap();
    assert!(activity.contains("Signed out"), "{activity}");
    assert!(
        activity.contains("3 other sessions"),
        "the phone, the tablet and the API token: {activity}"
    );
}

async fn session_forms_refuse_forged_and_foreign_requests(app: TestApp) {
    let user = app.user("Careful Person").await;
    let mine = Browser::new(&app);
    mine.sign_in(&user).await;
    let other_device = Browser::with_user_agent(&app, PHONE);
    other_device.sign_in(&user).await;
    let page = mine.get("/settings/sessions").await.text().await.unwrap();
    let target = sign_out_id(&page, "Safari on iPhone");

    // No CSRF token, or a forged one: refused, nothing ended.
    for form in [vec![], vec![("csrf", "forged")]] {
        let res = mine
            .post(&format!("/settings/sessions/{target}/sign-out"), &form)
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = mine.post("/settings/sessions/sign-out-others", &form).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    assert!(signed_in(&other_device).await);

    // Someone else cannot end my session, even with a valid form of their own.
    let stranger = app.user("Stranger").await;
    let theirs = Browser::new(&app);
    theirs.sign_in(&stranger).await;
    theirs.get("/settings/sessions").await;
    let csrf = theirs.csrf();
    let res = theirs
        .post(
            &format!("/settings/sessions/{target}/sign-out"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("There is no such session of yours.")
    );
    assert!(signed_in(&other_device).await, "the stranger ended nothing");

    // A personal access token is not a session: its id is refused the same way.
    let pat = app.pat(&user.token, &["streams:read"]).await;
    mine.get("/settings/sessions").await;
    let csrf = mine.csrf();
    let res = mine
        .post(
            &format!("/settings/sessions/{}/sign-out", &pat[..10]),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.whoami(&pat).await.0, StatusCode::OK);

    // Signed out, the pages send the person to sign in and change nothing.
    let anonymous = Browser::new(&app);
    let res = anonymous.get("/settings/sessions").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(res.headers()).starts_with("/authn/login"));
    let res = anonymous.get("/settings/activity").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

const ACTIVITY: &str = "query($limit: Int!, $cursor: String, $kinds: [UserActivityKind!]) {
  activeUser { activity(limit: $limit, cursor: $cursor, kinds: $kinds) {
    totalCount cursor items { id kind label time address userAgent subject subjectId } } } }";

async fn activity(
    app: &TestApp,
    token: &str,
    limit: i64,
    cursor: Option<&str>,
    kinds: Value,
) -> Value {
    let (status, body) = app
        .graphql(
            Some(token),
            ACTIVITY,
            json!({ "limit": limit, "cursor": cursor, "kinds": kinds }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["activeUser"]["activity"].clone()
}

fn kinds(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn activity_records_what_happened_and_pages(app: TestApp) {
    let user = app.user("Logged Person").await;
    // A failed sign-in from a named client, then a good one.
    let res = app
        .client
        .post(format!("{}/auth/local/login?challenge=abc", app.url))
        .header("user-agent", "specklepy/2.0")
        .json(&json!({ "email": user.email, "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let mut tokens = Vec::new();
    for _ in 0..3 {
        app.clock.advance(1);
        tokens.push(
            app.pat(
                &user.token,
                &["streams:read", "tokens:read", "profile:read"],
            )
            .await,
        );
    }
    app.clock.advance(1);
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($t: String!) { apiTokenRevoke(token: $t) }",
            json!({ "t": tokens[0] }),
        )
        .await;
    assert_eq!(body["data"]["apiTokenRevoke"], true, "{body}");
    app.clock.advance(1);
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($t: String!) { apiTokenRegenerate(token: $t) }",
            json!({ "t": &tokens[1][..10] }),
        )
        .await;
    let regenerated = body["data"]["apiTokenRegenerate"]
        .as_str()
        .unwrap()
        .to_owned();

    // Newest first, two at a time, every line once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    loop {
        let page = activity(&app, &user.token, 2, cursor.as_deref(), Value::Null).await;
        assert!(page["items"].as_array().unwrap().len() <= 2);
        total.get_or_insert(page["totalCount"].as_i64().unwrap());
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let seen_kinds: Vec<&str> = seen.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        &seen_kinds[..5],
        [
            "TOKEN_REGENERATED",
            "TOKEN_REVOKED",
            "TOKEN_CREATED",
            "TOKEN_CREATED",
            "TOKEN_CREATED"
        ],
        "{seen:#?}"
    );
    assert!(seen_kinds.contains(&"SIGN_IN_FAILED"), "{seen_kinds:?}");
    assert!(
        seen_kinds.contains(&"SIGN_IN"),
        "the sign-in of app.user: {seen_kinds:?}"
    );
    assert_eq!(Some(seen.len() as i64), total);
    let ids: std::collections::HashSet<&str> =
        seen.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), seen.len(), "no line twice");
    let failed = seen.iter().find(|l| l["kind"] == "SIGN_IN_FAILED").unwrap();
    assert_eq!(failed["address"], "127.0.0.1");
    assert_eq!(failed["userAgent"], "specklepy/2.0");
    let revoked = &seen[1];
    assert_eq!(revoked["subject"], "test token");
    assert_eq!(revoked["subjectId"], &tokens[0][..10]);
    assert_eq!(revoked["label"], "Token revoked");

    // By kind.
    let created = activity(&app, &user.token, 10, None, json!(["TOKEN_CREATED"])).await;
    assert_eq!(kinds(&created), ["TOKEN_CREATED"; 3]);
    assert_eq!(created["totalCount"], 3);

    // Never a secret.
    let everything = activity(&app, &user.token, 100, None, Value::Null)
        .await
        .to_string();
    for secret in tokens.iter().chain([&regenerated, &user.token]) {
        assert!(!everything.contains(&secret[10..]), "a secret in the log");
    }

    // Only for oneself, with tokens:read; a bad cursor or limit is a clear error.
    let no_scope = app
        .pat(&user.token, &["streams:read", "profile:read"])
        .await;
    let (_, body) = app
        .graphql(Some(&no_scope), ACTIVITY, json!({ "limit": 5 }))
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN", "{body}");
    let (_, body) = app
        .graphql(
            Some(&user.token),
            ACTIVITY,
            json!({ "limit": 5, "cursor": "nonsense!" }),
        )
        .await;
    assert!(first_error(&body).1.contains("cursor"), "{body}");
    let (_, body) = app
        .graphql(Some(&user.token), ACTIVITY, json!({ "limit": 1000 }))
        .await;
    assert!(first_error(&body).1.contains("limit"), "{body}");
    let other = app.user("Someone Else").await;
    let (_, body) = app
        .graphql(
            Some(&other.token),
            "query($id: String!) { otherUser(id: $id) { id } user(id: $id) { activity { totalCount } } }",
            json!({ "id": user.id }),
        )
        .await;
    assert!(
        body.get("errors").is_some(),
        "another user's log is not readable: {body}"
    );
}

async fn activity_is_kept_for_the_retention_period(app: TestApp) {
    let user = app.user("Old Timer").await;
    let reader = app.pat(&user.token, &["tokens:read", "profile:read"]).await;
    activity(&app, &reader, 1, None, Value::Null).await;
    // The reader's first use (a new address) becomes a line in the housekeeping.
    app.state.core.housekeeping().await.unwrap();
    let before = activity(&app, &reader, 100, None, Value::Null).await;
    assert!(before["totalCount"].as_i64().unwrap() >= 2, "{before}");
    app.clock.advance(89 * DAY);
    app.login(&user.email, "wrong password").await;
    app.state.core.housekeeping().await.unwrap();
    let kept = activity(&app, &reader, 100, None, Value::Null).await;
    assert_eq!(
        kept["totalCount"],
        before["totalCount"].as_i64().unwrap() + 1
    );
    // Past 90 days, the old lines go; the recent one stays.
    app.clock.advance(2 * DAY);
    app.state.core.housekeeping().await.unwrap();
    let pruned = activity(&app, &reader, 100, None, Value::Null).await;
    assert_eq!(kinds(&pruned), ["SIGN_IN_FAILED"], "{pruned}");
}

async fn expired_and_newly_located_tokens_are_noted(app: TestApp) {
    let user = app.user("Token Watcher").await;
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
            json!({ "t": { "name": "short lived", "scopes": ["streams:read"], "lifespan": 3_600_000 } }),
        )
        .await;
    let short = body["data"]["apiTokenCreate"].as_str().unwrap().to_owned();
    let reader = app.pat(&user.token, &["tokens:read", "profile:read"]).await;
    // Two uses from one address are one "new address" line.
    assert_eq!(app.whoami(&short).await.0, StatusCode::OK);
    assert_eq!(app.whoami(&short).await.0, StatusCode::OK);
    // Sightings become lines in the housekeeping (the database says whether one is new).
    app.state.core.housekeeping().await.unwrap();
    let page = activity(&app, &reader, 100, None, json!(["TOKEN_NEW_ADDRESS"])).await;
    let subjects: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects.iter().filter(|s| **s == "short lived").count(),
        1,
        "{page}"
    );
    assert_eq!(page["items"][0]["address"], "127.0.0.1");

    app.clock.advance(2 * 3_600_000);
    assert_eq!(app.whoami(&short).await.0, StatusCode::FORBIDDEN);
    let page = activity(&app, &reader, 10, None, json!(["TOKEN_EXPIRED"])).await;
    assert_eq!(page["totalCount"], 1, "{page}");
    assert_eq!(page["items"][0]["subject"], "short lived");
    assert_eq!(page["items"][0]["subjectId"], &short[..10]);
}

async fn activity_page_filters_and_refuses_bad_input(app: TestApp) {
    let user = app.user("Page Reader").await;
    app.pat(&user.token, &["streams:read"]).await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let res = browser.get("/settings/activity").await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("Token created"), "{page}");
    assert!(page.contains("Signed in"), "{page}");
    assert!(page.contains("Kept 90 days"), "{page}");
    let page = browser
        .get("/settings/activity?kind=token_created")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Token created"));
    assert!(!page.contains("<strong>Signed in</strong>"), "{page}");
    let res = browser.get("/settings/activity?kind=nonsense").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("There is no activity kind")
    );
    let res = browser.get("/settings/activity?cursor=%%%").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Paging on the page: 60 lines make two pages, linked by "Older".
    for _ in 0..60 {
        app.login(&user.email, "wrong password").await;
    }
    let page = browser
        .get("/settings/activity")
        .await
        .text()
        .await
        .unwrap();
    let older = page
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/settings/activity?cursor="))
        .map(|s| s.split('"').next().unwrap().to_owned())
        .expect("an Older link");
    let res = browser
        .get(&format!("/settings/activity?cursor={older}"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = res.text().await.unwrap();
    assert!(
        second.contains("Token created"),
        "the oldest lines are on the second page"
    );
}

const DAY: i64 = 24 * 3600 * 1000;

const FIREFOX: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 \
                       Firefox/121.0";

/// Speckle's frontend signs in with `/auth/local/login` and exchanges the code at `/auth/token`
/// from the browser: that token, and each refresh of it, is a session with the browser's device.
async fn speckle_sign_ins_are_sessions_with_a_device(app: TestApp) {
    let user = app.user("Frontend User").await;
    let res = app.login(&user.email, &user.password).await;
    let code = access_code(&location(res.headers()));
    let post = |body: Value| {
        app.client
            .post(format!("{}/auth/token", app.url))
            .header("user-agent", FIREFOX)
            .json(&body)
            .send()
    };
    let pair: Value = post(json!({
        "appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": code, "challenge": CHALLENGE
    }))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let page = browser
        .get("/settings/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        page.matches("<strong>Firefox on Windows</strong>").count(),
        1,
        "{page}"
    );
    // A refresh buys a new session token; it keeps the device.
    let refreshed = post(json!({
        "appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": pair["refreshToken"]
    }))
    .await
    .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    let page = browser
        .get("/settings/sessions")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        page.matches("<strong>Firefox on Windows</strong>").count(),
        2,
        "{page}"
    );
}
