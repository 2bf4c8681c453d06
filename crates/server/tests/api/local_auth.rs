//! `POST /auth/local/register` and `POST /auth/local/login`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    register_redirects_with_an_absolute_access_code_url,
    register_accepts_a_form_body,
    register_rejections_are_clear_and_create_nothing,
    emails_are_unique_case_insensitively,
    first_user_is_admin_later_ones_are_users,
    login_with_json_or_form_and_any_email_case,
    login_failures_look_the_same,
    challenge_is_required_and_bounded,
);

async fn register_redirects_with_an_absolute_access_code_url(app: TestApp) {
    let res = app
        .register("new@example.org", "password123", "New Person")
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = location(res.headers());
    assert!(
        loc.starts_with(&format!("{}/?access_code=", app.url)),
        "absolute URL on the server: {loc}"
    );
    assert!(loc.ends_with("&register=true"), "{loc}");
    let code = access_code(&loc);
    assert_eq!(code.len(), 42);
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    // The code belongs to the web app and the challenge of the query string.
    let (status, body) = app.exchange(&code, CHALLENGE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn register_accepts_a_form_body(app: TestApp) {
    // What specklepy's test fixture sends.
    let res = app
        .post_form(
            "/auth/local/register?challenge=pyspeckletests",
            &[
                ("email", "abc1234@example.org"),
                ("password", "$uper$3cr3tP@ss"),
                ("name", "abc1234 Name"),
                ("company", "test spockle"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let code = access_code(&location(res.headers()));
    let (status, _) = app.exchange(&code, "pyspeckletests").await;
    assert_eq!(status, StatusCode::OK);
    let login = app
        .post_form(
            "/auth/local/login?challenge=c",
            &[
                ("email", "abc1234@example.org"),
                ("password", "$uper$3cr3tP@ss"),
            ],
        )
        .await;
    assert_eq!(login.status(), StatusCode::FOUND);
}

async fn register_error(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let res = app
        .post_json(&format!("/auth/local/register?challenge={CHALLENGE}"), body)
        .await;
    let status = res.status();
    (status, res.json().await.expect("JSON error body"))
}

async fn register_rejections_are_clear_and_create_nothing(app: TestApp) {
    let cases = [
        (
            json!({"email": "a@example.org", "name": "A"}),
            "Password missing",
        ),
        (
            json!({"email": "a@example.org", "name": "A", "password": ""}),
            "Password missing",
        ),
        (
            json!({"password": "password123", "name": "A"}),
            "E-mail address is required",
        ),
        (
            json!({"password": "password123", "name": "A", "email": "  "}),
            "E-mail address is required",
        ),
        (
            json!({"password": "password123", "email": "a@example.org"}),
            "User name is required",
        ),
        (
            json!({"password": "1234567", "email": "a@example.org", "name": "A"}),
            "Password too short; needs to be 8 characters or longer.",
        ),
        (
            json!({"password": "password123", "email": "not-an-email", "name": "A"}),
            "E-mail address is not valid; it should look like name@example.com.",
        ),
        (
            json!({"password": "password123", "email": "a@example.org", "name": "A".repeat(513)}),
            "User name is too long; it can be at most 512 characters.",
        ),
        (
            json!({"password": "p".repeat(1025), "email": "a@example.org", "name": "A"}),
            "Password too long; it can be at most 1024 bytes.",
        ),
    ];
    let hashes_before = app.state.core.passwords_computed();
    for (body, message) in cases {
        let (status, err) = register_error(&app, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            err,
            json!({"error": {"message": message, "code": "USER_INPUT_ERROR"}}),
            "{body}"
        );
    }
    assert_eq!(
        app.state.core.passwords_computed(),
        hashes_before,
        "rejected registrations hash nothing"
    );
    // Nothing was created: the email is free and no one can log in with it.
    let login = app.login("a@example.org", "password123").await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    let ok = app.register("a@example.org", "password123", "A").await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    // A non-JSON body of the wrong kind is refused with a message.
    let res = app
        .client
        .post(format!("{}/auth/local/register?challenge=c", app.url))
        .header("content-type", "text/plain")
        .body("email=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("application/json"));
}

async fn emails_are_unique_case_insensitively(app: TestApp) {
    let first = app
        .register("Casey@Example.org", "password123", "Casey")
        .await;
    assert_eq!(first.status(), StatusCode::FOUND);
    for email in [
        "casey@example.org",
        "CASEY@EXAMPLE.ORG",
        " casey@example.org ",
    ] {
        let (status, err) = register_error(
            &app,
            json!({"email": email, "password": "password456", "name": "Other"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["error"]["message"], "Email taken. Try logging in?");
    }
    // The original account is intact: its password still works, the rejected one does not.
    assert_eq!(
        app.login("casey@example.org", "password123").await.status(),
        StatusCode::FOUND
    );
    assert_eq!(
        app.login("casey@example.org", "password456").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn first_user_is_admin_later_ones_are_users(app: TestApp) {
    let first = app.user("First").await;
    let second = app.user("Second").await;
    for (user, role) in [(&first, "server:admin"), (&second, "server:user")] {
        let (_, body) = app
            .graphql(Some(&user.token), "{ activeUser { role } }", json!({}))
            .await;
        assert_eq!(body["data"]["activeUser"]["role"], role);
    }
}

async fn login_with_json_or_form_and_any_email_case(app: TestApp) {
    let user = app.user("Login Person").await;
    let res = app.login(&user.email.to_uppercase(), &user.password).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = location(res.headers());
    assert!(
        loc.starts_with(&format!("{}/?access_code=", app.url)),
        "{loc}"
    );
    assert!(
        !loc.contains("register=true"),
        "login is not a registration: {loc}"
    );
    let (status, body) = app.exchange(&access_code(&loc), CHALLENGE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, me) = app.whoami(body["token"].as_str().unwrap()).await;
    assert_eq!(me["data"]["activeUser"]["id"], user.id.as_str());

    let form = app
        .post_form(
            "/auth/local/login?challenge=formchallenge",
            &[("email", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(form.status(), StatusCode::FOUND);
    let (status, _) = app
        .exchange(&access_code(&location(form.headers())), "formchallenge")
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn login_failures_look_the_same(app: TestApp) {
    let user = app.user("Target").await;
    let expected = json!({"err": true, "message": "Invalid credentials."});
    let before = app.state.core.passwords_computed();
    for (email, password) in [
        (user.email.as_str(), "wrong password"),
        ("nobody@example.org", "wrong password"),
        ("", "whatever1"),
        (user.email.as_str(), ""),
    ] {
        let res = app.login(email, password).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(res.json::<Value>().await.unwrap(), expected, "{email}");
    }
    // Each failure with an email, an unknown one included, spent exactly one password
    // verification: the response time does not tell whether an account exists. (No email at all
    // is refused without one: it names no account.)
    assert_eq!(app.state.core.passwords_computed() - before, 3);
}

async fn challenge_is_required_and_bounded(app: TestApp) {
    for path in [
        "/auth/local/register",
        "/auth/local/login",
        "/auth/local/login?challenge=",
    ] {
        let res = app
            .post_json(
                path,
                json!({"email": "a@example.org", "password": "password123", "name": "A"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            res.text().await.unwrap(),
            "Invalid request: no challenge detected."
        );
    }
    let long = "c".repeat(256);
    let res = app
        .post_json(
            &format!("/auth/local/register?challenge={long}"),
            json!({"email": "a@example.org", "password": "password123", "name": "A"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("at most 255"));
    // Nothing was created by the rejected attempts.
    assert_eq!(
        app.login("a@example.org", "password123").await.status(),
        StatusCode::UNAUTHORIZED
    );
}
