//! The GraphQL core: request forms, `serverInfo`, users, profile updates and error shapes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    aliases_variables_and_operation_names,
    get_requests_run_queries_only,
    server_info_has_what_clients_select,
    active_user_has_what_clients_select,
    other_user_and_user_by_id,
    emails_are_null_without_the_right_scope_and_role,
    missing_scope_is_forbidden_with_partial_data,
    profile_update,
    syntax_and_validation_errors_are_400,
    simple_content_types_are_refused,
);

async fn aliases_variables_and_operation_names(app: TestApp) {
    let user = app.user("Alias").await;
    // As specklepy prints it: named operation, aliases, no operationName key.
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "query User {\n  data: activeUser {\n    id\n    name\n  }\n}",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["data"]["name"], "Alias");
    // Several operations, one chosen by name, with variables.
    let res = app
        .client
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&user.token)
        .json(&json!({
            "query": "query A { serverInfo { name } } query B($id: String!) { who: otherUser(id: $id) { name } }",
            "operationName": "B",
            "variables": {"id": user.id},
        }))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"data": {"who": {"name": "Alias"}}}));
    // A batch (JSON array) answers an array.
    let res = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&json!([{"query": "{ serverInfo { name } }"}, {"query": "{ activeUser { id } }"}]))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body[1], json!({"data": {"activeUser": null}}));
    assert_eq!(body[0]["data"]["serverInfo"]["name"], "Tessera");
}

async fn get_requests_run_queries_only(app: TestApp) {
    let user = app.user("Getter").await;
    let res = app
        .client
        .get(format!("{}/graphql", app.url))
        .query(&[
            ("query", "query($x: String!) { otherUser(id: $x) { name } }"),
            ("variables", &json!({"x": user.id}).to_string()),
        ])
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["data"]["otherUser"]["name"],
        "Getter"
    );
    let res = app
        .client
        .get(format!("{}/graphql", app.url))
        .query(&[(
            "query",
            "mutation { apiTokenRevoke(token: \"0123456789\") }",
        )])
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let res = app
        .client
        .get(format!("{}/graphql", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

async fn server_info_has_what_clients_select(app: TestApp) {
    // specklepy's server.get() plus the C# and legacy selections.
    let query = "query Server { data: serverInfo { name company description adminContact canonicalUrl \
                 version scopes { name description } authStrategies { id name icon url color } \
                 workspaces { workspacesEnabled } migration { movedFrom movedTo } \
                 roles { name description resourceTarget } serverRoles { id title } inviteOnly \
                 guestModeEnabled termsOfService } }";
    let (status, body) = app.graphql(None, query, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["errors"].is_null(), "{body}");
    let info = &body["data"]["data"];
    assert!(!info["name"].as_str().unwrap().is_empty());
    assert_eq!(info["canonicalUrl"], app.url.as_str());
    let version = info["version"].as_str().unwrap();
    let parts: Vec<_> = version.split('.').collect();
    assert_eq!(parts.len(), 3, "{version}");
    assert!(parts.iter().all(|p| p.parse::<u32>().is_ok()), "{version}");
    let scopes: Vec<_> = info["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        [
            "streams:read",
            "streams:write",
            "profile:read",
            "profile:write",
            "profile:email",
            "users:read",
            "server:stats"
        ],
        "public scopes only"
    );
    assert_eq!(
        info["scopes"][0]["description"],
        "Read your streams, and any associated information (branches, commits, objects)."
    );
    assert_eq!(info["authStrategies"][0]["id"], "local");
    assert_eq!(info["workspaces"], json!({"workspacesEnabled": false}));
    assert_eq!(
        info["migration"],
        json!({"movedFrom": null, "movedTo": null})
    );
    assert_eq!(info["inviteOnly"], false);
}

async fn active_user_has_what_clients_select(app: TestApp) {
    let user = app.user("Complete User").await;
    // specklepy's active_user.get(), the legacy C# account query, and the docs' PAT example.
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "query User { data: activeUser { id email name bio company avatar verified role profiles createdAt \
             activeWorkspace { id name role slug logo description } \
             streams { totalCount } commits { totalCount } } \
             legacy: user { id suuid streams { totalCount } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let me = &body["data"]["data"];
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["email"], user.email.as_str());
    assert_eq!(me["name"], "Complete User");
    assert_eq!(me["company"], "Tessera QA");
    assert_eq!(me["verified"], false);
    assert_eq!(me["streams"]["totalCount"], 0);
    assert_eq!(me["commits"]["totalCount"], 0);
    assert_eq!(
        me["activeWorkspace"],
        Value::Null,
        "no workspaces in Tessera"
    );
    let created = me["createdAt"].as_str().unwrap();
    assert!(created.len() == 24 && created.ends_with('Z'), "{created}");
    let legacy = &body["data"]["legacy"];
    assert_eq!(legacy["id"], user.id.as_str());
    assert_eq!(legacy["suuid"].as_str().unwrap().len(), 36);
}

