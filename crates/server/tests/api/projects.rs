//! What tokens unlock: projects, collaborators, models and versions, and who may do what.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_server::domain::projects::NewProject;

use crate::on_both_backends;
use crate::support::*;

on_both_backends!(
    scope_role_visibility_matrix,
    resource_limited_tokens_reach_only_their_projects,
    the_last_owner_stays,
    legacy_stream_api_over_the_same_data,
    pagination_returns_each_project_exactly_once,
    user_search_rules,
    model_and_version_rules,
    no_side_doors_into_projects,
    stream_create_with_contributors_is_all_or_nothing,
);

const NO_ACCESS: &str = "You do not have access to the project";
const NOT_ENOUGH: &str = "You do not have enough permissions in the project to perform this action";
const NOT_LOGGED_IN: &str = "You are not logged in to this server";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Allowed,
    /// FORBIDDEN with this message.
    Forbidden(&'static str),
    /// FORBIDDEN for a missing scope.
    Scope(&'static str),
    /// UNAUTHORIZED (no token).
    Unauthorized,
}

async fn create_project(app: &TestApp, token: &str, name: &str, visibility: &str) -> String {
    let (_, body) = app
        .graphql(
            Some(token),
            "mutation($i: ProjectCreateInput) { projectMutations { create(input: $i) { id } } }",
            json!({"i": {"name": name, "visibility": visibility}}),
        )
        .await;
    body["data"]["projectMutations"]["create"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("project creation failed: {body}"))
        .to_owned()
}

async fn set_role(
    app: &TestApp,
    token: &str,
    project: &str,
    user: &str,
    role: Option<&str>,
) -> Value {
    app.graphql(
        Some(token),
        "mutation($i: ProjectUpdateRoleInput!) { projectMutations { updateRole(input: $i) { id } } }",
        json!({"i": {"projectId": project, "userId": user, "role": role}}),
    )
    .await
    .1
}

fn assert_outcome(body: &Value, expect: Expect, cell: &str) {
    match expect {
        Expect::Allowed => assert!(
            body["errors"].is_null(),
            "{cell}: expected success, got {body}"
        ),
        Expect::Forbidden(message) => {
            assert_eq!(
                first_error(body),
                ("FORBIDDEN".into(), message.into(), None),
                "{cell}"
            )
        }
        Expect::Scope(scope) => assert_eq!(
            first_error(body),
            (
                "FORBIDDEN".into(),
                format!("Your auth token does not have the required scope: {scope}."),
                Some(scope.into())
            ),
            "{cell}"
        ),
        Expect::Unauthorized => assert_eq!(
            first_error(body),
            (
                "UNAUTHORIZED".into(),
                "Must provide an auth token".into(),
                None
            ),
            "{cell}"
        ),
    }
}

/// The scope × role × visibility matrix for read, write, share and delete.
async fn scope_role_visibility_matrix(app: TestApp) {
    use Expect::*;
    let owner = app.user("Owner").await;
    let contributor = app.user("Contributor").await;
    let reviewer = app.user("Reviewer").await;
    let stranger = app.user("Stranger").await;
    let newcomer = app.user("Newcomer").await;

    // Each person with three kinds of token: everything, read-only, and none of the stream scopes.
    let read_only = ["streams:read", "profile:read", "users:read"];
    let no_streams = ["profile:read", "users:read"];
    let mut callers: Vec<(String, Option<String>)> = vec![("anonymous".into(), None)];
    for (who, user) in [
        ("owner", &owner),
        ("contributor", &contributor),
        ("reviewer", &reviewer),
        ("stranger", &stranger),
    ] {
        callers.push((format!("{who}/all scopes"), Some(user.token.clone())));
        callers.push((
            format!("{who}/streams:read"),
            Some(app.pat(&user.token, &read_only).await),
        ));
        callers.push((
            format!("{who}/no stream scopes"),
            Some(app.pat(&user.token, &no_streams).await),
        ));
    }

    // What each (action, visibility, person) gets with a token holding every scope.
    let full = |action: &str, public: bool, who: &str| -> Expect {
        match (action, who) {
            (_, "owner") => Allowed,
            ("read", "contributor" | "reviewer") => Allowed,
            ("read", "stranger") if public => Allowed,
            (_, "stranger") => Forbidden(NO_ACCESS),
            _ => Forbidden(NOT_ENOUGH),
        }
    };
    let expected = |action: &str, public: bool, caller: &str| -> Expect {
        let write = action != "read";
        match caller.split_once('/') {
            None if write => Unauthorized,
            None if public => Allowed,
            None => Forbidden(NOT_LOGGED_IN),
            Some((_, "no stream scopes")) if !write => Scope("streams:read"),
            Some((_, "no stream scopes" | "streams:read")) if write => Scope("streams:write"),
            Some((who, _)) => full(action, public, who),
        }
    };

    let project_with_team = |name: &'static str, visibility: &'static str| {
        let (app, owner, contributor, reviewer) = (&app, &owner, &contributor, &reviewer);
        async move {
            let id = create_project(app, &owner.token, name, visibility).await;
            let joined = app
                .join(&owner.token, &id, contributor, "stream:contributor")
                .await;
            assert!(joined.is_null(), "{joined}");
            let joined = app
                .join(&owner.token, &id, reviewer, "stream:reviewer")
                .await;
            assert!(joined.is_null(), "{joined}");
            id
        }
    };

    let mut cells = 0;
    for (visibility, public) in [("PRIVATE", false), ("PUBLIC", true)] {
        let shared = project_with_team("Matrix", visibility).await;
        for (caller, token) in &callers {
            let token = token.as_deref();
            for action in ["read", "write", "share", "delete"] {
                let target = if action == "delete" {
                    project_with_team("Doomed", visibility).await
                } else {
                    shared.clone()
                };
                let (query, vars) = match action {
                    "read" => (
                        "query($p: String!) { project(id: $p) { name } }",
                        json!({"p": target}),
                    ),
                    "write" => (
                        "mutation($p: String!) { projectMutations { update(update: {id: $p, description: \"changed\"}) { id } } }",
                        json!({"p": target}),
                    ),
                    // Sharing is an invitation, as in Speckle.
                    "share" => (
                        "mutation($p: ID!, $u: String!) { projectMutations { invites { create(projectId: $p, input: {userId: $u, role: \"stream:reviewer\"}) { id } } } }",
                        json!({"p": target, "u": newcomer.id}),
                    ),
                    _ => (
                        "mutation($p: String!) { projectMutations { delete(id: $p) } }",
                        json!({"p": target}),
                    ),
                };
                let (_, body) = app.graphql(token, query, vars).await;
                let expect = expected(action, public, caller);
                assert_outcome(&body, expect, &format!("{action} {visibility} as {caller}"));
                // A refused delete leaves the project in place; an allowed one removes it.
                if action == "delete" {
                    let (_, still) = app
                        .graphql(
                            Some(&owner.token),
                            "query($p: String!) { project(id: $p) { id } }",
                            json!({"p": target}),
                        )
                        .await;
                    assert_eq!(
                        still["errors"].is_null(),
                        expect != Allowed,
                        "{visibility} {caller}"
                    );
                }
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 2 * 13 * 4);
}

async fn resource_limited_tokens_reach_only_their_projects(app: TestApp) {
    let user = app.user("Limited").await;
    let a = create_project(&app, &user.token, "Allowed", "PRIVATE").await;
    let b = create_project(&app, &user.token, "Other", "PRIVATE").await;
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
            json!({"t": {"name": "one project", "scopes": ["streams:read", "streams:write", "profile:read"],
                         "limitResources": [{"id": a, "type": "project"}]}}),
        )
        .await;
    let limited = body["data"]["apiTokenCreate"].as_str().unwrap().to_owned();
    let read = "query($p: String!) { project(id: $p) { name } }";
    let (_, body) = app.graphql(Some(&limited), read, json!({"p": a})).await;
    assert_eq!(body["data"]["project"]["name"], "Allowed");
    let (_, body) = app.graphql(Some(&limited), read, json!({"p": b})).await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "You are not authorized to access this resource.".into(),
            None
        )
    );
    let (_, body) = app
        .graphql(
            Some(&limited),
            "{ activeUser { projects { totalCount items { id } } streams { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["activeUser"]["projects"]["totalCount"], 1);
    assert_eq!(
        body["data"]["activeUser"]["projects"]["items"][0]["id"],
        a.as_str()
    );
    assert_eq!(body["data"]["activeUser"]["streams"]["totalCount"], 1);
    let (_, body) = app
        .graphql(
            Some(&limited),
            "mutation { projectMutations { create(input: {name: \"new\"}) { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        first_error(&body),
        (
            "FORBIDDEN".into(),
            "You are not authorized to create a new project resource.".into(),
            None
        )
    );
    let (_, body) = app
        .graphql(Some(&limited), "{ activeUser { permissions { canCreatePersonalProject { authorized code message } } } }", json!({}))
        .await;
    let check = &body["data"]["activeUser"]["permissions"]["canCreatePersonalProject"];
    assert_eq!(check["authorized"], false);
    assert_eq!(
        check["message"],
        "You are not authorized to create a new project resource."
    );
    let (_, body) = app
        .graphql(Some(&user.token), "{ activeUser { permissions { canCreatePersonalProject { authorized code message } } } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["activeUser"]["permissions"]["canCreatePersonalProject"],
        json!({"authorized": true, "code": "OK", "message": "OK"})
    );
}

async fn the_last_owner_stays(app: TestApp) {
    let owner = app.user("Sole Owner").await;
    let other = app.user("Helper").await;
    let p = create_project(&app, &owner.token, "Owned", "PRIVATE").await;
    for role in [Some("stream:contributor"), None] {
        let body = set_role(&app, &owner.token, &p, &owner.id, role).await;
        let (code, message, _) = first_error(&body);
        assert_eq!(code, "STREAM_INVALID_ACCESS_ERROR", "{role:?}");
        assert!(message.contains("needs an owner"), "{message}");
    }
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($p: String!) { projectMutations { leave(id: $p) } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(first_error(&body).0, "STREAM_INVALID_ACCESS_ERROR");
    // With a second owner, the first may step down.
    let joined = app.join(&owner.token, &p, &other, "stream:owner").await;
    assert!(joined.is_null(), "{joined}");
    assert!(
        set_role(&app, &owner.token, &p, &owner.id, Some("stream:reviewer")).await["errors"]
            .is_null()
    );
    let (_, body) = app
        .graphql(
            Some(&other.token),
            "query($p: String!) { project(id: $p) { role team { id role } } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(body["data"]["project"]["role"], "stream:owner");
    assert_eq!(body["data"]["project"]["team"].as_array().unwrap().len(), 2);
    // Unknown users and roles are refused.
    let body = set_role(
        &app,
        &other.token,
        &p,
        "nobody1234",
        Some("stream:reviewer"),
    )
    .await;
    assert_eq!(first_error(&body).0, "USER_NOT_FOUND");
    let body = set_role(&app, &other.token, &p, &owner.id, Some("stream:boss")).await;
    assert_eq!(first_error(&body).0, "USER_INPUT_ERROR");
}

async fn legacy_stream_api_over_the_same_data(app: TestApp) {
    let owner = app.user("Legacy Owner").await;
    let friend = app.user("Legacy Friend").await;
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation { streamCreate(stream: {name: \"Old school\", description: \"v2\", isPublic: false}) }",
            json!({}),
        )
        .await;
    let id = body["data"]["streamCreate"].as_str().unwrap().to_owned();
    // The same data through the current API.
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "query($p: String!) { project(id: $p) { name visibility role } }",
            json!({"p": id}),
        )
        .await;
    assert_eq!(
        body["data"]["project"],
        json!({"name": "Old school", "visibility": "PRIVATE", "role": "stream:owner"})
    );
    let update = "mutation($s: StreamUpdateInput!) { streamUpdate(stream: $s) }";
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            update,
            json!({"s": {"id": id, "name": "Renamed", "isPublic": true}}),
        )
        .await;
    assert_eq!(body["data"]["streamUpdate"], true);
    let perm = "mutation($p: StreamUpdatePermissionInput!) { streamUpdatePermission(permissionParams: $p) }";
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            perm,
            json!({"p": {"streamId": id, "userId": friend.id, "role": "stream:contributor"}}),
        )
        .await;
    assert_eq!(
        first_error(&body),
        (
            "STREAM_INVALID_ACCESS_ERROR".into(),
            "Cannot grant permissions to users who aren't collaborators already".into(),
            None
        )
    );
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            perm,
            json!({"p": {"streamId": id, "userId": owner.id, "role": "stream:reviewer"}}),
        )
        .await;
    assert_eq!(first_error(&body).0, "STREAM_INVALID_ACCESS_ERROR");
    let joined = app
        .join(&owner.token, &id, &friend, "stream:reviewer")
        .await;
    assert!(joined.is_null(), "{joined}");
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            perm,
            json!({"p": {"streamId": id, "userId": friend.id, "role": "stream:contributor"}}),
        )
        .await;
    assert_eq!(body["data"]["streamUpdatePermission"], true);
    let (_, body) = app
        .graphql(
            Some(&friend.token),
            "mutation($b: BranchCreateInput!) { branchCreate(branch: $b) }",
            json!({"b": {"streamId": id, "name": "main"}}),
        )
        .await;
    assert!(body["data"]["branchCreate"].is_string(), "{body}");
    let (_, body) = app
        .graphql(
            Some(&friend.token),
            "mutation($c: CommitCreateInput!) { commitCreate(commit: $c) }",
            json!({"c": {"streamId": id, "branchName": "MAIN", "objectId": "abc123", "message": "hello", "sourceApplication": "Rhino"}}),
        )
        .await;
    let commit = body["data"]["commitCreate"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "query($p: String!) { stream(id: $p) { id name isPublic role collaborators { id role } \
             commits { totalCount items { id message branchName authorName sourceApplication referencedObject } } \
             branches { totalCount items { name commits { totalCount } } } branch(name: \"main\") { name } commit { id } } }",
            json!({"p": id}),
        )
        .await;
    let stream = &body["data"]["stream"];
    assert_eq!(stream["name"], "Renamed");
    assert_eq!(stream["isPublic"], true);
    assert_eq!(stream["collaborators"].as_array().unwrap().len(), 2);
    assert_eq!(stream["commits"]["totalCount"], 1);
    assert_eq!(
        stream["commits"]["items"][0],
        json!({"id": commit, "message": "hello", "branchName": "main", "authorName": "Legacy Friend", "sourceApplication": "Rhino", "referencedObject": "abc123"})
    );
    assert_eq!(stream["branches"]["items"][0]["commits"]["totalCount"], 1);
    assert_eq!(stream["commit"]["id"], commit.as_str());
    let (_, body) = app
        .graphql(Some(&friend.token), "{ activeUser { streams { totalCount items { id } } commits { totalCount } } streams { totalCount } }", json!({}))
        .await;
    assert_eq!(body["data"]["activeUser"]["streams"]["totalCount"], 1);
    assert_eq!(body["data"]["activeUser"]["commits"]["totalCount"], 1);
    assert_eq!(body["data"]["streams"]["totalCount"], 1);
    let (_, body) = app
        .graphql(Some(&owner.token), "mutation($s: StreamRevokePermissionInput!) { streamRevokePermission(permissionParams: $s) }", json!({"s": {"streamId": id, "userId": friend.id}}))
        .await;
    assert_eq!(body["data"]["streamRevokePermission"], true);
    let (_, body) = app
        .graphql(
            Some(&friend.token),
            "{ activeUser { streams { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["activeUser"]["streams"]["totalCount"], 0);
    // A read-only token cannot create streams (Speckle's checklist item 52).
    let reader = app
        .pat(&owner.token, &["streams:read", "profile:read"])
        .await;
    let (_, body) = app
        .graphql(
            Some(&reader),
            "mutation { streamCreate(stream: {name: \"x\"}) }",
            json!({}),
        )
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("streams:write"));
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($p: String!) { streamDelete(id: $p) }",
            json!({"p": id}),
        )
        .await;
    assert_eq!(body["data"]["streamDelete"], true);
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "query($p: String!) { stream(id: $p) { id } }",
            json!({"p": id}),
        )
        .await;
    // Speckle's stream API words it as a stream.
    assert_eq!(
        first_error(&body),
        ("STREAM_NOT_FOUND".into(), "Stream not found".into(), None)
    );
}

