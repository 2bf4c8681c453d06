//! The app registry over GraphQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    first_party_apps_are_seeded,
    create_app_shows_its_secret_to_its_author_only,
    app_registration_rejections,
    app_mutations_need_a_token_and_authorship,
    update_revokes_everything_issued_for_the_app,
    delete_removes_the_app_and_its_tokens,
    revoke_access_is_per_user,
    regenerated_secret_replaces_the_old_one,
    created_and_authorized_apps_follow_changes,
);

const APP: &str = "query($id: String!) { app(id: $id) { id secret name description termsAndConditionsLink \
     logo public trustByDefault author { id name avatar } createdAt redirectUrl scopes { name description } } }";

async fn fetch_app(app: &TestApp, token: Option<&str>, id: &str) -> Value {
    let (_, body) = app.graphql(token, APP, json!({"id": id})).await;
    body["data"]["app"].clone()
}

async fn first_party_apps_are_seeded(app: TestApp) {
    let expected = [
        ("spklwebapp", true, None),
        ("explorer", true, None),
        ("sdm", true, Some("speckle://account")),
        (
            "sdui",
            false,
            Some("https://dui.speckle.systems/authn/callback"),
        ),
        ("connectrV3", false, Some("http://localhost:29355")),
        ("sca", true, Some("http://localhost:29363")),
        ("sdas", true, Some("http://localhost:29364")),
        ("spklexcel", true, Some("https://speckle-excel.netlify.app")),
        (
            "spklpwerbi",
            true,
            Some("https://oauth.powerbi.com/views/oauthredirect.html"),
        ),
        (
            "spklautoma",
            true,
            Some("https://automate.speckle.systems/authn/callback"),
        ),
        ("tessera-cli", true, Some("http://127.0.0.1/callback")),
    ];
    for (id, trusted, redirect) in expected {
        let a = fetch_app(&app, None, id).await;
        assert_eq!(a["id"], id);
        assert_eq!(a["trustByDefault"], trusted, "{id}");
        assert_eq!(a["public"], true, "{id}");
        assert_eq!(a["author"], Value::Null, "{id}");
        assert_eq!(
            a["secret"], "App secrets are only revealed to their author 😉",
            "{id}"
        );
        if let Some(redirect) = redirect {
            assert_eq!(a["redirectUrl"], redirect, "{id}");
        }
    }
    assert_eq!(
        fetch_app(&app, None, "spklwebapp").await["redirectUrl"],
        app.url.as_str()
    );
    assert_eq!(
        fetch_app(&app, None, "explorer").await["redirectUrl"],
        format!("{}/explorer", app.url).as_str()
    );
    let sca = fetch_app(&app, None, "sca").await;
    let scopes: Vec<_> = sca["scopes"]
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
            "profile:email",
            "users:read",
            "users:invite"
        ]
    );
    assert_eq!(fetch_app(&app, None, "nope").await, Value::Null);
}

