//! `POST /auth/logout`: revokes the presented token and refresh chain, only for whoever holds them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    logout_needs_the_whole_token,
    logout_revokes_token_and_refresh_chain
);

const FAILED: &str = "Something went wrong while trying to logout.";

async fn logout_needs_the_whole_token(app: TestApp) {
    let user = app.user("Holder").await;
    let other = app.user("Other Holder").await;
    let t = &user.token;
    let bodies = [
        json!({"adsfadsf": "x"}),
        json!({"token": &t[..10]}),
        json!({"token": format!("{}{}", &t[..10], "0".repeat(32))}),
        json!({"token": format!("{t}EXTRA")}),
        json!({"token": "0".repeat(42)}),
        // Someone else's refresh token cannot ride along.
        json!({"token": t, "refreshToken": other.refresh_token}),
        json!({"token": t, "refreshToken": &user.refresh_token[..10]}),
    ];
    for body in bodies {
        let res = app.post_json("/auth/logout", body.clone()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(res.text().await.unwrap(), FAILED, "{body}");
    }
    assert_eq!(app.whoami(t).await.0, StatusCode::OK, "nothing was revoked");
    assert_eq!(app.whoami(&other.token).await.0, StatusCode::OK);
}

async fn logout_revokes_token_and_refresh_chain(app: TestApp) {
    let user = app.user("Leaver").await;
    let res = app
        .post_json(
            "/auth/logout",
            json!({"token": user.token, "refreshToken": user.refresh_token}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"message": "You have logged out."})
    );
    assert_eq!(app.whoami(&user.token).await.0, StatusCode::FORBIDDEN);
    let (status, body) = app
        .token_endpoint(json!({"appId": "spklwebapp", "appSecret": "spklwebapp", "refreshToken": user.refresh_token}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"err": "Invalid request"}));
    // A second logout with the same token fails: it no longer exists.
    let res = app
        .post_json("/auth/logout", json!({"token": user.token}))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A PAT can be logged out with just itself.
    let fresh = app.user("Second Leaver").await;
    let pat = app.pat(&fresh.token, &["profile:read"]).await;
    let res = app.post_form("/auth/logout", &[("token", &pat)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.whoami(&pat).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.whoami(&fresh.token).await.0, StatusCode::OK);
}