/// 1,000 projects, many sharing an update time, read back 100 at a time: each exactly once.
async fn pagination_returns_each_project_exactly_once(app: TestApp) {
    let user = app.user("Prolific").await;
    let auth = app
        .state
        .core
        .authenticate(&user.token, &Default::default())
        .await
        .unwrap();
    let mut expected = std::collections::BTreeSet::new();
    let mut order = Vec::new();
    for i in 0..1000_i64 {
        // Ten projects share each timestamp, so the order must break ties by id.
        if i % 10 == 0 {
            app.clock.advance(1000);
        }
        let input = NewProject {
            name: Some(format!("Project {i}")),
            ..Default::default()
        };
        let access = app
            .state
            .core
            .create_project(Some(&auth), input)
            .await
            .unwrap();
        order.push((access.project.updated_at, access.project.id.clone()));
        expected.insert(access.project.id.to_string());
    }
    // Most recently updated first; equal times by id, descending.
    order.sort_by(|a, b| b.cmp(a));
    let order: Vec<String> = order.into_iter().map(|(_, id)| id.to_string()).collect();
    let query = "query($c: String) { activeUser { projects(limit: 100, cursor: $c) { totalCount cursor items { id } } } }";
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let (_, body) = app
            .graphql(Some(&user.token), query, json!({"c": cursor}))
            .await;
        let page = &body["data"]["activeUser"]["projects"];
        assert_eq!(page["totalCount"], 1000, "{body}");
        let items = page["items"].as_array().unwrap();
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        pages += 1;
        cursor = page["cursor"].clone();
        if cursor.is_null() || items.is_empty() {
            break;
        }
        assert!(pages <= 11, "pagination does not end");
    }
    assert_eq!(seen.len(), 1000, "no project twice");
    assert_eq!(
        seen.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        expected
    );
    assert_eq!(seen, order, "newest first, ties broken by id");
    // A broken cursor or limit is refused clearly.
    let (_, body) = app
        .graphql(Some(&user.token), query, json!({"c": "not-a-cursor"}))
        .await;
    assert_eq!(first_error(&body).0, "BAD_REQUEST_ERROR");
    let (_, body) = app
        .graphql(
            Some(&user.token),
            "{ activeUser { projects(limit: 101) { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(first_error(&body).0, "BAD_REQUEST_ERROR");
}

