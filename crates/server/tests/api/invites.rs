//! Sharing a project by invitation, as Speckle does it: owners invite by user id or email, the
//! invitee accepts or declines with the token, owners cancel; messages and codes are Speckle's.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    invite_by_id_and_accept,
    invite_by_email_and_decline,
    cancel_and_reuse_are_refused,
    only_owners_invite_and_scopes_are_checked,
    an_email_without_an_account_waits_for_registration,
    legacy_stream_invites,
    update_role_and_stream_answers_match_speckle,
);

const CREATE: &str = "mutation($p: ID!, $i: ProjectInviteCreateInput!) { projectMutations { invites { create(projectId: $p, input: $i) { id invitedTeam { id inviteId title role token user { id } invitedBy { id } } } } } }";
const USE: &str =
    "mutation($i: ProjectInviteUseInput!) { projectMutations { invites { use(input: $i) } } }";
const CANCEL: &str = "mutation($p: ID!, $i: String!) { projectMutations { invites { cancel(projectId: $p, inviteId: $i) { invitedTeam { id } } } } }";
const MINE: &str = "{ activeUser { projectInvites { id inviteId projectId projectName title role token user { id } invitedBy { id name } } } }";
const TEAM: &str = "query($p: String!) { project(id: $p) { role team { role user { id } } } }";

async fn project(app: &TestApp, token: &str, visibility: &str) -> String {
    let (_, body) = app
        .graphql(
            Some(token),
            "mutation($i: ProjectCreateInput) { projectMutations { create(input: $i) { id } } }",
            json!({"i": {"name": "Shared", "visibility": visibility}}),
        )
        .await;
    body["data"]["projectMutations"]["create"]["id"]
        .as_str()
        .expect("project")
        .to_owned()
}

async fn invite(app: &TestApp, token: &str, project: &str, input: Value) -> Value {
    app.graphql(Some(token), CREATE, json!({"p": project, "i": input}))
        .await
        .1
}

