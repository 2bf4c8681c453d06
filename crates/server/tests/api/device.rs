//! The device authorization grant (RFC 8628): a standard library (the `oauth2` crate) plays the
//! device, the test plays the person on the `/device` page; every polling answer of §3.5 and
//! every refusal.

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use serde_json::Value;
use tessera_server::domain::apps::CLI_APP_ID;
use tessera_server::domain::device::{DEVICE_CODE_LIFESPAN, USER_CODE_ALPHABET};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    a_device_signs_in_with_a_standard_library,
    polling_answers_as_the_rfc_says,
    the_device_page_refuses_what_it_must,
);

/// Looking user codes up counts as signing in: guessing is rate-limited like passwords.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_user_codes_is_rate_limited() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.rate_limits.enabled = true).await else {
        return;
    };
    let user = app.user("Guess Er").await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(browser.get("/device?user_code=BCDF-GHJK").await.status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

fn cli_client(
    app: &TestApp,
) -> BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(CLI_APP_ID.into()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(format!("{}/oauth/device_authorization", app.url)).unwrap(),
        )
        .set_token_uri(TokenUrl::new(format!("{}/oauth/token", app.url)).unwrap())
}

/// A device asks to be signed in as the `tessera` CLI does.
async fn start(app: &TestApp, scopes: &[&str]) -> StandardDeviceAuthorizationResponse {
    let client = cli_client(app);
    let mut request = client.exchange_device_code();
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).into()));
    }
    request
        .request_async(&http())
        .await
        .expect("device authorization")
}

/// The person answers on `/device`, following the complete verification URI.
async fn answer(
    browser: &Browser<'_>,
    details: &StandardDeviceAuthorizationResponse,
    decision: &str,
) -> String {
    let complete = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .to_owned();
    let page = browser
        .get(&local(&url::Url::parse(&complete).unwrap()))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Tessera CLI wants to access your account"),
        "{page}"
    );
    assert!(
        page.contains(details.user_code().secret()),
        "the code is shown"
    );
    let res = browser
        .post(
            "/device",
            &[
                ("csrf", &browser.csrf()),
                ("user_code", details.user_code().secret()),
                ("decision", decision),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// Polls `/oauth/token` by hand: (status, body).
async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}/oauth/token", app.url))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

/// A sleep that does not wait: the test decides when the person answers.
async fn no_wait(_: std::time::Duration) {}

async fn a_device_signs_in_with_a_standard_library(app: TestApp) {
    let user = app.user("Dev Ice").await;
    let details = start(&app, &["profile:read", "streams:read"]).await;
    let code = details.user_code().secret();
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-");
    assert!(
        code.bytes()
            .filter(|b| *b != b'-')
            .all(|b| USER_CODE_ALPHABET.contains(&b)),
        "{code}"
    );
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{}/device", app.url)
    );
    assert_eq!(
        details.expires_in().as_secs() as i64,
        DEVICE_CODE_LIFESPAN / 1000
    );
    assert_eq!(details.interval().as_secs(), 5);

    let browser = Browser::new(&app);
    // Not signed in yet: the page sends the person to sign in and back, code and all.
    let complete = details
        .verification_uri_complete()
        .unwrap()
        .secret()
        .to_owned();
    let res = browser
        .get(&local(&url::Url::parse(&complete).unwrap()))
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(res.headers());
    assert!(
        to.starts_with("/authn/login?next=%2Fdevice%3Fuser_code%3D"),
        "{to}"
    );
    browser.sign_in(&user).await;
    let done = answer(&browser, &details, "allow").await;
    assert!(done.contains("Your device is signed in"), "{done}");

    let token = cli_client(&app)
        .exchange_device_access_token(&details)
        .request_async(&http(), no_wait, None)
        .await
        .expect("the device's tokens");
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["streams:read", "profile:read"]);
    assert!(token.refresh_token().is_some());
    let (status, me) = app.whoami(token.access_token().secret()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["data"]["activeUser"]["id"], user.id.as_str());

    // The code bought its tokens once.
    let (status, body) = poll(&app, CLI_APP_ID, details.device_code().secret()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // The same user code does not open the page again.
    let res = browser
        .get(&format!(
            "/device?user_code={}",
            details.user_code().secret()
        ))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("not valid"));

    // Denied: the library reports access_denied.
    let denied = start(&app, &[]).await;
    answer(&browser, &denied, "deny").await;
    let err = cli_client(&app)
        .exchange_device_access_token(&denied)
        .request_async(&http(), no_wait, None)
        .await
        .unwrap_err();
    match err {
        RequestTokenError::ServerResponse(r) => {
            assert_eq!(r.error().to_string(), "access_denied")
        }
        other => panic!("{other:?}"),
    }
    // Expired: the library reports expired_token.
    let late = start(&app, &[]).await;
    app.clock.advance(DEVICE_CODE_LIFESPAN + 1000);
    let err = cli_client(&app)
        .exchange_device_access_token(&late)
        .request_async(&http(), no_wait, None)
        .await
        .unwrap_err();
    match err {
        RequestTokenError::ServerResponse(r) => {
            assert_eq!(r.error().to_string(), "expired_token")
        }
        other => panic!("{other:?}"),
    }
}