async fn other_user_and_user_by_id(app: TestApp) {
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    let reader = app.pat(&alice.token, &["users:read", "profile:read"]).await;
    let q =
        "query($id: String!) { otherUser(id: $id) { id name bio company avatar verified role } }";
    let (_, body) = app.graphql(Some(&reader), q, json!({"id": bob.id})).await;
    assert_eq!(body["data"]["otherUser"]["name"], "Bob");
    assert_eq!(body["data"]["otherUser"]["role"], "server:user");
    let (_, body) = app
        .graphql(Some(&reader), q, json!({"id": "AnIdThatDoesntExist"}))
        .await;
    assert_eq!(
        body,
        json!({"data": {"otherUser": null}}),
        "unknown id: null, no error"
    );
    let (_, body) = app
        .graphql(
            Some(&reader),
            "query($id: String) { user(id: $id) { name } }",
            json!({"id": bob.id}),
        )
        .await;
    assert_eq!(body["data"]["user"]["name"], "Bob");
    // Without users:read.
    let narrow = app.pat(&alice.token, &["profile:read"]).await;
    let (_, body) = app.graphql(Some(&narrow), q, json!({"id": bob.id})).await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "Your auth token does not have the required scope: users:read.".into(),
            Some("users:read".into())
        )
    );
    let (_, body) = app
        .graphql(
            Some(&narrow),
            "query($id: String) { user(id: $id) { name } }",
            json!({"id": bob.id}),
        )
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("users:read"));
    // Anonymous.
    let (_, body) = app.graphql(None, q, json!({"id": bob.id})).await;
    assert_eq!(first_error(&body).0, "UNAUTHORIZED");
    let (_, body) = app.graphql(None, "{ user { id } }", json!({})).await;
    assert_eq!(body, json!({"data": {"user": null}}));
}