async fn user_search_rules(app: TestApp) {
    let searcher = app.user("Searcher").await;
    let target = app.user("Findable Person").await;
    let q = "query($q: String!, $l: Int!) { userSearch(query: $q, limit: $l) { cursor items { id name } } }";
    let (_, body) = app
        .graphql(Some(&searcher.token), q, json!({"q": "findable", "l": 25}))
        .await;
    assert_eq!(
        body["data"]["userSearch"]["items"],
        json!([{"id": target.id, "name": "Findable Person"}])
    );
    let (_, body) = app
        .graphql(
            Some(&searcher.token),
            q,
            json!({"q": target.email, "l": 25}),
        )
        .await;
    assert_eq!(
        body["data"]["userSearch"]["items"][0]["id"],
        target.id.as_str(),
        "by exact email"
    );
    let (_, body) = app
        .graphql(Some(&searcher.token), q, json!({"q": "findable-", "l": 25}))
        .await;
    assert_eq!(
        body["data"]["userSearch"]["items"],
        json!([]),
        "a partial email finds no one"
    );
    for (query, limit) in [("mi", 25), ("findable", 200)] {
        let (_, body) = app
            .graphql(Some(&searcher.token), q, json!({"q": query, "l": limit}))
            .await;
        assert_eq!(first_error(&body).0, "BAD_REQUEST_ERROR", "{query} {limit}");
    }
    let (_, body) = app
        .graphql(
            Some(&searcher.token),
            "query($q: String!) { users(input: {query: $q}) { items { id } } }",
            json!({"q": "F"}),
        )
        .await;
    assert!(
        body["data"]["users"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == target.id.as_str())
    );
    let no_users = app.pat(&searcher.token, &["profile:read"]).await;
    let (_, body) = app
        .graphql(Some(&no_users), q, json!({"q": "findable", "l": 25}))
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("users:read"));
}