async fn polling_answers_as_the_rfc_says(app: TestApp) {
    let user = app.user("Poll Ster").await;
    let details = start(&app, &["profile:read"]).await;
    let device_code = details.device_code().secret().to_owned();
    let error = |body: &Value| body["error"].as_str().unwrap_or_default().to_owned();
    // Nobody answered yet.
    let (status, body) = poll(&app, CLI_APP_ID, &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body), "authorization_pending");
    // Too soon: slow_down, and the interval grows by five seconds from then on.
    let (_, body) = poll(&app, CLI_APP_ID, &device_code).await;
    assert_eq!(error(&body), "slow_down");
    app.clock.advance(6_000);
    let (_, body) = poll(&app, CLI_APP_ID, &device_code).await;
    assert_eq!(error(&body), "slow_down", "the interval is ten seconds now");
    // And fifteen after that second slow_down.
    app.clock.advance(14_000);
    let (_, body) = poll(&app, CLI_APP_ID, &device_code).await;
    assert_eq!(error(&body), "slow_down");
    app.clock.advance(20_000);
    let (_, body) = poll(&app, CLI_APP_ID, &device_code).await;
    assert_eq!(error(&body), "authorization_pending");
    // Another client cannot poll this device's code; nor can a made-up code.
    let other = app.user("Other Author").await;
    let (other_app, _) = app
        .register_app(&other.token, "http://127.0.0.1/cb", &["profile:read"])
        .await;
    app.clock.advance(20_000);
    let (status, body) = poll(&app, &other_app, &device_code).await;
    assert_eq!(
        (status, error(&body).as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (_, body) = poll(&app, CLI_APP_ID, &"0".repeat(42)).await;
    assert_eq!(error(&body), "invalid_grant");
    let (_, body) = poll(&app, CLI_APP_ID, "short").await;
    assert_eq!(error(&body), "invalid_grant");
    let res = app
        .client
        .post(format!("{}/oauth/token", app.url))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", CLI_APP_ID),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error(&body), "invalid_request");
    // Allowed: the tokens, once.
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    answer(&browser, &details, "allow").await;
    app.clock.advance(20_000);
    let (status, body) = poll(&app, CLI_APP_ID, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "profile:read");
    app.clock.advance(20_000);
    let (_, body) = poll(&app, CLI_APP_ID, &device_code).await;
    assert_eq!(error(&body), "invalid_grant");
    // The sign-in is in the person's activity, as any app's is.
    app.state.core.housekeeping().await.unwrap();
    let (_, page) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { activity(limit: 20) { items { kind } } } }",
            serde_json::json!({}),
        )
        .await;
    assert!(page.to_string().contains("APP_AUTHORIZED"), "{page}");
}

async fn the_device_page_refuses_what_it_must(app: TestApp) {
    let user = app.user("Careful Person").await;
    let start_with = async |form: &[(&str, &str)]| {
        let res = app
            .client
            .post(format!("{}/oauth/device_authorization", app.url))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json::<Value>().await.unwrap())
    };
    // Unknown client, a scope the app may not have, a confidential client without its secret.
    let (status, body) = start_with(&[("client_id", "nobody")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = start_with(&[("client_id", CLI_APP_ID), ("scope", "server:setup")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = start_with(&[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (server_app, _) = app
        .register_app(&user.token, "https://server.example/cb", &["profile:read"])
        .await;
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($id: String!) { appUpdate(app: {id: $id, name: \"Server side\", \
             description: \"Runs on a server\", redirectUrl: \"https://server.example/cb\", \
             scopes: [\"profile:read\"], confidential: true}) }",
            serde_json::json!({"id": server_app}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let (status, body) = start_with(&[("client_id", &server_app)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    let details = start(&app, &[]).await;
    let browser = Browser::new(&app);
    browser.sign_in(&user).await;
    // The form; then a code that cannot be one, kept in the field and explained.
    let page = browser.get("/device").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Enter the code your device shows")
    );
    let res = browser.get("/device?user_code=AAAA-0000").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    assert!(
        text.contains("not valid") && text.contains("AAAA-0000"),
        "{text}"
    );
    // Case, spaces and the dash do not matter.
    let loose = details
        .user_code()
        .secret()
        .to_lowercase()
        .replace('-', " ");
    let res = browser
        .get(&format!("/device?user_code={}", urlencode(&loose)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // A forged form is refused and decides nothing.
    let res = browser
        .post(
            "/device",
            &[
                ("csrf", "forged"),
                ("user_code", details.user_code().secret()),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, body) = poll(&app, CLI_APP_ID, details.device_code().secret()).await;
    assert_eq!(body["error"], "authorization_pending");
    // Neither Allow nor Deny.
    let res = browser
        .post(
            "/device",
            &[
                ("csrf", &browser.csrf()),
                ("user_code", details.user_code().secret()),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