async fn emails_are_null_without_the_right_scope_and_role(app: TestApp) {
    let admin = app.user("Admin").await; // the first user
    let user = app.user("Plain").await;
    let q = "query($id: String) { user(id: $id) { email } }";
    // Own email: needs profile:email.
    let without = app.pat(&user.token, &["profile:read"]).await;
    let (_, body) = app
        .graphql(
            Some(&without),
            "{ activeUser { id name email } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null());
    assert_eq!(body["data"]["activeUser"]["email"], Value::Null);
    let with = app
        .pat(&user.token, &["profile:read", "profile:email"])
        .await;
    let (_, body) = app
        .graphql(Some(&with), "{ activeUser { email } }", json!({}))
        .await;
    assert_eq!(body["data"]["activeUser"]["email"], user.email.as_str());
    // Someone else's: admin role and users:email; a plain user with every scope gets null.
    let (_, body) = app
        .graphql(Some(&user.token), q, json!({"id": admin.id}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["user"]["email"], Value::Null);
    let admin_without = app.pat(&admin.token, &["profile:read", "users:read"]).await;
    let (_, body) = app
        .graphql(Some(&admin_without), q, json!({"id": user.id}))
        .await;
    assert_eq!(body["data"]["user"]["email"], Value::Null);
    let (_, body) = app
        .graphql(Some(&admin.token), q, json!({"id": user.id}))
        .await;
    assert_eq!(body["data"]["user"]["email"], user.email.as_str());
}

async fn missing_scope_is_forbidden_with_partial_data(app: TestApp) {
    let user = app.user("Partial").await;
    let pat = app.pat(&user.token, &["streams:read"]).await;
    let (status, body) = app
        .graphql(
            Some(&pat),
            "{ activeUser { id name email } serverInfo { name } }",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["activeUser"], Value::Null);
    assert_eq!(body["data"]["serverInfo"]["name"], "Tessera");
    let err = &body["errors"][0];
    assert_eq!(
        err["message"],
        "Your auth token does not have the required scope: profile:read."
    );
    assert_eq!(err["path"], json!(["activeUser"]));
    assert_eq!(err["locations"], json!([{"line": 1, "column": 3}]));
    assert_eq!(
        err["extensions"],
        json!({"code": "FORBIDDEN", "statusCode": 403, "scope": "profile:read"})
    );
}

async fn profile_update(app: TestApp) {
    let user = app.user("Before").await;
    let m = "mutation ActiveUserMutations($input: UserUpdateInput!) { data: activeUserMutations { \
             data: update(user: $input) { id name bio company avatar } } }";
    let (_, body) = app
        .graphql(
            Some(&user.token),
            m,
            json!({"input": {"name": "Ron", "bio": "Builds things", "company": "Speckle", "avatar": null}}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let updated = &body["data"]["data"]["data"];
    assert_eq!(updated["name"], "Ron");
    assert_eq!(updated["bio"], "Builds things");
    assert_eq!(updated["company"], "Speckle");
    // An empty company clears it; an empty name is refused and changes nothing.
    let (_, body) = app
        .graphql(Some(&user.token), m, json!({"input": {"company": ""}}))
        .await;
    assert_eq!(body["data"]["data"]["data"]["company"], Value::Null);
    let (_, body) = app
        .graphql(
            Some(&user.token),
            m,
            json!({"input": {"name": " ", "bio": "changed"}}),
        )
        .await;
    assert_eq!(
        first_error(&body),
        (
            "USER_INPUT_ERROR".into(),
            "User name cannot be empty".into(),
            None
        )
    );
    let (_, body) = app
        .graphql(Some(&user.token), "{ activeUser { name bio } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["activeUser"],
        json!({"name": "Ron", "bio": "Builds things"})
    );
    // profile:write is needed.
    let reader = app.pat(&user.token, &["profile:read"]).await;
    let (_, body) = app
        .graphql(Some(&reader), m, json!({"input": {"name": "X"}}))
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("profile:write"));
}

async fn syntax_and_validation_errors_are_400(app: TestApp) {
    let user = app.user("Typo").await;
    let (status, body) = app
        .graphql(Some(&user.token), "{ activeUser { id ", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (code, message, _) = first_error(&body);
    assert_eq!(code, "GRAPHQL_PARSE_FAILED");
    assert!(message.starts_with("Syntax Error: "), "{message}");
    assert_eq!(
        body["errors"][0]["locations"],
        json!([{"line": 1, "column": 19}])
    );
    let (status, body) = app
        .graphql(Some(&user.token), "{ activeUser { nope } }", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(first_error(&body).0, "GRAPHQL_VALIDATION_FAILED");
    let res = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

async fn simple_content_types_are_refused(app: TestApp) {
    let res = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", "text/plain")
        .body(r#"{"query":"{ serverInfo { name } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Cross-Site Request Forgery")
    );
}