async fn my_invites(app: &TestApp, token: &str) -> Vec<Value> {
    let (_, body) = app.graphql(Some(token), MINE, json!({})).await;
    body["data"]["activeUser"]["projectInvites"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{body}"))
}

async fn use_invite(
    app: &TestApp,
    token: &str,
    project: &str,
    invite: &str,
    accept: bool,
) -> Value {
    app.graphql(
        Some(token),
        USE,
        json!({"i": {"projectId": project, "token": invite, "accept": accept}}),
    )
    .await
    .1
}

async fn role_of(app: &TestApp, token: &str, project: &str) -> Value {
    let (_, body) = app.graphql(Some(token), TEAM, json!({"p": project})).await;
    body["data"]["project"]["role"].clone()
}

async fn invite_by_id_and_accept(app: TestApp) {
    let owner = app.user("Inviting Owner").await;
    let friend = app.user("Invited Friend").await;
    let p = project(&app, &owner.token, "PRIVATE").await;
    let body = invite(
        &app,
        &owner.token,
        &p,
        json!({"userId": friend.id, "role": "stream:reviewer"}),
    )
    .await;
    let team = &body["data"]["projectMutations"]["invites"]["create"]["invitedTeam"];
    assert_eq!(team.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(team[0]["user"]["id"], friend.id.as_str());
    assert_eq!(team[0]["invitedBy"]["id"], owner.id.as_str());
    assert_eq!(team[0]["role"], "stream:reviewer");
    assert_eq!(team[0]["title"], "Invited Friend");
    assert!(
        team[0]["token"].is_null(),
        "the inviter never sees the token"
    );
    assert!(
        team[0]["id"].as_str().unwrap().starts_with("invite:"),
        "Speckle's id form"
    );
    // Not a collaborator yet.
    let (_, body) = app
        .graphql(Some(&friend.token), TEAM, json!({"p": p}))
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN");
    let mine = my_invites(&app, &friend.token).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["projectId"], p.as_str());
    assert_eq!(mine[0]["projectName"], "Shared");
    assert_eq!(mine[0]["invitedBy"]["name"], "Inviting Owner");
    let token = mine[0]["token"]
        .as_str()
        .expect("the invitee sees the token")
        .to_owned();
    // projectInvite finds it by token, and without a token for its invitee.
    for vars in [json!({"p": p, "t": token}), json!({"p": p, "t": null})] {
        let (_, body) = app
            .graphql(
                Some(&friend.token),
                "query($p: String!, $t: String) { projectInvite(projectId: $p, token: $t) { inviteId token } }",
                vars,
            )
            .await;
        assert_eq!(
            body["data"]["projectInvite"]["inviteId"], mine[0]["inviteId"],
            "{body}"
        );
    }
    let (_, body) = app
        .graphql(
            Some(&friend.token),
            "query($p: String!) { projectInvite(projectId: $p, token: \"not a real token\") { id } }",
            json!({"p": p}),
        )
        .await;
    assert!(body["data"]["projectInvite"].is_null(), "{body}");
    let body = use_invite(&app, &friend.token, &p, &token, true).await;
    assert_eq!(
        body["data"]["projectMutations"]["invites"]["use"], true,
        "{body}"
    );
    assert_eq!(role_of(&app, &friend.token, &p).await, "stream:reviewer");
    assert!(my_invites(&app, &friend.token).await.is_empty(), "used up");
}

async fn invite_by_email_and_decline(app: TestApp) {
    let owner = app.user("Email Owner").await;
    let friend = app.user("Email Friend").await;
    let p = project(&app, &owner.token, "PRIVATE").await;
    // The email of a registered user names that user, whatever its case.
    let body = invite(
        &app,
        &owner.token,
        &p,
        json!({"email": friend.email.to_uppercase()}),
    )
    .await;
    let team = &body["data"]["projectMutations"]["invites"]["create"]["invitedTeam"];
    assert_eq!(team[0]["user"]["id"], friend.id.as_str(), "{body}");
    assert_eq!(team[0]["role"], "stream:contributor", "the default role");
    // Inviting again replaces the earlier invitation.
    invite(&app, &owner.token, &p, json!({"email": friend.email})).await;
    let mine = my_invites(&app, &friend.token).await;
    assert_eq!(mine.len(), 1, "one pending invitation: {mine:?}");
    let token = mine[0]["token"].as_str().unwrap().to_owned();
    let body = use_invite(&app, &friend.token, &p, &token, false).await;
    assert_eq!(body["data"]["projectMutations"]["invites"]["use"], true);
    assert!(my_invites(&app, &friend.token).await.is_empty());
    let (_, body) = app
        .graphql(Some(&friend.token), TEAM, json!({"p": p}))
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN", "declining gives no role");
    let body = use_invite(&app, &friend.token, &p, &token, true).await;
    assert_eq!(
        first_error(&body),
        (
            "INVITE_NOT_FOUND".into(),
            "Attempted to finalize nonexistant invite".into(),
            None
        )
    );
}

async fn cancel_and_reuse_are_refused(app: TestApp) {
    let owner = app.user("Cancel Owner").await;
    let friend = app.user("Cancel Friend").await;
    let other = app.user("Someone Else").await;
    let p = project(&app, &owner.token, "PUBLIC").await;
    invite(&app, &owner.token, &p, json!({"userId": friend.id})).await;
    let mine = my_invites(&app, &friend.token).await;
    let (invite_id, token) = (
        mine[0]["inviteId"].as_str().unwrap().to_owned(),
        mine[0]["token"].as_str().unwrap().to_owned(),
    );
    // Someone else cannot use it.
    let body = use_invite(&app, &other.token, &p, &token, true).await;
    assert_eq!(
        first_error(&body),
        (
            "INVITE_FINALIZING_ERROR".into(),
            "Attempted to finalize mismatched invite".into(),
            None
        )
    );
    // A non-owner cannot cancel it.
    let (_, body) = app
        .graphql(Some(&other.token), CANCEL, json!({"p": p, "i": invite_id}))
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN", "{body}");
    let (_, body) = app
        .graphql(Some(&owner.token), CANCEL, json!({"p": p, "i": invite_id}))
        .await;
    assert_eq!(
        body["data"]["projectMutations"]["invites"]["cancel"]["invitedTeam"],
        json!([]),
        "{body}"
    );
    let body = use_invite(&app, &friend.token, &p, &token, true).await;
    assert_eq!(
        first_error(&body).0,
        "INVITE_NOT_FOUND",
        "a cancelled invitation is gone"
    );
    let (_, body) = app
        .graphql(Some(&owner.token), CANCEL, json!({"p": p, "i": invite_id}))
        .await;
    assert_eq!(
        first_error(&body),
        (
            "INVITE_NOT_FOUND".into(),
            "Attempted to cancel nonexistant invite".into(),
            None
        )
    );
    // Used once: accepting twice fails the second time.
    invite(&app, &owner.token, &p, json!({"userId": friend.id})).await;
    let token = my_invites(&app, &friend.token).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        use_invite(&app, &friend.token, &p, &token, true).await["errors"],
        Value::Null
    );
    let body = use_invite(&app, &friend.token, &p, &token, true).await;
    assert_eq!(first_error(&body).0, "INVITE_NOT_FOUND");
    // A collaborator cannot be invited again.
    let body = invite(&app, &owner.token, &p, json!({"userId": friend.id})).await;
    assert_eq!(
        first_error(&body),
        (
            "INVITE_CREATE_ERROR".into(),
            "The target user is already a collaborator of the specified project".into(),
            None
        )
    );
}

