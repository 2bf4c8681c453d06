//! Personal access tokens: `apiTokenCreate`, `apiTokenRevoke`, `activeUser.apiTokens`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    pat_is_42_hex_and_works_with_its_scopes,
    pat_creation_rules,
    pat_creation_needs_tokens_write_and_a_token,
    only_a_digest_and_last_chars_are_stored,
    tokens_are_listed_for_their_owner_only,
    revoke_accepts_id_full_token_or_bearer_form,
    revoking_someone_elses_token_fails,
    tokens_expire_at_their_lifespan,
    regenerating_a_token_replaces_its_secret,
);

const CREATE: &str = "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }";
const REVOKE: &str = "mutation($t: String!) { apiTokenRevoke(token: $t) }";

async fn create(app: &TestApp, token: Option<&str>, input: Value) -> Value {
    app.graphql(token, CREATE, json!({ "t": input })).await.1
}

async fn pat_is_42_hex_and_works_with_its_scopes(app: TestApp) {
    let user = app.user("Scripter").await;
    let pat = app
        .pat(&user.token, &["profile:read", "streams:read"])
        .await;
    assert_eq!(pat.len(), 42);
    assert!(
        pat.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let (status, body) = app
        .graphql(Some(&pat), "{ activeUser { id name } }", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["activeUser"]["name"], "Scripter");
    // A scope it lacks is a FORBIDDEN error naming the scope.
    let (_, body) = app
        .graphql(Some(&pat), "{ activeUser { apiTokens { id } } }", json!({}))
        .await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "Your auth token does not have the required scope: tokens:read.".into(),
            Some("tokens:read".into())
        )
    );
}

async fn pat_creation_rules(app: TestApp) {
    let user = app.user("Rules").await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": "t", "scopes": []}), "No scopes provided"),
        (
            json!({"name": "t", "scopes": ["streams:read", "tokens:write"]}),
            "You can't create a personal access token with the tokens:write scope",
        ),
        (
            json!({"name": "t", "scopes": ["workspace:billing"]}),
            "You can't create a token with scopes that you don't have",
        ),
        (
            json!({"name": "t", "scopes": ["nope:nope"]}),
            "You can't create a token with scopes that you don't have",
        ),
        (
            json!({"name": "  ", "scopes": ["streams:read"]}),
            "A token needs a name",
        ),
        (
            json!({"name": "t", "scopes": ["streams:read"], "lifespan": 0}),
            "Token lifespan must be a positive number of milliseconds",
        ),
        (
            json!({"name": "t", "scopes": ["streams:read"], "lifespan": 3_154_000_000_001_i64}),
            "Token lifespan can be at most 3154000000000 ms (about 100 years)",
        ),
    ];
    for (input, message) in cases {
        let body = create(&app, Some(&user.token), input.clone()).await;
        assert_eq!(body["data"], Value::Null, "{input}");
        assert_eq!(
            first_error(&body),
            ("TOKEN_CREATE_ERROR".into(), message.into(), None),
            "{input}"
        );
        assert_eq!(body["errors"][0]["extensions"]["statusCode"], 400);
    }
    // A token can only hand out scopes it has: a web token narrowed to profile:read + tokens:write
    // does not exist, so check with a PAT's scopes via the rule itself (a PAT cannot create PATs).
    let pat = app.pat(&user.token, &["profile:read"]).await;
    let body = create(
        &app,
        Some(&pat),
        json!({"name": "t", "scopes": ["profile:read"]}),
    )
    .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN");
    // Nothing above was created.
    let (_, list) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { apiTokens { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["data"]["activeUser"]["apiTokens"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A lifespan may come as a string of digits (BigInt) and limitResources is accepted.
    let body = create(
        &app,
        Some(&user.token),
        json!({"name": "limited", "scopes": ["streams:read"], "lifespan": "60000",
               "limitResources": [{"id": "abcdef0123", "type": "project"}]}),
    )
    .await;
    assert!(body["data"]["apiTokenCreate"].is_string(), "{body}");
}

async fn pat_creation_needs_tokens_write_and_a_token(app: TestApp) {
    let user = app.user("Needs Scope").await;
    let pat = app
        .pat(&user.token, &["profile:read", "streams:read"])
        .await;
    let input = json!({"name": "t", "scopes": ["streams:read"]});
    let body = create(&app, Some(&pat), input.clone()).await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "Your auth token does not have the required scope: tokens:write.".into(),
            Some("tokens:write".into())
        )
    );
    assert_eq!(body["errors"][0]["path"], json!(["apiTokenCreate"]));
    assert_eq!(body["data"], Value::Null);
    let body = create(&app, None, input).await;
    assert_eq!(
        first_error(&body),
        (
            "UNAUTHORIZED".into(),
            "Must provide an auth token".into(),
            None
        )
    );
    assert_eq!(body["errors"][0]["extensions"]["statusCode"], 401);
    let (_, body) = app.graphql(None, REVOKE, json!({"t": "0123456789"})).await;
    assert_eq!(first_error(&body).0, "UNAUTHORIZED");
}