async fn create_app_shows_its_secret_to_its_author_only(app: TestApp) {
    let dev = app.user("Developer").await;
    let other = app.user("Someone").await;
    let (_, body) = app
        .graphql(
            Some(&dev.token),
            "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
            json!({"a": {"name": "My App", "description": "Does things", "redirectUrl": "https://myapp.example.com/callback",
                         "scopes": ["streams:read", "profile:read"], "termsAndConditionsLink": "https://myapp.example.com/terms",
                         "public": true}}),
        )
        .await;
    let id = body["data"]["appCreate"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 10);
    let mine = fetch_app(&app, Some(&dev.token), &id).await;
    let secret = mine["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(mine["name"], "My App");
    assert_eq!(mine["author"]["id"], dev.id.as_str());
    assert_eq!(mine["author"]["name"], "Developer");
    assert_eq!(mine["trustByDefault"], false);
    assert_eq!(mine["redirectUrl"], "https://myapp.example.com/callback");
    assert_eq!(
        mine["termsAndConditionsLink"],
        "https://myapp.example.com/terms"
    );
    assert_eq!(
        mine["scopes"][0],
        json!({"name": "streams:read", "description": "Read your streams, and any associated information (branches, commits, objects)."})
    );
    for token in [Some(other.token.as_str()), None] {
        assert_eq!(
            fetch_app(&app, token, &id).await["secret"],
            "App secrets are only revealed to their author 😉"
        );
    }
}

async fn app_registration_rejections(app: TestApp) {
    let dev = app.user("Picky").await;
    let base = json!({"name": "X", "description": "d", "redirectUrl": "https://x.example/cb", "scopes": ["streams:read"]});
    let with = |key: &str, value: Value| {
        let mut input = base.clone();
        input[key] = value;
        input
    };
    let cases = [
        (
            with("redirectUrl", json!("http://x.example/cb")),
            "must point to this machine",
        ),
        (
            with("redirectUrl", json!("javascript:alert(1)")),
            "cannot be used",
        ),
        (
            with("redirectUrl", json!("https://x.example/cb#f")),
            "fragment",
        ),
        (
            with("redirectUrl", json!("https://u:p@x.example/cb")),
            "credentials",
        ),
        (
            with("redirectUrl", json!("/relative")),
            "not an absolute URL",
        ),
        (with("redirectUrl", json!("")), "needs a redirect URL"),
        (
            with("scopes", json!([])),
            "Cannot create an app with no scopes.",
        ),
        (with("scopes", json!(["nope:nope"])), "Unknown scope"),
        (
            with("scopes", json!(["workspace:read"])),
            "not available on this server",
        ),
        (with("name", json!("  ")), "An app needs a name."),
        (
            with("termsAndConditionsLink", json!("ftp://x")),
            "terms and conditions link",
        ),
        (with("logo", json!("javascript:x")), "logo must be"),
    ];
    for (input, message) in cases {
        let (_, body) = app
            .graphql(
                Some(&dev.token),
                "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
                json!({"a": input}),
            )
            .await;
        let (code, got, _) = first_error(&body);
        assert_eq!(code, "USER_INPUT_ERROR", "{input}");
        assert!(got.contains(message), "{input}: {got}");
    }
    let (_, body) = app
        .graphql(
            Some(&dev.token),
            "{ activeUser { createdApps { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["activeUser"]["createdApps"],
        json!([]),
        "nothing was created"
    );
    // The accepted kinds of redirect.
    for redirect in [
        "http://localhost:3000/callback",
        "http://127.0.0.1:8765/cb",
        "speckle://account",
        "com.example.app:/cb",
    ] {
        let (_, body) = app
            .graphql(
                Some(&dev.token),
                "mutation($a: AppCreateInput!) { appCreate(app: $a) }",
                json!({"a": with("redirectUrl", json!(redirect))}),
            )
            .await;
        assert!(body["data"]["appCreate"].is_string(), "{redirect}: {body}");
    }
}

async fn app_mutations_need_a_token_and_authorship(app: TestApp) {
    let dev = app.user("Author").await;
    let other = app.user("Stranger").await;
    let (id, _) = app
        .register_app(&dev.token, "https://a.example/cb", &["profile:read"])
        .await;
    let delete = "mutation($id: String!) { appDelete(appId: $id) }";
    let create = "mutation { appCreate(app: {name: \"x\", description: \"d\", redirectUrl: \"https://a.example\", scopes: [\"profile:read\"]}) }";
    for query in [create, delete] {
        let (_, body) = app.graphql(None, query, json!({"id": id})).await;
        assert_eq!(first_error(&body).0, "UNAUTHORIZED", "{query}");
    }
    let (_, body) = app
        .graphql(Some(&other.token), delete, json!({"id": id}))
        .await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "You are not authorized to edit this app.".into(),
            None
        )
    );
    // A user (not an admin) cannot touch a first-party app either.
    let (_, body) = app
        .graphql(Some(&other.token), delete, json!({"id": "sca"}))
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN");
    // apps:write is needed.
    let pat = app.pat(&dev.token, &["profile:read"]).await;
    let (_, body) = app.graphql(Some(&pat), delete, json!({"id": id})).await;
    assert_eq!(first_error(&body).2.as_deref(), Some("apps:write"));
    assert_eq!(
        fetch_app(&app, None, &id).await["id"],
        id.as_str(),
        "still there"
    );
}