async fn model_and_version_rules(app: TestApp) {
    let owner = app.user("Modeler").await;
    let p = create_project(&app, &owner.token, "Models", "PUBLIC").await;
    let other = create_project(&app, &owner.token, "Elsewhere", "PRIVATE").await;
    let create = "mutation($i: CreateModelInput!) { modelMutations { create(input: $i) { id name displayName } } }";
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            create,
            json!({"i": {"projectId": p, "name": "Site/Plan"}}),
        )
        .await;
    let model = &body["data"]["modelMutations"]["create"];
    assert_eq!(model["displayName"], "Plan");
    let model_id = model["id"].as_str().unwrap().to_owned();
    for (name, message) in [
        ("site/plan", "already exists"),
        ("/x", "cannot start"),
        ("a//b", "cannot start"),
        ("  ", "needs a name"),
    ] {
        let (_, body) = app
            .graphql(
                Some(&owner.token),
                create,
                json!({"i": {"projectId": p, "name": name}}),
            )
            .await;
        let (code, got, _) = first_error(&body);
        assert_eq!(code, "USER_INPUT_ERROR", "{name}");
        assert!(got.contains(message), "{name}: {got}");
    }
    let version = "mutation($i: CreateVersionInput!) { versionMutations { create(input: $i) { id previewUrl authorUser { id } model { id } } } }";
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            version,
            json!({"i": {"projectId": other, "modelId": model_id, "objectId": "abc"}}),
        )
        .await;
    assert_eq!(
        first_error(&body).0,
        "MODEL_NOT_FOUND",
        "a model of another project"
    );
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            version,
            json!({"i": {"projectId": p, "modelId": model_id, "objectId": ""}}),
        )
        .await;
    assert_eq!(first_error(&body).0, "USER_INPUT_ERROR");
    let (_, body) = app
        .graphql(Some(&owner.token), version, json!({"i": {"projectId": p, "modelId": model_id, "objectId": "abc", "sourceApplication": "Revit"}}))
        .await;
    let created = &body["data"]["versionMutations"]["create"];
    assert_eq!(created["authorUser"]["id"], owner.id.as_str());
    assert_eq!(created["model"]["id"], model_id.as_str());
    assert!(
        created["previewUrl"]
            .as_str()
            .unwrap()
            .starts_with(&app.url)
    );
    // Anyone may read a public project's models and versions; nobody anonymous may change them.
    let (status, body) = app
        .graphql(
            None,
            "query($p: String!) { project(id: $p) { sourceApps models { totalCount items { name versions { totalCount } } } versions { totalCount } } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["project"]["sourceApps"], json!(["Revit"]));
    assert_eq!(
        body["data"]["project"]["models"]["items"][0]["versions"]["totalCount"],
        1
    );
    assert_eq!(body["data"]["project"]["versions"]["totalCount"], 1);
    let (_, body) = app
        .graphql(
            None,
            create,
            json!({"i": {"projectId": p, "name": "sneaky"}}),
        )
        .await;
    assert_eq!(first_error(&body).0, "UNAUTHORIZED");
    let (_, body) = app
        .graphql(None, "query($p: String!) { project(id: $p) { permissions { canLoad { authorized code } } } }", json!({"p": p}))
        .await;
    assert_eq!(
        body["data"]["project"]["permissions"]["canLoad"],
        json!({"authorized": false, "code": "ServerNoSession"})
    );
    // Deleting a model takes its versions with it.
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "mutation($i: DeleteModelInput!) { modelMutations { delete(input: $i) } }",
            json!({"i": {"projectId": p, "id": model_id}}),
        )
        .await;
    assert_eq!(body["data"]["modelMutations"]["delete"], true);
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            "query($p: String!) { project(id: $p) { versions { totalCount } } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(body["data"]["project"]["versions"]["totalCount"], 0);
}

