//! Server administration: `serverInfoUpdate` and `userRoleChange`, and the Server and Users
//! pages, for `server:admin` only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    server_info_is_changed_by_administrators_only,
    server_roles_are_changed_by_administrators_only,
    admin_pages_refuse_everyone_else,
    admin_pages_change_the_server_and_roles,
);

const UPDATE: &str = "mutation($i: ServerInfoUpdateInput!) { serverInfoUpdate(info: $i) }";
const INFO: &str = "{ serverInfo { name company description adminContact termsOfService } }";
const ROLE: &str = "mutation($i: UserRoleInput!) { userRoleChange(userRoleInput: $i) }";

async fn server_info(app: &TestApp) -> Value {
    let (_, body) = app.graphql(None, INFO, json!({})).await;
    body["data"]["serverInfo"].clone()
}

async fn role_of(app: &TestApp, admin: &User, id: &str) -> String {
    let (_, body) = app
        .graphql(
            Some(&admin.token),
            "query($id: String!) { otherUser(id: $id) { role } }",
            json!({ "id": id }),
        )
        .await;
    body["data"]["otherUser"]["role"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

async fn server_info_is_changed_by_administrators_only(app: TestApp) {
    let admin = app.user("First Admin").await;
    let member = app.user("Plain Member").await;
    let before = server_info(&app).await;
    assert_eq!(before["name"], "Tessera");

    // A user's token has server:setup, but the user is no administrator.
    let (_, body) = app
        .graphql(
            Some(&member.token),
            UPDATE,
            json!({ "i": { "name": "Mine now" } }),
        )
        .await;
    let (code, message, _) = first_error(&body);
    assert_eq!(code, "FORBIDDEN", "{body}");
    assert_eq!(message, "You do not have the required server role");
    // An administrator's token without server:setup.
    let narrow = app.pat(&admin.token, &["profile:read"]).await;
    let (_, body) = app
        .graphql(
            Some(&narrow),
            UPDATE,
            json!({ "i": { "name": "Mine now" } }),
        )
        .await;
    assert_eq!(
        first_error(&body).2.as_deref(),
        Some("server:setup"),
        "{body}"
    );
    // Bad input is refused and changes nothing.
    for bad in [
        json!({ "name": "  " }),
        json!({ "name": "x".repeat(300) }),
        json!({ "name": "Ok", "description": "d".repeat(3000) }),
        json!({ "name": "Ok", "inviteOnly": true }),
    ] {
        let (_, body) = app
            .graphql(Some(&admin.token), UPDATE, json!({ "i": bad }))
            .await;
        assert_eq!(first_error(&body).0, "USER_INPUT_ERROR", "{body}");
    }
    assert_eq!(server_info(&app).await, before);

    let (_, body) = app
        .graphql(
            Some(&admin.token),
            UPDATE,
            json!({ "i": {
                "name": "Studio Auth", "company": "Studio", "description": "Our server",
                "adminContact": "admin@studio.example", "termsOfService": "https://studio.example/terms"
            } }),
        )
        .await;
    assert_eq!(body["data"]["serverInfoUpdate"], true, "{body}");
    let after = server_info(&app).await;
    assert_eq!(
        after,
        json!({ "name": "Studio Auth", "company": "Studio", "description": "Our server",
                "adminContact": "admin@studio.example", "termsOfService": "https://studio.example/terms" })
    );
    let page = Browser::new(&app)
        .get("/authn/login")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Studio Auth"), "the pages use the new name");

    if app.is_postgres() {
        // Another replica shows it once its short cache has passed.
        let replica = app.replica().await;
        app.clock.advance(11_000);
        assert_eq!(server_info(&replica).await, after);
    }
}

async fn server_roles_are_changed_by_administrators_only(app: TestApp) {
    let admin = app.user("Role Admin").await;
    let member = app.user("Role Member").await;
    let other = app.user("Role Other").await;

    let (_, body) = app
        .graphql(
            Some(&member.token),
            ROLE,
            json!({ "i": { "id": other.id, "role": "server:admin" } }),
        )
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN", "{body}");
    assert_eq!(role_of(&app, &admin, &other.id).await, "server:user");

    for (input, fragment) in [
        (
            json!({ "id": admin.id, "role": "server:user" }),
            "your own server role",
        ),
        (
            json!({ "id": member.id, "role": "server:root" }),
            "no server role",
        ),
        (
            json!({ "id": member.id, "role": "server:guest" }),
            "no server role",
        ),
    ] {
        let (_, body) = app
            .graphql(Some(&admin.token), ROLE, json!({ "i": input }))
            .await;
        let (code, message, _) = first_error(&body);
        assert_eq!(code, "USER_INPUT_ERROR", "{body}");
        assert!(message.contains(fragment), "{message}");
    }
    let (_, body) = app
        .graphql(
            Some(&admin.token),
            ROLE,
            json!({ "i": { "id": "nosuchuser", "role": "server:admin" } }),
        )
        .await;
    assert_eq!(first_error(&body).0, "USER_NOT_FOUND", "{body}");

    // The member's token, checked (and cached) as a user's, is an administrator's at once.
    let (_, body) = app
        .graphql(
            Some(&member.token),
            UPDATE,
            json!({ "i": { "name": "Not yet" } }),
        )
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN");
    let (_, body) = app
        .graphql(
            Some(&admin.token),
            ROLE,
            json!({ "i": { "id": member.id, "role": "server:admin" } }),
        )
        .await;
    assert_eq!(body["data"]["userRoleChange"], true, "{body}");
    let (_, body) = app
        .graphql(
            Some(&member.token),
            UPDATE,
            json!({ "i": { "name": "Now yes" } }),
        )
        .await;
    assert_eq!(body["data"]["serverInfoUpdate"], true, "{body}");

    // An administrator's token without server:setup cannot change roles (profile:write, which
    // Speckle asks for, is a scope any app may be given).
    let narrow = app
        .pat(&admin.token, &["profile:write", "profile:read"])
        .await;
    let (_, body) = app
        .graphql(
            Some(&narrow),
            ROLE,
            json!({ "i": { "id": other.id, "role": "server:admin" } }),
        )
        .await;
    assert_eq!(
        first_error(&body).2.as_deref(),
        Some("server:setup"),
        "{body}"
    );

    // Archived: signed out of the browser, cannot sign in again, and the token no longer reaches
    // what needs a user.
    let browser = Browser::new(&app);
    browser.sign_in(&other).await;
    let script = app.pat(&other.token, &["profile:read"]).await;
    let (_, body) = app
        .graphql(
            Some(&member.token),
            ROLE,
            json!({ "i": { "id": other.id, "role": "server:archived-user" } }),
        )
        .await;
    assert_eq!(body["data"]["userRoleChange"], true, "{body}");
    let (status, _) = app.whoami(&other.token).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the web-app token is a session: ended"
    );
    let (_, body) = app.whoami(&script).await;
    assert_eq!(first_error(&body).0, "FORBIDDEN", "{body}");
    let res = browser.get("/settings/tokens").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the session ended");
    browser.get("/authn/login").await;
    let csrf = browser.csrf();
    let res = browser
        .post(
            "/authn/login",
            &[
                ("csrf", &csrf),
                ("email", &other.email),
                ("password", &other.password),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("archived by an administrator")
    );
    let res = app.login(&other.email, &other.password).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "nor through Speckle's sign-in"
    );

    // Two administrators left; demoting each other at once leaves at least one.
    let (a, b) = tokio::join!(
        app.graphql(
            Some(&admin.token),
            ROLE,
            json!({ "i": { "id": member.id, "role": "server:user" } })
        ),
        app.graphql(
            Some(&member.token),
            ROLE,
            json!({ "i": { "id": admin.id, "role": "server:user" } })
        ),
    );
    let changed = [a.1, b.1]
        .iter()
        .filter(|body| body["data"]["userRoleChange"] == true)
        .count();
    assert!(changed <= 1, "one of them is refused");
    let observer = app.user("Role Observer").await;
    let roles = [
        role_of(&app, &observer, &admin.id).await,
        role_of(&app, &observer, &member.id).await,
    ];
    assert!(roles.iter().any(|r| r == "server:admin"), "{roles:?}");
}

async fn admin_pages_refuse_everyone_else(app: TestApp) {
    let admin = app.user("Page Admin").await;
    let member = app.user("Page Member").await;
    let browser = Browser::new(&app);
    browser.sign_in(&member).await;
    let tokens = browser.get("/settings/tokens").await.text().await.unwrap();
    assert!(
        !tokens.contains("Server admin"),
        "no admin links for a user"
    );
    for path in ["/settings/server", "/settings/users"] {
        let res = browser.get(path).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("You do not have the required server role")
        );
    }
    let csrf = browser.csrf();
    let res = browser
        .post(
            "/settings/server",
            &[("csrf", &csrf), ("name", "Taken over")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = browser
        .post(
            &format!("/settings/users/{}/role", member.id),
            &[("csrf", &csrf), ("role", "server:admin")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(server_info(&app).await["name"], "Tessera");
    assert_eq!(role_of(&app, &admin, &member.id).await, "server:user");

    // Signed out: sent to sign in.
    let res = Browser::new(&app).get("/settings/users").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // An administrator's forms without the CSRF token are refused too.
    let admin_browser = Browser::new(&app);
    admin_browser.sign_in(&admin).await;
    let res = admin_browser
        .post("/settings/server", &[("name", "No token")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = admin_browser
        .post(
            &format!("/settings/users/{}/role", member.id),
            &[("csrf", "forged"), ("role", "server:admin")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(server_info(&app).await["name"], "Tessera");
    assert_eq!(role_of(&app, &admin, &member.id).await, "server:user");
}

async fn admin_pages_change_the_server_and_roles(app: TestApp) {
    let admin = app.user("Site Admin").await;
    let member = app.user("Zed Member").await;
    let browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let res = browser.get("/settings/server").await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Server admin") && page.contains("value=\"Tessera\""),
        "{page}"
    );
    let csrf = browser.csrf();
    let res = browser
        .post(
            "/settings/server",
            &[("csrf", &csrf), ("name", " "), ("company", "Kept")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(page.contains("The server needs a name."));
    assert!(page.contains("value=\"Kept\""), "what was typed stays");
    let res = browser
        .post(
            "/settings/server",
            &[
                ("csrf", &csrf),
                ("name", "Atelier"),
                ("admin_contact", "ops@atelier.example"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(res.headers()), "/settings/server?saved");
    assert_eq!(server_info(&app).await["name"], "Atelier");
    assert_eq!(
        server_info(&app).await["adminContact"],
        "ops@atelier.example"
    );

    let page = browser.get("/settings/users").await.text().await.unwrap();
    assert!(
        page.contains("Site Admin") && page.contains("Zed Member"),
        "{page}"
    );
    assert!(page.contains("(you)"));
    let page = browser
        .get("/settings/users?query=zed")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<strong>Zed Member</strong>")
            && !page.contains("<strong>Site Admin</strong>"),
        "{page}"
    );
    let csrf = browser.csrf();
    let res = browser
        .post(
            &format!("/settings/users/{}/role", member.id),
            &[("csrf", &csrf), ("role", "server:admin")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(role_of(&app, &admin, &member.id).await, "server:admin");
    // Both changes are in the administrator's activity, the role change in the member's too.
    let log = browser
        .get("/settings/activity")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        log.contains("Server description changed") && log.contains("Atelier"),
        "{log}"
    );
    assert!(
        log.contains("Server role changed") && log.contains("Zed Member: Admin"),
        "{log}"
    );
    let theirs = Browser::new(&app);
    theirs.sign_in(&member).await;
    let log = theirs.get("/settings/activity").await.text().await.unwrap();
    assert!(log.contains("Admin, by an administrator"), "{log}");
    let res = browser
        .post(
            &format!("/settings/users/{}/role", admin.id),
            &[("csrf", &csrf), ("role", "server:user")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("your own server role"));
    let res = browser
        .post(
            "/settings/users/nosuchuser/role",
            &[("csrf", &csrf), ("role", "server:user")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = browser
        .get(&format!("/settings/users?query={}", "q".repeat(300)))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