/// Signs `user` in to the app through the consent page and exchanges the code: (token, refresh).
async fn authorize(app: &TestApp, user: &User, app_id: &str, secret: &str) -> (String, String) {
    let browser = Browser::new(app);
    browser.sign_in(user).await;
    let location = browser
        .authorize(&format!("/authn/verify/{app_id}/plainchallenge"))
        .await;
    let (status, body) = app
        .token_endpoint(json!({"appId": app_id, "appSecret": secret, "accessCode": access_code(&location), "challenge": "plainchallenge"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["token"].as_str().unwrap().into(),
        body["refreshToken"].as_str().unwrap().into(),
    )
}

async fn update_revokes_everything_issued_for_the_app(app: TestApp) {
    let dev = app.user("Updater").await;
    let user = app.user("App User").await;
    let (id, secret) = app
        .register_app(&dev.token, "https://a.example/cb", &["profile:read"])
        .await;
    let (token, refresh) = authorize(&app, &user, &id, &secret).await;
    let (dev_token, _) = authorize(&app, &dev, &id, &secret).await;
    // An unused code, too.
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let pending = access_code(
        &browser
            .authorize(&format!("/authn/verify/{id}/pending"))
            .await,
    );
    assert_eq!(app.whoami(&token).await.0, StatusCode::OK);

    let (_, body) = app
        .graphql(
            Some(&dev.token),
            "mutation($a: AppUpdateInput!) { appUpdate(app: $a) }",
            json!({"a": {"id": id, "name": "Renamed", "description": "d", "redirectUrl": "https://a.example/cb2", "scopes": ["profile:read", "profile:email"]}}),
        )
        .await;
    assert_eq!(body["data"]["appUpdate"], true, "{body}");
    for t in [&token, &dev_token] {
        assert_eq!(
            app.whoami(t).await.0,
            StatusCode::FORBIDDEN,
            "every user's token is revoked"
        );
    }
    let (_, body) = app
        .token_endpoint(json!({"appId": id, "appSecret": secret, "refreshToken": refresh}))
        .await;
    assert_eq!(body, json!({"err": "Invalid request"}));
    let (_, body) = app
        .token_endpoint(json!({"appId": id, "appSecret": secret, "accessCode": pending, "challenge": "pending"}))
        .await;
    assert_eq!(body, json!({"err": "Access code not found."}));
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { authorizedApps { id } } }",
            json!({}),
        )
        .await;
    assert!(
        !body.to_string().contains(&id),
        "the user must authorize the changed app again: {body}"
    );
    let updated = fetch_app(&app, Some(&dev.token), &id).await;
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["redirectUrl"], "https://a.example/cb2");
    // A bad update changes nothing.
    let (_, body) = app
        .graphql(
            Some(&dev.token),
            "mutation($a: AppUpdateInput!) { appUpdate(app: $a) }",
            json!({"a": {"id": id, "name": "Broken", "description": "d", "redirectUrl": "http://evil.example", "scopes": ["profile:read"]}}),
        )
        .await;
    assert_eq!(first_error(&body).0, "USER_INPUT_ERROR");
    assert_eq!(fetch_app(&app, None, &id).await["name"], "Renamed");
}

async fn delete_removes_the_app_and_its_tokens(app: TestApp) {
    let dev = app.user("Deleter").await;
    let user = app.user("Deleted App User").await;
    let (id, secret) = app
        .register_app(&dev.token, "https://a.example/cb", &["profile:read"])
        .await;
    let (token, _) = authorize(&app, &user, &id, &secret).await;
    let (_, body) = app
        .graphql(
            Some(&dev.token),
            "mutation($id: String!) { appDelete(appId: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(body["data"]["appDelete"], true);
    assert_eq!(fetch_app(&app, None, &id).await, Value::Null);
    assert_eq!(app.whoami(&token).await.0, StatusCode::FORBIDDEN);
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { authorizedApps { id } } }",
            json!({}),
        )
        .await;
    let ids: Vec<_> = body["data"]["activeUser"]["authorizedApps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert!(!ids.contains(&json!(id)));
}