/// Paths around the project rule stay closed: a token limited to workspaces reaches no project,
/// an admin cannot list another user's projects, a user who left a private project no longer sees
/// their versions in it, collaborators need `users:read`, and request lists are bounded.
async fn no_side_doors_into_projects(app: TestApp) {
    let admin = app.user("Admin").await;
    let member = app.user("Member").await;
    let p = create_project(&app, &member.token, "Members only", "PRIVATE").await;
    // A token limited to a workspace.
    let (_, body) = app
        .graphql(
            Some(&member.token),
            "mutation($t: ApiTokenCreateInput!) { apiTokenCreate(token: $t) }",
            json!({"t": {"name": "ws", "scopes": ["streams:read", "profile:read"], "limitResources": [{"id": "w1", "type": "workspace"}]}}),
        )
        .await;
    let ws = body["data"]["apiTokenCreate"].as_str().unwrap().to_owned();
    let (_, body) = app
        .graphql(
            Some(&ws),
            "query($p: String!) { project(id: $p) { id } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(
        first_error(&body).1,
        "You are not authorized to access this resource."
    );
    let (_, body) = app
        .graphql(
            Some(&ws),
            "{ activeUser { projects { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["activeUser"]["projects"]["totalCount"], 0);
    // An admin's token does not list someone else's projects.
    let (_, body) = app
        .graphql(
            Some(&admin.token),
            "query($u: String) { user(id: $u) { projects { totalCount } } }",
            json!({"u": member.id}),
        )
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN");
    let (_, body) = app
        .graphql(
            Some(&admin.token),
            "query($u: String) { user(id: $u) { streams { totalCount } commits { totalCount } } }",
            json!({"u": member.id}),
        )
        .await;
    assert_eq!(first_error(&body).0, "FORBIDDEN");
    // Versions in a project one has left.
    let owner_of_p = &member;
    let leaver = app.user("Leaver").await;
    let joined = app
        .join(&owner_of_p.token, &p, &leaver, "stream:contributor")
        .await;
    assert!(joined.is_null(), "{joined}");
    let (_, body) = app
        .graphql(
            Some(&leaver.token),
            "mutation($p: String!) { branchCreate(branch: {streamId: $p, name: \"main\"}) }",
            json!({"p": p}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let (_, body) = app
        .graphql(Some(&leaver.token), "mutation($p: String!) { commitCreate(commit: {streamId: $p, branchName: \"main\", objectId: \"o1\"}) }", json!({"p": p}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let commits = "{ activeUser { commits { totalCount items { id } } } }";
    let (_, body) = app.graphql(Some(&leaver.token), commits, json!({})).await;
    assert_eq!(body["data"]["activeUser"]["commits"]["totalCount"], 1);
    let (_, body) = app
        .graphql(
            Some(&leaver.token),
            "mutation($p: String!) { projectMutations { leave(id: $p) } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(body["data"]["projectMutations"]["leave"], true);
    let (_, body) = app.graphql(Some(&leaver.token), commits, json!({})).await;
    assert_eq!(
        body["data"]["activeUser"]["commits"]["totalCount"], 0,
        "gone with the access"
    );
    // Collaborators need users:read, as the team does.
    let reader = app
        .pat(&member.token, &["streams:read", "profile:read"])
        .await;
    let (_, body) = app
        .graphql(
            Some(&reader),
            "query($p: String!) { stream(id: $p) { collaborators { id } } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(first_error(&body).2.as_deref(), Some("users:read"));
    // Lists in requests are bounded.
    let ids: Vec<String> = (0..101).map(|i| format!("m{i}")).collect();
    let (_, body) = app
        .graphql(
            Some(&member.token),
            "query($p: String!, $f: ProjectModelsFilter) { project(id: $p) { models(filter: $f) { totalCount } } }",
            json!({"p": p, "f": {"ids": ids}}),
        )
        .await;
    assert!(first_error(&body).1.contains("at most 100"), "{body}");
}

/// `streamCreate(withContributors)` stores the project and its team together: an unknown
/// contributor is refused before anything exists.
async fn stream_create_with_contributors_is_all_or_nothing(app: TestApp) {
    let owner = app.user("Team Owner").await;
    let friend = app.user("Team Friend").await;
    let create = "mutation($s: StreamCreateInput!) { streamCreate(stream: $s) }";
    let projects = "{ activeUser { projects { totalCount } } }";
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            create,
            json!({"s": {"name": "Doomed", "withContributors": [friend.id, "nobody0000"]}}),
        )
        .await;
    assert_eq!(first_error(&body).0, "USER_NOT_FOUND", "{body}");
    let (_, body) = app.graphql(Some(&owner.token), projects, json!({})).await;
    assert_eq!(
        body["data"]["activeUser"]["projects"]["totalCount"], 0,
        "no project is left behind: {body}"
    );
    let (_, body) = app.graphql(Some(&friend.token), projects, json!({})).await;
    assert_eq!(body["data"]["activeUser"]["projects"]["totalCount"], 0);
    let (_, body) = app
        .graphql(
            Some(&owner.token),
            create,
            json!({"s": {"name": "Team", "withContributors": [friend.id, owner.id, friend.id]}}),
        )
        .await;
    let id = body["data"]["streamCreate"]
        .as_str()
        .expect("created")
        .to_owned();
    let (_, body) = app
        .graphql(
            Some(&friend.token),
            "query($p: String!) { project(id: $p) { role team { role user { id } } } }",
            json!({"p": id}),
        )
        .await;
    assert_eq!(
        body["data"]["project"]["role"], "stream:contributor",
        "{body}"
    );
    let team = body["data"]["project"]["team"].as_array().unwrap();
    assert_eq!(
        team.len(),
        2,
        "the owner stays owner, the friend is there once: {body}"
    );
    assert_eq!(team[0]["role"], "stream:owner");
}