async fn only_a_digest_and_last_chars_are_stored(app: TestApp) {
    let user = app.user("Careful").await;
    let pat = app.pat(&user.token, &["profile:read"]).await;
    // Read the raw rows through a separate connection to the same database.
    let rows: Vec<(String, String, String)> = {
        let mut conn = raw_connection(&app).await;
        sqlx::query_as("SELECT id, digest, last_chars FROM api_tokens")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    };
    let secret = &pat[10..];
    let row = rows
        .iter()
        .find(|(id, _, _)| id == &pat[..10])
        .expect("the PAT row");
    assert_eq!(row.2, &pat[36..]);
    assert_eq!(row.1.len(), 64, "a SHA-256 hex digest");
    for (_, digest, _) in &rows {
        assert!(!digest.contains(secret));
    }
    let dump = format!("{rows:?}");
    for token in [&pat, &user.token, &user.refresh_token] {
        assert!(!dump.contains(&token[10..]), "a secret is stored in clear");
    }
}

async fn tokens_are_listed_for_their_owner_only(app: TestApp) {
    let user = app.user("Lister").await;
    let pat = app
        .pat(&user.token, &["profile:read", "streams:read"])
        .await;
    let query =
        "{ activeUser { apiTokens { id name lastChars scopes createdAt lifespan lastUsed } } }";
    let (_, body) = app.graphql(Some(&user.token), query, json!({})).await;
    let tokens = body["data"]["activeUser"]["apiTokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "the web app token is not listed: {body}");
    let t = &tokens[0];
    assert_eq!(t["id"], &pat[..10]);
    assert_eq!(t["name"], "test token");
    assert_eq!(t["lastChars"], &pat[36..]);
    assert_eq!(t["scopes"], json!(["streams:read", "profile:read"]));
    assert_eq!(t["lifespan"], 3_154_000_000_000_i64);
    assert!(t["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(t["lastUsed"].is_string());
    // Using the PAT moves lastUsed (seen at once, written to the store behind).
    app.clock.advance(5_000);
    assert_eq!(app.whoami(&pat).await.0, StatusCode::OK);
    let (_, body) = app.graphql(Some(&user.token), query, json!({})).await;
    let used = body["data"]["activeUser"]["apiTokens"][0]["lastUsed"].clone();
    assert_ne!(used, t["lastUsed"], "lastUsed moved");
    app.state.core.housekeeping().await.unwrap();
    let (_, body) = app.graphql(Some(&user.token), query, json!({})).await;
    assert_eq!(
        body["data"]["activeUser"]["apiTokens"][0]["lastUsed"], used,
        "and was stored"
    );

    // Another user sees only their own (none), and cannot read this user's list.
    let other = app.user("Other").await;
    let (_, body) = app.graphql(Some(&other.token), query, json!({})).await;
    assert_eq!(body["data"]["activeUser"]["apiTokens"], json!([]));
    let (_, body) = app
        .graphql(
            Some(&other.token),
            "query($id: String) { user(id: $id) { apiTokens { id } } }",
            json!({"id": user.id}),
        )
        .await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "You can only view your own tokens".into(),
            None
        )
    );
}

async fn revoke_accepts_id_full_token_or_bearer_form(app: TestApp) {
    let user = app.user("Revoker").await;
    let forms: [fn(&str) -> String; 3] = [
        |t| t[..10].to_owned(),
        |t| t.to_owned(),
        |t| format!("Bearer {t}"),
    ];
    for form in forms {
        let pat = app.pat(&user.token, &["profile:read"]).await;
        assert_eq!(app.whoami(&pat).await.0, StatusCode::OK);
        let (_, body) = app
            .graphql(Some(&user.token), REVOKE, json!({"t": form(&pat)}))
            .await;
        assert_eq!(body, json!({"data": {"apiTokenRevoke": true}}));
        // Effective on the very next request, though the token was cached.
        let (status, body) = app.whoami(&pat).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body.to_string(), INVALID_TOKEN);
    }
    let (_, list) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { apiTokens { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["data"]["activeUser"]["apiTokens"], json!([]));
}

async fn revoking_someone_elses_token_fails(app: TestApp) {
    let owner = app.user("Owner").await;
    let thief = app.user("Thief").await;
    let pat = app.pat(&owner.token, &["profile:read"]).await;
    for arg in [
        pat.clone(),
        pat[..10].to_owned(),
        "0000000000".into(),
        "x".into(),
    ] {
        let (_, body) = app
            .graphql(Some(&thief.token), REVOKE, json!({"t": arg}))
            .await;
        assert_eq!(
            first_error(&body),
            (
                "USER_INPUT_ERROR".into(),
                "Did not revoke token".into(),
                None
            )
        );
    }
    assert_eq!(
        app.whoami(&pat).await.0,
        StatusCode::OK,
        "the owner's token still works"
    );
}

async fn tokens_expire_at_their_lifespan(app: TestApp) {
    let user = app.user("Shortlived").await;
    let body = create(
        &app,
        Some(&user.token),
        json!({"name": "brief", "scopes": ["profile:read"], "lifespan": 2000}),
    )
    .await;
    let pat = body["data"]["apiTokenCreate"].as_str().unwrap().to_owned();
    assert_eq!(app.whoami(&pat).await.0, StatusCode::OK);
    app.clock.advance(2000);
    assert_eq!(
        app.whoami(&pat).await.0,
        StatusCode::OK,
        "valid up to its lifespan"
    );
    app.clock.advance(1);
    let (status, body) = app.whoami(&pat).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body.to_string(), INVALID_TOKEN);
    let (_, list) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { apiTokens { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["data"]["activeUser"]["apiTokens"],
        json!([]),
        "expired tokens vanish"
    );
}

/// `apiTokenRegenerate`: a new secret with the same name and scopes; the old one is refused at
/// once; nobody else's token can be regenerated.
async fn regenerating_a_token_replaces_its_secret(app: TestApp) {
    let user = app.user("Regenerator").await;
    let other = app.user("Not Mine").await;
    let old = app
        .pat(&user.token, &["profile:read", "streams:read"])
        .await;
    assert_eq!(app.whoami(&old).await.0, StatusCode::OK);
    let regenerate = "mutation($t: String!) { apiTokenRegenerate(token: $t) }";
    let (_, body) = app
        .graphql(Some(&other.token), regenerate, json!({"t": old}))
        .await;
    assert_eq!(first_error(&body).1, "No such token of yours", "{body}");
    assert_eq!(
        app.whoami(&old).await.0,
        StatusCode::OK,
        "still the owner's"
    );
    let (_, body) = app
        .graphql(Some(&user.token), regenerate, json!({"t": old}))
        .await;
    let new = body["data"]["apiTokenRegenerate"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    assert_eq!(new.len(), 42);
    assert_ne!(new, old);
    assert_eq!(
        app.whoami(&old).await.0,
        StatusCode::FORBIDDEN,
        "the old secret is dead"
    );
    assert_eq!(app.whoami(&new).await.0, StatusCode::OK);
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { apiTokens { id name lastChars scopes } } }",
            json!({}),
        )
        .await;
    let tokens = body["data"]["activeUser"]["apiTokens"].as_array().unwrap();
    let listed: Vec<_> = tokens.iter().filter(|t| t["id"] == new[..10]).collect();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["lastChars"], &new[36..]);
    let mut scopes: Vec<_> = listed[0]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["profile:read", "streams:read"]);
    assert!(
        tokens.iter().all(|t| t["id"] != old[..10]),
        "the old token is gone from the list"
    );
}