async fn only_owners_invite_and_scopes_are_checked(app: TestApp) {
    let owner = app.user("Scope Owner").await;
    let member = app.user("Scope Member").await;
    let newcomer = app.user("Scope Newcomer").await;
    let p = project(&app, &owner.token, "PRIVATE").await;
    assert!(
        app.join(&owner.token, &p, &member, "stream:contributor")
            .await
            .is_null()
    );
    let body = invite(&app, &member.token, &p, json!({"userId": newcomer.id})).await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "You do not have enough permissions in the project to perform this action".into(),
            None
        ),
        "only owners invite"
    );
    let stranger = app.user("Scope Stranger").await;
    let body = invite(&app, &stranger.token, &p, json!({"userId": newcomer.id})).await;
    assert_eq!(
        first_error(&body).1,
        "You do not have access to the project"
    );
    let no_invite = app
        .pat(
            &owner.token,
            &["streams:read", "streams:write", "users:read"],
        )
        .await;
    let body = invite(&app, &no_invite, &p, json!({"userId": newcomer.id})).await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "Your auth token does not have the required scope: users:invite.".into(),
            Some("users:invite".into())
        )
    );
    for (input, message) in [
        (json!({}), "Either email or userId must be specified"),
        (
            json!({"userId": "0000000000"}),
            "Attempting to invite an invalid user",
        ),
        (
            json!({"userId": newcomer.id, "role": "stream:boss"}),
            "Unexpected project invite role",
        ),
        (
            json!({"userId": owner.id}),
            "The target user is already a collaborator of the specified project",
        ),
        (json!({"email": "not an email"}), "Invalid e-mail address"),
    ] {
        let body = invite(&app, &owner.token, &p, input.clone()).await;
        assert_eq!(
            first_error(&body),
            ("INVITE_CREATE_ERROR".into(), message.into(), None),
            "{input}"
        );
    }
    // A batch is checked whole before anything is stored.
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($p: ID!, $i: [ProjectInviteCreateInput!]!) { projectMutations { invites { batchCreate(projectId: $p, input: $i) { invitedTeam { id } } } } }",
            json!({"p": p, "i": [{"userId": newcomer.id}, {"userId": "0000000000"}]}),
        )
        .await;
    assert_eq!(first_error(&body).0, "INVITE_CREATE_ERROR");
    assert!(
        my_invites(&app, &newcomer.token).await.is_empty(),
        "nothing stored"
    );
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($p: ID!, $i: [ProjectInviteCreateInput!]!) { projectMutations { invites { batchCreate(projectId: $p, input: $i) { invitedTeam { title } } } } }",
            json!({"p": p, "i": [{"userId": newcomer.id}, {"email": "later@example.org"}]}),
        )
        .await;
    let titles = &body["data"]["projectMutations"]["invites"]["batchCreate"]["invitedTeam"];
    assert_eq!(titles.as_array().map(Vec::len), Some(2), "{body}");
    // The team's contributors see the pending invitations; reviewers do not.
    let (_, body) = app
        .graphql(
            Some(&member.token),
            "query($p: String!) { project(id: $p) { invitedTeam { title } } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(
        body["data"]["project"]["invitedTeam"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

async fn an_email_without_an_account_waits_for_registration(app: TestApp) {
    let owner = app.user("Waiting Owner").await;
    let p = project(&app, &owner.token, "PRIVATE").await;
    let email = "not.yet@example.org";
    let body = invite(
        &app,
        &owner.token,
        &p,
        json!({"email": "Not.Yet@Example.org"}),
    )
    .await;
    let team = &body["data"]["projectMutations"]["invites"]["create"]["invitedTeam"];
    assert_eq!(team[0]["title"], email, "{body}");
    assert!(team[0]["user"].is_null());
    // Registering with a token that is not this email's is refused, and stores nothing.
    let res = app
        .post_form(
            "/auth/local/register?challenge=abc&token=wrongtoken",
            &[
                ("email", email),
                ("password", "a long enough password"),
                ("name", "Not Yet"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVITE_NOT_FOUND", "{body}");
    assert_eq!(
        body["error"]["message"],
        "Wrong e-mail address or invite token. Make sure you're using the same e-mail address \
         that received the invite."
    );
    // Speckle's other name for the parameter is read too.
    let res = app
        .post_form(
            "/auth/local/register?challenge=abc&inviteId=wrongtoken",
            &[
                ("email", email),
                ("password", "a long enough password"),
                ("name", "Not Yet"),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "inviteId= is checked"
    );
    // Registering plainly attaches the invitation; it stays pending until accepted.
    let res = app
        .post_form(
            "/auth/local/register?challenge=abc",
            &[
                ("email", email),
                ("password", "a long enough password"),
                ("name", "Not Yet"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let (_, pair) = app
        .exchange(&access_code(&location(res.headers())), "abc")
        .await;
    let token = pair["token"].as_str().unwrap().to_owned();
    let mine = my_invites(&app, &token).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["title"], "Not Yet");
    assert_eq!(role_of(&app, &owner.token, &p).await, "stream:owner");
    let invite_token = mine[0]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        use_invite(&app, &token, &p, &invite_token, true).await["errors"],
        Value::Null
    );
    assert_eq!(role_of(&app, &token, &p).await, "stream:contributor");
}

async fn legacy_stream_invites(app: TestApp) {
    let owner = app.user("Legacy Inviter").await;
    let friend = app.user("Legacy Invitee").await;
    let p = project(&app, &owner.token, "PRIVATE").await;
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($i: StreamInviteCreateInput!) { streamInviteCreate(input: $i) }",
            json!({"i": {"streamId": p, "userId": friend.id, "message": "join us"}}),
        )
        .await;
    assert_eq!(body["data"]["streamInviteCreate"], true, "{body}");
    let (_, body) = app
        .graphql(
            Some(&friend.token),
            "{ streamInvites { inviteId streamId streamName token } }",
            json!({}),
        )
        .await;
    let invites = body["data"]["streamInvites"]
        .as_array()
        .expect("list")
        .clone();
    assert_eq!(invites.len(), 1, "{body}");
    assert_eq!(invites[0]["streamId"], p.as_str());
    let token = invites[0]["token"].as_str().unwrap().to_owned();
    let invite_id = invites[0]["inviteId"].as_str().unwrap().to_owned();
    let (_, body) = app
        .graphql(
            Some(&friend.token),
            "query($s: String!, $t: String) { streamInvite(streamId: $s, token: $t) { inviteId } }",
            json!({"s": p, "t": token}),
        )
        .await;
    assert_eq!(body["data"]["streamInvite"]["inviteId"], invite_id.as_str());
    // Cancel, invite again, accept.
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($s: String!, $i: String!) { streamInviteCancel(streamId: $s, inviteId: $i) }",
            json!({"s": p, "i": invite_id}),
        )
        .await;
    assert_eq!(body["data"]["streamInviteCancel"], true, "{body}");
    app.graphql(
        Some(&owner.token),
        "mutation($i: StreamInviteCreateInput!) { streamInviteCreate(input: $i) }",
        json!({"i": {"streamId": p, "email": friend.email, "role": "stream:owner"}}),
    )
    .await;
    let token = my_invites(&app, &friend.token).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = app
        .graphql(
            Some(&friend.token),
            "mutation($s: String!, $t: String!) { streamInviteUse(accept: true, streamId: $s, token: $t) }",
            json!({"s": p, "t": token}),
        )
        .await;
    assert_eq!(body["data"]["streamInviteUse"], true, "{body}");
    assert_eq!(role_of(&app, &friend.token, &p).await, "stream:owner");
}

async fn update_role_and_stream_answers_match_speckle(app: TestApp) {
    let owner = app.user("Role Owner").await;
    let outsider = app.user("Role Outsider").await;
    let p = project(&app, &owner.token, "PRIVATE").await;
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($p: String!, $u: String!) { projectMutations { updateRole(input: {projectId: $p, userId: $u, role: \"stream:contributor\"}) { id } } }",
            json!({"p": p, "u": outsider.id}),
        )
        .await;
    assert_eq!(
        first_error(&body),
        (
            "STREAM_UPDATE_ERROR".into(),
            "Cannot grant permissions to users who aren't collaborators already - invite the \
             user to the stream first"
                .into(),
            None
        )
    );
    let (_, body) = app
        .graphql(Some(&outsider.token), TEAM, json!({"p": p}))
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN", "no role was given");
    // The legacy stream API words a refusal as Speckle's does; the project API keeps its own.
    for token in [Some(outsider.token.as_str()), None] {
        let (_, body) = app
            .graphql(
                token,
                "query($p: String!) { stream(id: $p) { id } }",
                json!({"p": p}),
            )
            .await;
        assert_eq!(
            first_error(&body),
            (
                "FORBIDDEN".into(),
                "You are not authorized to access this resource.".into(),
                None
            ),
            "{body}"
        );
    }
    let (_, body) = app
        .graphql(
            Some(&outsider.token),
            "query($p: String!) { project(id: $p) { id } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(
        first_error(&body).1,
        "You do not have access to the project"
    );
}

/// Decodes a quoted-printable text (soft line breaks and `=XX` escapes), as a mail client does.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'=', Some(hex)) if hex.iter().all(u8::is_ascii_hexdigit) => {
                let hex = std::str::from_utf8(hex).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A local SMTP sink: accepts one connection at a time, speaks just enough SMTP, and hands each
/// message's DATA over the channel. Loopback only.
async fn smtp_sink() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(message) = data.as_mut() {
                        if line == "." {
                            let _ = tx.send(data.take().unwrap_or_default());
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else {
                            message.push_str(&line);
                            message.push('\n');
                        }
                        continue;
                    }
                    let verb = line.to_ascii_uppercase();
                    let reply: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if verb.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go on\r\n"
                    } else if verb.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (port, rx)
}

/// With `[smtp]` set, an invitation is emailed: to the address, with a link that carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_emailed_when_smtp_is_set() {
    let (port, mut mail) = smtp_sink().await;
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.smtp = Some(tessera_server::config::SmtpSettings {
            host: "127.0.0.1".into(),
            port: Some(port),
            username: None,
            password: None,
            from: "Tessera <tessera@example.org>".into(),
            tls: tessera_server::config::SmtpTls::None,
        });
    })
    .await
    .unwrap();
    let owner = app.user("Mail Owner").await;
    let p = project(&app, &owner.token, "PRIVATE").await;
    let body = invite(
        &app,
        &owner.token,
        &p,
        json!({"email": "Mailed.Person@Example.org"}),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let message = tokio::time::timeout(std::time::Duration::from_secs(10), mail.recv())
        .await
        .expect("an email within 10 s")
        .expect("the sink is open");
    let message = quoted_printable(&message);
    assert!(
        message.contains("To: mailed.person@example.org"),
        "{message}"
    );
    assert!(
        message.contains("Subject: Mail Owner invited you to Shared"),
        "{message}"
    );
    let token = message
        .split("/authn/register?token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the registration link")
        .to_owned();
    // The link's token is the invitation's: registering with it works for that address only,
    // and marks the account verified (the email was shown to be theirs).
    let register = |email: &'static str| {
        let path = format!("/auth/local/register?challenge=abc&token={token}");
        let app = &app;
        async move {
            app.post_form(
                &path,
                &[
                    ("email", email),
                    ("password", "a long enough password"),
                    ("name", "Mailed"),
                ],
            )
            .await
        }
    };
    assert_eq!(
        register("someone.else@example.org").await.status(),
        StatusCode::BAD_REQUEST
    );
    let res = register("mailed.person@example.org").await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let (_, pair) = app
        .exchange(&access_code(&location(res.headers())), "abc")
        .await;
    let (_, body) = app
        .graphql(
            pair["token"].as_str(),
            "{ activeUser { verified } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["activeUser"]["verified"], true, "{body}");
    // Registering without a token leaves an account unverified.
    let (_, body) = app
        .graphql(Some(&owner.token), "{ activeUser { verified } }", json!({}))
        .await;
    assert_eq!(body["data"]["activeUser"]["verified"], false, "{body}");
}