async fn revoke_access_is_per_user(app: TestApp) {
    let dev = app.user("Owner Dev").await;
    let alice = app.user("Alice").await;
    let bob = app.user("Bob").await;
    let (id, secret) = app
        .register_app(&dev.token, "https://a.example/cb", &["profile:read"])
        .await;
    let (alice_token, alice_refresh) = authorize(&app, &alice, &id, &secret).await;
    let (bob_token, _) = authorize(&app, &bob, &id, &secret).await;
    let revoke = "mutation($id: String!) { appRevokeAccess(appId: $id) }";
    let (_, body) = app
        .graphql(Some(&alice.token), revoke, json!({"id": id}))
        .await;
    assert_eq!(body["data"]["appRevokeAccess"], true);
    assert_eq!(app.whoami(&alice_token).await.0, StatusCode::FORBIDDEN);
    let (_, body) = app
        .token_endpoint(json!({"appId": id, "appSecret": secret, "refreshToken": alice_refresh}))
        .await;
    assert_eq!(body, json!({"err": "Invalid request"}));
    assert_eq!(
        app.whoami(&bob_token).await.0,
        StatusCode::OK,
        "Bob is unaffected"
    );
    let (_, body) = app
        .graphql(Some(&alice.token), revoke, json!({"id": id}))
        .await;
    assert_eq!(
        body["data"]["appRevokeAccess"], false,
        "nothing left to revoke"
    );
}

async fn regenerated_secret_replaces_the_old_one(app: TestApp) {
    let dev = app.user("Rotator").await;
    let user = app.user("Rotated User").await;
    let (id, old) = app
        .register_app(&dev.token, "https://a.example/cb", &["profile:read"])
        .await;
    let (_, body) = app
        .graphql(
            Some(&dev.token),
            "mutation($id: String!) { appRegenerateSecret(appId: $id) }",
            json!({"id": id}),
        )
        .await;
    let new = body["data"]["appRegenerateSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    assert_eq!(
        fetch_app(&app, Some(&dev.token), &id).await["secret"],
        new.as_str()
    );
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let code = access_code(&browser.authorize(&format!("/authn/verify/{id}/ch1")).await);
    let (_, body) = app
        .token_endpoint(
            json!({"appId": id, "appSecret": old, "accessCode": code, "challenge": "ch1"}),
        )
        .await;
    assert_eq!(
        body,
        json!({"err": "Invalid app secret. Ensure the app secret is correct."})
    );
    let code = access_code(&browser.authorize(&format!("/authn/verify/{id}/ch2")).await);
    let (status, _) = app
        .token_endpoint(
            json!({"appId": id, "appSecret": new, "accessCode": code, "challenge": "ch2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let stranger = app.user("Not The Author").await;
    let (_, body) = app
        .graphql(
            Some(&stranger.token),
            "mutation($id: String!) { appRegenerateSecret(appId: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN");
}

async fn created_and_authorized_apps_follow_changes(app: TestApp) {
    let dev = app.user("Lister").await;
    let q = "{ activeUser { createdApps { id name } authorizedApps { id name } } }";
    let ids = |body: &Value, key: &str| -> Vec<String> {
        body["data"]["activeUser"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, body) = app.graphql(Some(&dev.token), q, json!({})).await;
    assert_eq!(ids(&body, "createdApps"), Vec::<String>::new());
    assert_eq!(
        ids(&body, "authorizedApps"),
        ["spklwebapp"],
        "the web sign-in counts"
    );
    let (id, secret) = app
        .register_app(&dev.token, "https://a.example/cb", &["profile:read"])
        .await;
    authorize(&app, &dev, &id, &secret).await;
    let (_, body) = app.graphql(Some(&dev.token), q, json!({})).await;
    assert_eq!(ids(&body, "createdApps"), vec![id.clone()]);
    assert!(ids(&body, "authorizedApps").contains(&id));
    app.graphql(
        Some(&dev.token),
        "mutation($id: String!) { appRevokeAccess(appId: $id) }",
        json!({"id": id}),
    )
    .await;
    let (_, body) = app.graphql(Some(&dev.token), q, json!({})).await;
    assert!(
        !ids(&body, "authorizedApps").contains(&id),
        "revoked at once"
    );
    // apps:read is needed to list them.
    let pat = app.pat(&dev.token, &["profile:read"]).await;
    let (_, body) = app
        .graphql(
            Some(&pat),
            "{ activeUser { createdApps { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("apps:read"));
}
