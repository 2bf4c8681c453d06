//! The store conformance suite (Hydra's idea): one set of tests over the core's `Store` trait, run
//! on SQLite and on PostgreSQL, covering every method, the transactions and the races. A backend
//! that passes it behaves as the rules expect; the server's API tests then only test the doors.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tessera_core::Error;
use tessera_core::domain::auth::TokenCache;
use tessera_core::error::Result;
use tessera_core::store::*;
use tessera_proto::{ChallengeMethod, PlainToken, Scope, ScopeSet, ServerRole, StreamRole};
use tessera_store::SqlStore;
use tessera_testdb::{Backend, TestDb, fresh_database};
use tokio::sync::Notify;

/// Runs each listed test on a fresh store of each backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some((store, _db)) = open(Backend::Sqlite).await {
                        super::$name(Arc::new(store)).await
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some((store, _db)) = open(Backend::Postgres).await {
                        super::$name(Arc::new(store)).await
                    }
                }
            }
        )*
    };
}

conformance!(
    users_register_once_per_email_and_the_first_is_admin,
    profiles_change_only_what_is_given,
    user_search_pages_and_takes_patterns_literally,
    projects_roles_and_the_last_owner,
    project_listings_filter_and_page,
    models_are_unique_by_name_in_any_case,
    versions_touch_their_model_and_project,
    apps_are_stored_listed_and_deleted_with_their_grants,
    tokens_carry_their_rules_and_owners_delete_only_their_own,
    a_code_is_spent_once_even_by_racing_exchanges,
    a_refresh_token_rotates_once_even_when_raced,
    a_device_grant_buys_one_pair_even_when_raced,
    sign_in_failures_count_per_pair_and_per_account,
    secrets_migrations_and_emails,
    a_revocation_that_races_a_cache_miss_is_not_undone,
    a_miss_without_a_race_is_cached,
    revocations_reach_other_listeners,
    sessions_remember_where_they_started_and_end_one_or_all_others,
    activity_pages_newest_first_filters_and_purges,
    a_token_address_is_new_once,
    tokens_import_all_or_none,
    every_write_waits_for_the_disk,
    server_info_and_roles_with_the_last_administrator_kept,
    signing_keys_rotate_once_even_when_raced,
);

async fn open(backend: Backend) -> Option<(SqlStore, TestDb)> {
    let (url, db) = fresh_database(backend).await?;
    let url = match backend {
        Backend::Sqlite => format!("{url}?mode=rwc"),
        Backend::Postgres => url,
    };
    Some((SqlStore::connect(&url).await.unwrap(), db))
}

fn new_user(id: &str, email: &str, name: &str, at: i64) -> NewUser {
    NewUser {
        id: id.into(),
        suuid: format!("suuid-{id}"),
        email: email.into(),
        name: name.into(),
        company: None,
        bio: None,
        avatar: None,
        password_hash: format!("hash-{id}"),
        verified: false,
        created_at: at,
    }
}

async fn user(store: &SqlStore, id: &str) -> UserRecord {
    store
        .create_user(new_user(id, &format!("{id}@example.com"), id, 1))
        .await
        .unwrap()
        .unwrap()
}

fn scopes(names: &[Scope]) -> ScopeSet {
    names.iter().copied().collect()
}

fn new_app(id: &str, author: Option<&str>) -> AppRecord {
    AppRecord {
        id: id.into(),
        secret: format!("secret-{id}"),
        name: format!("App {id}"),
        description: Some("d".into()),
        terms_and_conditions_link: None,
        logo: None,
        trust_by_default: false,
        public: false,
        confidential: false,
        redirect_url: "https://example.com/cb".into(),
        scopes: scopes(&[Scope::StreamsRead, Scope::ProfileRead]),
        author_id: author.map(Into::into),
        created_at: 5,
    }
}

fn new_token(
    owner: &str,
    kind: TokenKind,
    app: Option<&str>,
    family: Option<&str>,
) -> (PlainToken, NewToken) {
    let token = tessera_core::domain::new_token().unwrap();
    let record = NewToken {
        id: token.id().into(),
        digest: token.digest(),
        owner_id: owner.into(),
        name: "t".into(),
        last_chars: token.last_chars().to_owned(),
        scopes: scopes(&[Scope::StreamsRead]),
        kind,
        app_id: app.map(Into::into),
        family_id: family.map(Into::into),
        lifespan: 1_000_000,
        created_at: 10,
        resources: Vec::new(),
    };
    (token, record)
}

fn new_refresh(user: &str, app: &str, family: &str) -> NewRefresh {
    let token = tessera_core::domain::new_token().unwrap();
    NewRefresh {
        id: token.id().into(),
        digest: token.digest(),
        app_id: app.into(),
        user_id: user.into(),
        family_id: family.into(),
        scopes: scopes(&[Scope::StreamsRead]),
        client_authenticated: false,
        created_at: 10,
        lifespan: 1_000_000,
    }
}

fn project(id: &str, at: i64, visibility: Visibility) -> ProjectRecord {
    ProjectRecord {
        id: id.into(),
        name: format!("Project {id}"),
        description: None,
        visibility,
        allow_public_comments: true,
        created_at: at,
        updated_at: at,
    }
}

fn first_page(limit: i64) -> PageRequest {
    PageRequest { limit, after: None }
}

async fn users_register_once_per_email_and_the_first_is_admin(store: Arc<SqlStore>) {
    let first = store
        .create_user(new_user("u1", "a@example.com", "Ada", 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.role, ServerRole::Admin);
    assert!(!first.verified);
    let second = user(&store, "u2").await;
    assert_eq!(second.role, ServerRole::User);
    assert!(
        store
            .create_user(new_user("u3", "a@example.com", "Copy", 2))
            .await
            .unwrap()
            .is_none(),
        "the email is taken"
    );
    assert!(store.user_by_id("u3").await.unwrap().is_none());
    let (found, hash) = store
        .user_credentials("a@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.as_str(), hash.as_deref()),
        ("u1", Some("hash-u1"))
    );
    assert!(
        store
            .user_credentials("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.user_by_id("u1").await.unwrap().unwrap().name, "Ada");
}

async fn profiles_change_only_what_is_given(store: Arc<SqlStore>) {
    let u = user(&store, "u1").await;
    let changed = store
        .update_profile(
            &u.id,
            ProfileUpdate {
                bio: Some(Some("hello".into())),
                company: Some(Some("ACME".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.bio.as_deref(), Some("hello"));
    assert_eq!(changed.name, "u1");
    let cleared = store
        .update_profile(
            &u.id,
            ProfileUpdate {
                name: Some("New".into()),
                company: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((cleared.name.as_str(), cleared.company), ("New", None));
    assert_eq!(cleared.bio.as_deref(), Some("hello"), "left as it was");
    let unchanged = store
        .update_profile(&u.id, ProfileUpdate::default())
        .await
        .unwrap();
    assert_eq!(unchanged.unwrap().name, "New");
    assert!(
        store
            .update_profile("nobody", ProfileUpdate::default())
            .await
            .unwrap()
            .is_none()
    );
}

async fn user_search_pages_and_takes_patterns_literally(store: Arc<SqlStore>) {
    for (i, name) in ["Ann One", "Ann Two", "Ann Three", "100% Bob"]
        .iter()
        .enumerate()
    {
        let id = format!("u{i}");
        store
            .create_user(new_user(&id, &format!("{id}@example.com"), name, i as i64))
            .await
            .unwrap()
            .unwrap();
    }
    let search = |text: &str| UserSearch {
        text: text.into(),
        email_only: false,
        include_archived: false,
    };
    let page = store
        .search_users(&search("ann"), &first_page(2))
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].name, "Ann Three", "newest first");
    let next = PageRequest {
        limit: 2,
        after: page.next.clone(),
    };
    let rest = store.search_users(&search("ann"), &next).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].name, "Ann One");
    assert!(rest.next.is_none());
    let percent = store
        .search_users(&search("0%"), &first_page(10))
        .await
        .unwrap();
    assert_eq!(percent.total, 1, "% is a literal");
    let underscore = store
        .search_users(&search("_"), &first_page(10))
        .await
        .unwrap();
    assert_eq!(underscore.total, 0, "_ is a literal");
    let by_email = UserSearch {
        text: "U1@example.com".into(),
        email_only: true,
        include_archived: false,
    };
    let found = store
        .search_users(&by_email, &first_page(10))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, "u1");
}

async fn projects_roles_and_the_last_owner(store: Arc<SqlStore>) {
    let owner = user(&store, "owner").await;
    let other = user(&store, "other").await;
    store
        .create_project(&project("p1", 1, Visibility::Private), &owner.id, &[])
        .await
        .unwrap();
    assert_eq!(
        store.project("p1").await.unwrap().unwrap().visibility,
        Visibility::Private
    );
    assert_eq!(
        store.project_role("p1", &owner.id).await.unwrap(),
        Some(StreamRole::Owner)
    );
    assert_eq!(store.project_role("p1", &other.id).await.unwrap(), None);
    assert_eq!(
        store
            .set_project_role("p1", &owner.id, Some(StreamRole::Contributor), 2)
            .await
            .unwrap(),
        RoleChange::LastOwner
    );
    assert_eq!(
        store
            .set_project_role("p1", &owner.id, None, 2)
            .await
            .unwrap(),
        RoleChange::LastOwner
    );
    assert_eq!(
        store.project_role("p1", &owner.id).await.unwrap(),
        Some(StreamRole::Owner),
        "a refused change leaves the role"
    );
    assert_eq!(
        store
            .set_project_role("p1", &other.id, Some(StreamRole::Reviewer), 3)
            .await
            .unwrap(),
        RoleChange::Done
    );
    let team = store.project_team("p1").await.unwrap();
    let roles: Vec<_> = team.iter().map(|(u, r)| (u.id.as_str(), *r)).collect();
    assert_eq!(
        roles,
        [
            ("owner", StreamRole::Owner),
            ("other", StreamRole::Reviewer)
        ]
    );
    assert_eq!(store.project("p1").await.unwrap().unwrap().updated_at, 3);
    // Two owners: now one may step down; removing the last one is refused, even when raced.
    store
        .set_project_role("p1", &other.id, Some(StreamRole::Owner), 4)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        store.set_project_role("p1", &owner.id, None, 5),
        store.set_project_role("p1", &other.id, None, 5),
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert!(
        outcomes.contains(&RoleChange::Done) && outcomes.contains(&RoleChange::LastOwner),
        "{outcomes:?}"
    );
    assert_eq!(store.project_team("p1").await.unwrap().len(), 1);
    // A project created with its team stores the team in the same transaction; a team member who
    // does not exist leaves no project behind.
    let friend = user(&store, "friend").await;
    store
        .create_project(
            &project("p2", 6, Visibility::Private),
            &owner.id,
            &[friend.id.to_string()],
        )
        .await
        .unwrap();
    assert_eq!(
        store.project_role("p2", &friend.id).await.unwrap(),
        Some(StreamRole::Contributor)
    );
    assert!(
        store
            .create_project(
                &project("p3", 7, Visibility::Private),
                &owner.id,
                &["nobody".into()],
            )
            .await
            .is_err()
    );
    assert!(store.project("p3").await.unwrap().is_none(), "rolled back");
    let mut changed = store.project("p1").await.unwrap().unwrap();
    changed.name = "Renamed".into();
    changed.visibility = Visibility::Public;
    store.update_project(&changed).await.unwrap();
    let read = store.project("p1").await.unwrap().unwrap();
    assert_eq!(
        (read.name.as_str(), read.visibility),
        ("Renamed", Visibility::Public)
    );
    assert!(store.delete_project("p1").await.unwrap());
    assert!(!store.delete_project("p1").await.unwrap());
    assert!(store.project_team("p1").await.unwrap().is_empty());
}

async fn project_listings_filter_and_page(store: Arc<SqlStore>) {
    let u = user(&store, "u").await;
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        store
            .create_project(&project(id, i as i64, Visibility::Private), &u.id, &[])
            .await
            .unwrap();
    }
    let other = user(&store, "v").await;
    store
        .create_project(&project("d", 9, Visibility::Private), &other.id, &[])
        .await
        .unwrap();
    store
        .set_project_role("d", &u.id, Some(StreamRole::Reviewer), 10)
        .await
        .unwrap();
    let all = store
        .user_projects(&u.id, &ProjectFilter::default(), &first_page(10))
        .await
        .unwrap();
    let ids: Vec<_> = all.items.iter().map(|(p, _)| p.id.as_str()).collect();
    assert_eq!(ids, ["d", "c", "b", "a"], "most recently updated first");
    assert_eq!(all.total, 4);
    let owned = ProjectFilter {
        roles: Some(vec![StreamRole::Owner]),
        ..Default::default()
    };
    assert_eq!(
        store
            .user_projects(&u.id, &owned, &first_page(10))
            .await
            .unwrap()
            .total,
        3
    );
    let limited = ProjectFilter {
        ids: Some(vec!["a".into(), "d".into()]),
        search: Some("project".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .user_projects(&u.id, &limited, &first_page(10))
            .await
            .unwrap()
            .total,
        2
    );
    let none = ProjectFilter {
        ids: Some(vec![]),
        ..Default::default()
    };
    assert_eq!(
        store
            .user_projects(&u.id, &none, &first_page(10))
            .await
            .unwrap()
            .total,
        0
    );
    let page = store
        .user_projects(&u.id, &ProjectFilter::default(), &first_page(3))
        .await
        .unwrap();
    let rest = store
        .user_projects(
            &u.id,
            &ProjectFilter::default(),
            &PageRequest {
                limit: 3,
                after: page.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].0.id, "a");
}

fn model(id: &str, project: &str, name: &str, at: i64) -> ModelRecord {
    ModelRecord {
        id: id.into(),
        project_id: project.into(),
        name: name.into(),
        description: None,
        author_id: None,
        created_at: at,
        updated_at: at,
    }
}

fn version(id: &str, project: &str, model: &str, at: i64, app: &str) -> VersionRecord {
    VersionRecord {
        id: id.into(),
        project_id: project.into(),
        model_id: model.into(),
        author_id: None,
        referenced_object: "obj".into(),
        message: Some("m".into()),
        source_application: Some(app.into()),
        total_children_count: Some(3),
        parents: vec!["x".into()],
        created_at: at,
    }
}

async fn models_are_unique_by_name_in_any_case(store: Arc<SqlStore>) {
    let u = user(&store, "u").await;
    store
        .create_project(&project("p", 1, Visibility::Private), &u.id, &[])
        .await
        .unwrap();
    assert!(
        store
            .create_model(&model("m1", "p", "Main", 2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_model(&model("m2", "p", "MAIN", 3))
            .await
            .unwrap()
    );
    assert!(
        store
            .create_model(&model("m3", "p", "other", 4))
            .await
            .unwrap()
    );
    assert_eq!(
        store.model_by_name("p", "main").await.unwrap().unwrap().id,
        "m1"
    );
    let mut renamed = store.model("m3").await.unwrap().unwrap();
    renamed.name = "main".into();
    assert!(!store.update_model(&renamed).await.unwrap(), "taken");
    renamed.name = "third".into();
    assert!(store.update_model(&renamed).await.unwrap());
    let filter = ModelFilter {
        search: Some("THI".into()),
        ..Default::default()
    };
    let found = store
        .project_models("p", &filter, &first_page(10))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    let excluded = ModelFilter {
        exclude_ids: Some(vec!["m1".into()]),
        ..Default::default()
    };
    assert_eq!(
        store
            .project_models("p", &excluded, &first_page(10))
            .await
            .unwrap()
            .total,
        1
    );
    assert!(store.delete_model("m3").await.unwrap());
    assert!(store.model("m3").await.unwrap().is_none());
}

async fn versions_touch_their_model_and_project(store: Arc<SqlStore>) {
    let u = user(&store, "u").await;
    store
        .create_project(&project("p", 1, Visibility::Private), &u.id, &[])
        .await
        .unwrap();
    store
        .create_model(&model("m", "p", "main", 1))
        .await
        .unwrap();
    store
        .create_model(&model("empty", "p", "empty", 1))
        .await
        .unwrap();
    store
        .create_version(&version("v1", "p", "m", 50, "Revit"))
        .await
        .unwrap();
    store
        .create_version(&version("v2", "p", "m", 60, "Rhino"))
        .await
        .unwrap();
    assert_eq!(store.model("m").await.unwrap().unwrap().updated_at, 60);
    assert_eq!(store.project("p").await.unwrap().unwrap().updated_at, 60);
    let v = store.version("v1").await.unwrap().unwrap();
    assert_eq!(
        (v.parents, v.total_children_count),
        (vec!["x".to_owned()], Some(3))
    );
    assert_eq!(
        store.project_source_apps("p").await.unwrap(),
        ["Revit", "Rhino"]
    );
    let with_versions = ModelFilter {
        only_with_versions: true,
        ..Default::default()
    };
    assert_eq!(
        store
            .project_models("p", &with_versions, &first_page(10))
            .await
            .unwrap()
            .total,
        1
    );
    let from_rhino = ModelFilter {
        source_apps: Some(vec!["Rhino".into()]),
        ..Default::default()
    };
    assert_eq!(
        store
            .project_models("p", &from_rhino, &first_page(10))
            .await
            .unwrap()
            .total,
        1
    );
    let in_model = VersionFilter {
        model_id: Some("m".into()),
        ..Default::default()
    };
    let listed = store.versions(&in_model, &first_page(1)).await.unwrap();
    assert_eq!((listed.total, listed.items[0].id.as_str()), (2, "v2"));
    let readable = VersionFilter {
        readable_by: Some("stranger".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .versions(&readable, &first_page(10))
            .await
            .unwrap()
            .total,
        0
    );
    assert!(store.update_version_message("v1", None).await.unwrap());
    assert_eq!(store.version("v1").await.unwrap().unwrap().message, None);
    assert!(
        !store
            .update_version_message("nope", Some("x"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .delete_versions("p", &["v1".into(), "nope".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_versions("other", &["v2".into()])
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.delete_versions("p", &[]).await.unwrap(), 0);
}

async fn apps_are_stored_listed_and_deleted_with_their_grants(store: Arc<SqlStore>) {
    let author = user(&store, "author").await;
    let person = user(&store, "person").await;
    store
        .create_app(&new_app("app1", Some(&author.id)))
        .await
        .unwrap();
    let mut public = new_app("web", None);
    public.public = true;
    public.trust_by_default = true;
    store.upsert_default_app(&public).await.unwrap();
    public.name = "Web, renamed".into();
    store.upsert_default_app(&public).await.unwrap();
    let read = store.app("web").await.unwrap().unwrap();
    assert_eq!(read.name, "Web, renamed");
    assert!(read.public && read.trust_by_default);
    assert_eq!(store.public_apps().await.unwrap().len(), 1);
    assert_eq!(store.apps_by_author(&author.id).await.unwrap().len(), 1);
    let mut changed = store.app("app1").await.unwrap().unwrap();
    changed.scopes = scopes(&[Scope::ProfileRead]);
    changed.public = true;
    assert_eq!(store.update_app(&changed).await.unwrap(), Some(vec![]));
    let read = store.app("app1").await.unwrap().unwrap();
    assert_eq!(read.scopes, scopes(&[Scope::ProfileRead]));
    assert!(store.set_app_secret("app1", "new").await.unwrap());
    assert_eq!(store.app("app1").await.unwrap().unwrap().secret, "new");
    assert!(!store.set_app_secret("nope", "x").await.unwrap());
    // A person authorizes both apps.
    let (_, t1) = new_token(&person.id, TokenKind::App, Some("app1"), Some("f1"));
    let (_, t2) = new_token(&person.id, TokenKind::App, Some("web"), Some("f2"));
    store.insert_token(&t1).await.unwrap();
    store.insert_token(&t2).await.unwrap();
    store
        .insert_token(&new_token(&author.id, TokenKind::App, Some("app1"), None).1)
        .await
        .unwrap();
    let authorized: Vec<_> = store
        .authorized_apps(&person.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(authorized, ["app1", "web"], "by name");
    let grants = store.app_grants(&person.id).await.unwrap();
    let granted: Vec<_> = grants.iter().map(|g| g.app.id.to_string()).collect();
    assert_eq!(granted, ["app1", "web"], "by name");
    assert_eq!(grants[0].scopes, t1.scopes);
    assert_eq!(grants[0].authorized_at, t1.created_at);
    assert_eq!(
        store
            .revoke_app_grants("web", Some(&person.id))
            .await
            .unwrap(),
        [t2.id.to_string()]
    );
    assert!(store.token_for_auth(&t2.id).await.unwrap().is_none());
    // Revoking an app for everyone takes every user's grants.
    let (_, t3) = new_token(&person.id, TokenKind::App, Some("web"), Some("f3"));
    store.insert_token(&t3).await.unwrap();
    assert_eq!(
        store.revoke_app_grants("web", None).await.unwrap(),
        [t3.id.to_string()]
    );
    assert_eq!(
        store.app_user_count("app1").await.unwrap(),
        2,
        "the person and the author"
    );
    assert_eq!(store.app_user_count("web").await.unwrap(), 0);
    let mut deleted = store.delete_app("app1").await.unwrap();
    deleted.sort();
    assert_eq!(deleted.len(), 2, "the person's and the author's app tokens");
    assert!(deleted.contains(&t1.id.to_string()));
    assert!(store.app("app1").await.unwrap().is_none());
    assert!(store.authorized_apps(&person.id).await.unwrap().is_empty());
    // Changing an app signs everyone out of it, in the same transaction.
    store
        .create_app(&new_app("app2", Some(&author.id)))
        .await
        .unwrap();
    let (_, t4) = new_token(&person.id, TokenKind::App, Some("app2"), Some("f4"));
    store.insert_token(&t4).await.unwrap();
    let mut app2 = store.app("app2").await.unwrap().unwrap();
    app2.redirect_url = "https://example.com/elsewhere".into();
    assert_eq!(
        store.update_app(&app2).await.unwrap(),
        Some(vec![t4.id.to_string()])
    );
    assert!(store.token_for_auth(&t4.id).await.unwrap().is_none());
    app2.id = "nope".into();
    assert_eq!(store.update_app(&app2).await.unwrap(), None);
}

async fn tokens_carry_their_rules_and_owners_delete_only_their_own(store: Arc<SqlStore>) {
    let owner = user(&store, "owner").await;
    let other = user(&store, "other").await;
    let (plain, mut record) = new_token(&owner.id, TokenKind::Personal, None, None);
    record.resources = vec![
        ResourceRule {
            resource_type: "project".into(),
            resource_id: "p2".into(),
        },
        ResourceRule {
            resource_type: "project".into(),
            resource_id: "p1".into(),
        },
    ];
    store.insert_token(&record).await.unwrap();
    let auth = store.token_for_auth(plain.id()).await.unwrap().unwrap();
    assert!(auth.digest.matches(&plain.digest()));
    assert_eq!(auth.owner_role, owner.role);
    assert_eq!(auth.scopes, record.scopes);
    let ids: Vec<_> = auth
        .resources
        .iter()
        .map(|r| r.resource_id.as_str())
        .collect();
    assert_eq!(ids, ["p1", "p2"]);
    let listing = store.personal_tokens(&owner.id).await.unwrap();
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].last_used, record.created_at);
    store
        .record_token_use(&[(record.id.to_string(), 500), ("nope".into(), 1)])
        .await
        .unwrap();
    store
        .record_token_use(&[(record.id.to_string(), 400)])
        .await
        .unwrap();
    assert_eq!(
        store.personal_tokens(&owner.id).await.unwrap()[0].last_used,
        500,
        "lastUsed only moves forward"
    );
    assert!(store.personal_tokens(&other.id).await.unwrap().is_empty());
    // Replacing a token: only its owner's, only a personal one, in one step.
    let (replacement_plain, replacement) = new_token(&owner.id, TokenKind::Personal, None, None);
    assert!(
        !store
            .replace_token(&record.id, &other.id, &replacement)
            .await
            .unwrap()
    );
    assert!(
        store
            .token_for_auth(&replacement.id)
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
    assert!(
        store
            .replace_token(&record.id, &owner.id, &replacement)
            .await
            .unwrap()
    );
    assert!(
        store.token_for_auth(plain.id()).await.unwrap().is_none(),
        "the old one is gone"
    );
    let fresh = store
        .token_for_auth(replacement_plain.id())
        .await
        .unwrap()
        .unwrap();
    assert!(fresh.digest.matches(&replacement_plain.digest()));
    // Put the original back for the deletions below.
    assert!(
        store
            .replace_token(&replacement.id, &owner.id, &record)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_token(&record.id, Some(&other.id))
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_token(&record.id, Some(&owner.id))
            .await
            .unwrap()
    );
    assert!(store.token_for_auth(plain.id()).await.unwrap().is_none());
    assert!(!store.delete_token(&record.id, None).await.unwrap());
}

fn code(user: &str, app: &str, at: i64) -> (PlainToken, AccessCode) {
    let plain = tessera_core::domain::new_token().unwrap();
    let code = AccessCode {
        digest: plain.whole_digest(),
        app_id: app.into(),
        user_id: user.into(),
        challenge: "digest-of-challenge".into(),
        method: ChallengeMethod::S256,
        scopes: Some(scopes(&[Scope::StreamsRead])),
        created_at: at,
        lifespan: 100,
        used: false,
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: Some(at - 5),
    };
    (plain, code)
}

async fn a_code_is_spent_once_even_by_racing_exchanges(store: Arc<SqlStore>) {
    let u = user(&store, "u").await;
    store.create_app(&new_app("app", None)).await.unwrap();
    let (plain, stored) = code(&u.id, "app", 1_000);
    store.insert_code(&stored).await.unwrap();
    let read = store.code(&plain.whole_digest()).await.unwrap().unwrap();
    assert_eq!((read.method, read.used), (ChallengeMethod::S256, false));
    assert_eq!(read.scopes, stored.scopes);
    assert_eq!(
        (read.nonce.as_deref(), read.auth_time),
        (Some("n-0S6_WzA2Mj"), Some(995)),
        "what OpenID Connect needs"
    );
    let race = |family: &'static str| {
        let store = store.clone();
        let digest = plain.whole_digest();
        let user = u.id.clone();
        tokio::spawn(async move {
            let (_, mut token) = new_token(&user, TokenKind::App, Some("app"), Some(family));
            // A pair with a resource rule: a rule stored without its token would break the
            // foreign key, so the loser's rule must be held back too.
            token.resources = vec![ResourceRule {
                resource_type: "project".into(),
                resource_id: "p1".into(),
            }];
            let refresh = new_refresh(&user, "app", family);
            store
                .spend_code(&digest, family, 1_001, Some((&token, &refresh)))
                .await
                .map(|spend| (spend, token.id, refresh.id))
        })
    };
    let (a, b) = (race("fa"), race("fb"));
    let outcomes = [a.await.unwrap().unwrap(), b.await.unwrap().unwrap()];
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(s, _, _)| *s == Spend::Spent)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let (_, winner_token, winner_refresh) = winners[0];
    let loser = outcomes
        .iter()
        .find(|(s, _, _)| *s != Spend::Spent)
        .unwrap();
    let winner_family = store.token_for_auth(winner_token).await.unwrap().unwrap();
    assert!(winner_family.app_id.is_some());
    assert_eq!(winner_family.resources.len(), 1, "the winner's rule");
    assert!(store.refresh_token(winner_refresh).await.unwrap().is_some());
    match &loser.0 {
        Spend::AlreadySpent { family_id: Some(f) } => assert!(f == "fa" || f == "fb"),
        other => panic!("the loser learns the winner's family: {other:?}"),
    }
    assert!(
        store.token_for_auth(&loser.1).await.unwrap().is_none(),
        "the loser's token was not stored"
    );
    assert!(
        store.refresh_token(&loser.2).await.unwrap().is_none(),
        "the loser's refresh token was not stored"
    );
    assert!(
        store
            .code(&plain.whole_digest())
            .await
            .unwrap()
            .unwrap()
            .used
    );
    store.purge_expired_codes(1_099).await.unwrap();
    assert!(
        store.code(&plain.whole_digest()).await.unwrap().is_some(),
        "not expired yet"
    );
    store.purge_expired_codes(1_101).await.unwrap();
    assert!(store.code(&plain.whole_digest()).await.unwrap().is_none());
}

/// RFC 8628: two polls that race for one allowed device grant; one gets the pair, and nothing
/// of the other's is stored. A pending grant buys nothing.
async fn a_device_grant_buys_one_pair_even_when_raced(store: Arc<SqlStore>) {
    let u = user(&store, "u").await;
    store.create_app(&new_app("app", None)).await.unwrap();
    let device = tessera_core::domain::new_token().unwrap();
    let grant = DeviceGrant {
        device_digest: device.whole_digest(),
        user_code_digest: "user-code-digest".into(),
        app_id: "app".into(),
        scopes: scopes(&[Scope::StreamsRead]),
        created_at: 1,
        lifespan: 1_000_000,
        interval: 5_000,
        polled_at: None,
        decision: DeviceDecision::Pending,
        user_id: None,
        auth_time: None,
        spent: false,
    };
    assert!(store.insert_device_grant(&grant).await.unwrap());
    let pair = |family: &str| {
        let (_, token) = new_token(&u.id, TokenKind::App, Some("app"), Some(family));
        (token, new_refresh(&u.id, "app", family))
    };
    let (early, early_refresh) = pair("early");
    assert!(
        !store
            .spend_device_grant(&grant.device_digest, (&early, &early_refresh))
            .await
            .unwrap(),
        "a pending grant is not spent"
    );
    assert!(store.token_for_auth(&early.id).await.unwrap().is_none());
    let scopes_granted = scopes(&[Scope::StreamsRead]);
    assert!(
        store
            .decide_device_grant(
                "user-code-digest",
                DeviceDecision::Allowed,
                &u.id,
                scopes_granted,
                2
            )
            .await
            .unwrap()
    );
    let poll = |family: &'static str| {
        let store = store.clone();
        let digest = grant.device_digest;
        let (token, refresh) = pair(family);
        tokio::spawn(async move {
            store
                .spend_device_grant(&digest, (&token, &refresh))
                .await
                .map(|spent| (spent, token.id, refresh.id))
        })
    };
    let (a, b) = (poll("fa"), poll("fb"));
    let outcomes = [a.await.unwrap().unwrap(), b.await.unwrap().unwrap()];
    assert_eq!(
        outcomes.iter().filter(|(spent, _, _)| *spent).count(),
        1,
        "one poll buys the pair"
    );
    for (spent, token, refresh) in &outcomes {
        let stored = (
            store.token_for_auth(token).await.unwrap().is_some(),
            store.refresh_token(refresh).await.unwrap().is_some(),
        );
        assert_eq!(stored, (*spent, *spent), "only the winner's pair is stored");
    }
    let read = store
        .device_grant(&grant.device_digest)
        .await
        .unwrap()
        .unwrap();
    assert!(read.spent);
}

async fn a_refresh_token_rotates_once_even_when_raced(store: Arc<SqlStore>) {
    let u = user(&store, "u").await;
    store.create_app(&new_app("app", None)).await.unwrap();
    let first = new_refresh(&u.id, "app", "fam");
    let (_, first_token) = new_token(&u.id, TokenKind::App, Some("app"), Some("fam"));
    let (plain, stored) = code(&u.id, "app", 1);
    store.insert_code(&stored).await.unwrap();
    store
        .spend_code(
            &plain.whole_digest(),
            "fam",
            2,
            Some((&first_token, &first)),
        )
        .await
        .unwrap();
    let read = store.refresh_token(&first.id).await.unwrap().unwrap();
    assert_eq!((read.used, read.client_authenticated), (false, false));
    let rotate = || {
        let (store, user, old) = (store.clone(), u.id.clone(), first.id.clone());
        tokio::spawn(async move {
            let (_, token) = new_token(&user, TokenKind::App, Some("app"), Some("fam"));
            let refresh = new_refresh(&user, "app", "fam");
            store
                .rotate_refresh_token(&old, 3, &token, &refresh)
                .await
                .map(|rotation| (rotation, token.id, refresh.id))
        })
    };
    let (a, b) = (rotate(), rotate());
    let outcomes = [a.await.unwrap().unwrap(), b.await.unwrap().unwrap()];
    let rotations: Vec<&Rotation> = outcomes.iter().map(|(r, _, _)| r).collect();
    assert!(
        rotations.contains(&&Rotation::Rotated) && rotations.contains(&&Rotation::AlreadyUsed),
        "{rotations:?}"
    );
    for (rotation, token, refresh) in &outcomes {
        let stored = (
            store.token_for_auth(token).await.unwrap().is_some(),
            store.refresh_token(refresh).await.unwrap().is_some(),
        );
        let rotated = *rotation == Rotation::Rotated;
        assert_eq!(
            stored,
            (rotated, rotated),
            "only the winner's pair is stored"
        );
    }
    assert!(store.refresh_token(&first.id).await.unwrap().unwrap().used);
    // Signing out with a refresh token takes the token and its family together.
    let (_, session) = new_token(&u.id, TokenKind::App, Some("app"), Some("other"));
    store.insert_token(&session).await.unwrap();
    let (_, family_token) = new_token(&u.id, TokenKind::App, Some("app"), Some("gone"));
    store.insert_token(&family_token).await.unwrap();
    let mut out = store.sign_out(&session.id, Some("gone")).await.unwrap();
    out.sort();
    let mut both = vec![session.id.to_string(), family_token.id.to_string()];
    both.sort();
    assert_eq!(out, both);
    assert!(store.sign_out(&session.id, None).await.unwrap().is_empty());
    let revoked = store.revoke_family("fam").await.unwrap();
    assert_eq!(
        revoked.len(),
        2,
        "the first token and the rotated one: {revoked:?}"
    );
    assert!(store.refresh_token(&first.id).await.unwrap().is_none());
    store.delete_refresh_token("nope").await.unwrap();
}

async fn sign_in_failures_count_per_pair_and_per_account(store: Arc<SqlStore>) {
    assert_eq!(
        store
            .count_sign_in_attempt("acct", "1.2.3.4", 10, 0)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_sign_in_attempt("acct", "1.2.3.4", 20, 0)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_sign_in_attempt("acct", "5.6.7.8", 30, 0)
            .await
            .unwrap(),
        1
    );
    let counts = store.sign_in_failures("acct", "1.2.3.4", 0).await.unwrap();
    assert_eq!(
        (
            counts.pair,
            counts.pair_last,
            counts.account,
            counts.account_last
        ),
        (2, 20, 3, 30)
    );
    let none = store.sign_in_failures("other", "1.2.3.4", 0).await.unwrap();
    assert_eq!((none.pair, none.account), (0, 0));
    assert_eq!(
        store
            .count_sign_in_attempt("acct", "1.2.3.4", 100, 50)
            .await
            .unwrap(),
        1,
        "an old count starts again"
    );
    store
        .clear_sign_in_failures("acct", "1.2.3.4")
        .await
        .unwrap();
    assert_eq!(
        store
            .sign_in_failures("acct", "1.2.3.4", 0)
            .await
            .unwrap()
            .pair,
        0
    );
    store.purge_sign_in_failures(31).await.unwrap();
    assert_eq!(
        store
            .sign_in_failures("acct", "5.6.7.8", 0)
            .await
            .unwrap()
            .account,
        0
    );
}

async fn secrets_migrations_and_emails(store: Arc<SqlStore>) {
    // A new password signs out every web session but the one kept, with its refresh tokens.
    let u = user(&store, "pw").await;
    let web = new_app("web", None);
    store.create_app(&web).await.unwrap();
    let (_, keep) = new_token(&u.id, TokenKind::App, Some("web"), None);
    let (_, other) = new_token(&u.id, TokenKind::App, Some("web"), None);
    let (_, pat) = new_token(&u.id, TokenKind::Personal, None, None);
    for t in [&keep, &other, &pat] {
        store.insert_token(t).await.unwrap();
    }
    let revoked = store
        .set_password(&u.id, "new-hash", "web", &keep.id)
        .await
        .unwrap();
    assert_eq!(revoked, [other.id.to_string()]);
    assert!(store.token_for_auth(&keep.id).await.unwrap().is_some());
    assert!(
        store.token_for_auth(&pat.id).await.unwrap().is_some(),
        "tokens stay"
    );
    let (_, hash) = store.user_credentials(&u.email).await.unwrap().unwrap();
    assert_eq!(hash.as_deref(), Some("new-hash"));
    assert_eq!(store.server_secret("csrf", "first").await.unwrap(), "first");
    assert_eq!(
        store.server_secret("csrf", "second").await.unwrap(),
        "first"
    );
    assert!(!store.data_migration_done("m").await.unwrap());
    store.mark_data_migration_done("m", 1).await.unwrap();
    store.mark_data_migration_done("m", 2).await.unwrap();
    assert!(store.data_migration_done("m").await.unwrap());
    user(&store, "a").await;
    user(&store, "b").await;
    let emails = store.all_user_emails().await.unwrap();
    assert_eq!(emails.len(), 3);
    assert!(
        !store.set_user_email("a", "b@example.com").await.unwrap(),
        "taken"
    );
    assert!(store.set_user_email("a", "new@example.com").await.unwrap());
    assert!(
        store
            .user_credentials("new@example.com")
            .await
            .unwrap()
            .is_some()
    );
    store.ping().await.unwrap();
}

/// A store whose first token read pauses after reading, until told to go on.
struct PausingStore {
    inner: Arc<SqlStore>,
    paused: AtomicBool,
    read_done: Notify,
    go_on: Notify,
}

#[async_trait::async_trait]
impl tessera_core::domain::auth::TokenSource for PausingStore {
    async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>> {
        let record = Store::token_for_auth(self.inner.as_ref(), id).await?;
        if !self.paused.swap(true, Ordering::SeqCst) {
            self.read_done.notify_one();
            self.go_on.notified().await;
        }
        Ok(record)
    }

    async fn delete_token(&self, id: &str, owner_id: Option<&str>) -> Result<bool> {
        Store::delete_token(self.inner.as_ref(), id, owner_id).await
    }
}

async fn personal_token(store: &SqlStore) -> PlainToken {
    let owner = user(store, "owner").await;
    let (plain, record) = new_token(&owner.id, TokenKind::Personal, None, None);
    store.insert_token(&record).await.unwrap();
    plain
}

/// The race of issue 7: a cache miss reads the row, the revocation deletes it and clears the
/// cache, then the miss returns. The token must be refused from then on.
async fn a_revocation_that_races_a_cache_miss_is_not_undone(inner: Arc<SqlStore>) {
    let token = personal_token(&inner).await;
    let store = Arc::new(PausingStore {
        inner,
        paused: AtomicBool::new(false),
        read_done: Notify::new(),
        go_on: Notify::new(),
    });
    let cache = Arc::new(TokenCache::new(100, 60_000));
    let first_use = tokio::spawn({
        let (store, cache, token) = (store.clone(), cache.clone(), token.clone());
        async move { cache.authenticate(store.as_ref(), token.expose(), 1).await }
    });
    store.read_done.notified().await;
    // The read is done and its row is stale: revoke now, as apiTokenRevoke does.
    assert!(store.inner.delete_token(token.id(), None).await.unwrap());
    cache
        .revoked(store.inner.as_ref(), &[token.id().to_owned()])
        .await
        .unwrap();
    store.go_on.notify_one();
    let first = first_use.await.unwrap();
    assert!(
        matches!(first, Err(Error::InvalidToken)),
        "the racing check re-reads the store: {first:?}"
    );
    let later = cache.authenticate(store.as_ref(), token.expose(), 2).await;
    assert!(
        matches!(later, Err(Error::InvalidToken)),
        "after the revocation was acknowledged the token is refused: {later:?}"
    );
}

/// Counts the token reads that reach the store.
struct CountingStore {
    inner: Arc<SqlStore>,
    reads: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl tessera_core::domain::auth::TokenSource for CountingStore {
    async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Store::token_for_auth(self.inner.as_ref(), id).await
    }

    async fn delete_token(&self, id: &str, owner_id: Option<&str>) -> Result<bool> {
        Store::delete_token(self.inner.as_ref(), id, owner_id).await
    }
}

async fn a_miss_without_a_race_is_cached(inner: Arc<SqlStore>) {
    let token = personal_token(&inner).await;
    let store = CountingStore {
        inner,
        reads: Default::default(),
    };
    let reads = || store.reads.load(Ordering::SeqCst);
    let cache = TokenCache::new(100, 60_000);
    cache.authenticate(&store, token.expose(), 1).await.unwrap();
    assert_eq!(reads(), 1);
    cache.authenticate(&store, token.expose(), 2).await.unwrap();
    assert_eq!(reads(), 1, "the second check is a cache hit");
    cache.forget_all();
    cache.authenticate(&store, token.expose(), 3).await.unwrap();
    assert_eq!(reads(), 2, "forget_all empties the cache");
}

async fn revocations_reach_other_listeners(store: Arc<SqlStore>) {
    let Some(mut heard) = store.revocations().await.unwrap() else {
        // SQLite: one server owns the file, so there is no one to tell.
        store.announce_revocations(&["x".into()]).await.unwrap();
        return;
    };
    let ids: Vec<String> = (0..600).map(|i| format!("{i:010}")).collect();
    store.announce_revocations(&ids).await.unwrap();
    for id in &ids {
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), heard.recv())
            .await
            .expect("announced within 5 s")
            .unwrap();
        assert_eq!(got, Revoked::Token(id.clone()));
    }
}

async fn sessions_remember_where_they_started_and_end_one_or_all_others(store: Arc<SqlStore>) {
    let me = user(&store, "me").await;
    let other = user(&store, "other").await;
    store.create_app(&new_app("web", None)).await.unwrap();
    store.create_app(&new_app("third", None)).await.unwrap();
    let mut sessions = Vec::new();
    for (i, at) in [10, 20, 30].into_iter().enumerate() {
        let (plain, mut record) = new_token(&me.id, TokenKind::App, Some("web"), None);
        record.created_at = at;
        store.insert_token(&record).await.unwrap();
        if i < 2 {
            let ua = format!("agent {i}");
            store
                .record_session(plain.id(), &me.id, Some("192.0.2.1"), Some(&ua), at)
                .await
                .unwrap();
        }
        sessions.push(plain);
    }
    // A session from a refresh chain, another user's session and a third-party app's token.
    let (chained, record) = new_token(&me.id, TokenKind::App, Some("web"), Some("fam"));
    store.insert_token(&record).await.unwrap();
    let (theirs, record) = new_token(&other.id, TokenKind::App, Some("web"), None);
    store.insert_token(&record).await.unwrap();
    let (app_token, record) = new_token(&me.id, TokenKind::App, Some("third"), None);
    store.insert_token(&record).await.unwrap();

    let listed = store.sessions(&me.id, "web").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| &*s.token_id).collect();
    assert!(ids.contains(&sessions[0].id()) && ids.contains(&chained.id()));
    assert!(!ids.contains(&theirs.id()) && !ids.contains(&app_token.id()));
    let first = listed
        .iter()
        .find(|s| &*s.token_id == sessions[0].id())
        .unwrap();
    assert_eq!(first.address.as_deref(), Some("192.0.2.1"));
    assert_eq!(first.user_agent.as_deref(), Some("agent 0"));
    let third = listed
        .iter()
        .find(|s| &*s.token_id == sessions[2].id())
        .unwrap();
    assert_eq!(
        third.address, None,
        "a session without a record lists as unknown"
    );

    // Another user's session is not mine to end; nothing happens.
    let none = store
        .end_sessions(&me.id, "web", SessionsToEnd::One(theirs.id()))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(store.token_for_auth(theirs.id()).await.unwrap().is_some());
    // Nor is a third-party app's token a session.
    let none = store
        .end_sessions(&me.id, "web", SessionsToEnd::One(app_token.id()))
        .await
        .unwrap();
    assert!(none.is_empty());

    let ended = store
        .end_sessions(&me.id, "web", SessionsToEnd::One(sessions[1].id()))
        .await
        .unwrap();
    assert_eq!(ended, [sessions[1].id().to_owned()]);
    let ended = store
        .end_sessions(&me.id, "web", SessionsToEnd::AllBut(sessions[0].id()))
        .await
        .unwrap();
    assert_eq!(ended.len(), 2, "the third and the chained one: {ended:?}");
    let left: Vec<String> = store
        .sessions(&me.id, "web")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.token_id.to_string())
        .collect();
    assert_eq!(left, [sessions[0].id().to_owned()]);
    assert!(
        store
            .token_for_auth(app_token.id())
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.token_for_auth(theirs.id()).await.unwrap().is_some());
}

fn line(id: &str, user: &str, kind: ActivityKind, at: i64) -> ActivityRecord {
    ActivityRecord {
        id: id.into(),
        user_id: user.into(),
        kind,
        created_at: at,
        address: Some("198.51.100.4".into()),
        user_agent: Some("curl/8".into()),
        subject: Some(format!("subject {id}")),
        subject_id: None,
    }
}

async fn activity_pages_newest_first_filters_and_purges(store: Arc<SqlStore>) {
    let me = user(&store, "me").await;
    let other = user(&store, "other").await;
    let mut lines = Vec::new();
    for i in 0..7 {
        let kind = if i % 2 == 0 {
            ActivityKind::TokenCreated
        } else {
            ActivityKind::SignIn
        };
        // Two lines share a moment: the id breaks the tie.
        lines.push(line(&format!("a{i}"), &me.id, kind, 100 + i.min(5)));
    }
    lines.push(line("b0", &other.id, ActivityKind::SignIn, 150));
    // A line of a user that does not exist is dropped; the others are kept.
    lines.push(line("c0", "ghost", ActivityKind::SignIn, 150));
    store.record_activity(&lines).await.unwrap();
    // Writing the same batch again adds nothing.
    store.record_activity(&lines).await.unwrap();

    let filter = ActivityFilter {
        user_id: me.id.clone(),
        kinds: Vec::new(),
    };
    let mut seen = Vec::new();
    let mut request = first_page(3);
    loop {
        let page = store.activity(&filter, &request).await.unwrap();
        assert_eq!(page.total, 7);
        seen.extend(page.items.iter().map(|l| l.id.clone()));
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["a6", "a5", "a4", "a3", "a2", "a1", "a0"]);
    let first = store.activity(&filter, &first_page(1)).await.unwrap();
    assert_eq!(first.items[0], lines[6]);

    let created = ActivityFilter {
        user_id: me.id.clone(),
        kinds: vec![ActivityKind::TokenCreated],
    };
    let page = store.activity(&created, &first_page(10)).await.unwrap();
    assert_eq!(page.total, 4);
    assert!(
        page.items
            .iter()
            .all(|l| l.kind == ActivityKind::TokenCreated)
    );

    assert_eq!(store.purge_activity(103).await.unwrap(), 3);
    let page = store.activity(&filter, &first_page(10)).await.unwrap();
    assert_eq!(page.total, 4);
    assert!(page.items.iter().all(|l| l.created_at >= 103));
    let theirs = ActivityFilter {
        user_id: other.id.clone(),
        kinds: Vec::new(),
    };
    assert_eq!(
        store
            .activity(&theirs, &first_page(10))
            .await
            .unwrap()
            .total,
        1
    );

    // A backlog larger than one purge batch goes entirely.
    let backlog: Vec<ActivityRecord> = (0..5_003)
        .map(|i| line(&format!("old{i}"), &me.id, ActivityKind::SignIn, 50))
        .collect();
    store.record_activity(&backlog).await.unwrap();
    assert_eq!(store.purge_activity(60).await.unwrap(), 5_003);
    assert_eq!(
        store
            .activity(&filter, &first_page(10))
            .await
            .unwrap()
            .total,
        4
    );
}

async fn tokens_import_all_or_none(store: Arc<SqlStore>) {
    let me = user(&store, "me").await;
    let batch: Vec<(PlainToken, NewToken)> = (0..3)
        .map(|_| new_token(&me.id, TokenKind::Personal, None, None))
        .collect();
    let records: Vec<NewToken> = batch.iter().map(|(_, r)| r.clone()).collect();
    store.import_tokens(&records).await.unwrap();
    for (plain, _) in &batch {
        let found = store.token_for_auth(plain.id()).await.unwrap().unwrap();
        assert!(found.digest.matches(&plain.digest()));
    }
    // A batch with one id already taken writes nothing.
    let (fresh, record) = new_token(&me.id, TokenKind::Personal, None, None);
    assert!(
        store
            .import_tokens(&[record, records[0].clone()])
            .await
            .is_err()
    );
    assert!(store.token_for_auth(fresh.id()).await.unwrap().is_none());
    store.import_tokens(&[]).await.unwrap();
}

async fn a_token_address_is_new_once(store: Arc<SqlStore>) {
    let me = user(&store, "me").await;
    let (plain, record) = new_token(&me.id, TokenKind::Personal, None, None);
    store.insert_token(&record).await.unwrap();
    let (one, two) = (
        [(plain.id(), "192.0.2.7", 1)],
        [(plain.id(), "192.0.2.7", 2)],
    );
    let (first, second) = tokio::join!(
        store.note_token_addresses(&one),
        store.note_token_addresses(&two),
    );
    assert!(
        first.unwrap()[0] ^ second.unwrap()[0],
        "exactly one of two racing notes is first"
    );
    // A batch answers for each sighting: a new address, a known one, the same new one twice,
    // a token that does not exist.
    assert_eq!(
        store
            .note_token_addresses(&[
                (plain.id(), "192.0.2.8", 3),
                (plain.id(), "192.0.2.7", 3),
                (plain.id(), "192.0.2.9", 3),
                (plain.id(), "192.0.2.9", 4),
                ("nosuchtok0", "192.0.2.7", 3),
            ])
            .await
            .unwrap(),
        [true, false, true, false, false]
    );
    assert_eq!(
        store.note_token_addresses(&[]).await.unwrap(),
        Vec::<bool>::new()
    );
}

async fn server_info_and_roles_with_the_last_administrator_kept(store: Arc<SqlStore>) {
    assert_eq!(store.server_info().await.unwrap(), None);
    let mut info = ServerInfoRecord {
        name: "One".into(),
        company: Some("C".into()),
        ..ServerInfoRecord::default()
    };
    store.set_server_info(&info, 1).await.unwrap();
    info.name = "Two".into();
    info.company = None;
    store.set_server_info(&info, 2).await.unwrap();
    assert_eq!(store.server_info().await.unwrap(), Some(info));

    let first = user(&store, "first").await;
    let second = user(&store, "second").await;
    let third = user(&store, "third").await;
    assert_eq!(first.role, ServerRole::Admin);
    let page = store
        .list_users(Some("SEC"), &first_page(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, second.id);
    assert_eq!(
        store.list_users(None, &first_page(10)).await.unwrap().total,
        3
    );
    assert_eq!(
        store
            .list_users(Some("100%"), &first_page(10))
            .await
            .unwrap()
            .total,
        0,
        "patterns are literal"
    );

    assert!(matches!(
        store
            .set_server_role(&first.id, ServerRole::User)
            .await
            .unwrap(),
        ServerRoleChange::LastAdmin
    ));
    assert!(matches!(
        store
            .set_server_role("nobody", ServerRole::User)
            .await
            .unwrap(),
        ServerRoleChange::NoSuchUser
    ));
    match store
        .set_server_role(&second.id, ServerRole::Admin)
        .await
        .unwrap()
    {
        ServerRoleChange::Changed(u) => assert_eq!(u.role, ServerRole::Admin),
        other => panic!("{other:?}"),
    }
    // The two administrators demote each other at once: one of them stays.
    let (a, b) = tokio::join!(
        store.set_server_role(&first.id, ServerRole::User),
        store.set_server_role(&second.id, ServerRole::User),
    );
    let changed = [a, b]
        .into_iter()
        .filter(|r| matches!(r, Ok(ServerRoleChange::Changed(_))))
        .count();
    assert_eq!(changed, 1, "exactly one demotion goes through");
    let admins = store
        .list_users(None, &first_page(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|u| u.role == ServerRole::Admin)
        .count();
    assert_eq!(admins, 1);

    let (plain, record) = new_token(&third.id, TokenKind::Personal, None, None);
    store.insert_token(&record).await.unwrap();
    assert_eq!(
        store.user_token_ids(&third.id).await.unwrap(),
        [plain.id().to_owned()]
    );
}

fn signing_key(kid: &str, generation: i64, active_from: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        generation,
        algorithm: "RS256".into(),
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        sealed_private_key: format!("v1.sealed-{kid}"),
        created_at: active_from - 10,
        active_from,
        retires_at: None,
    }
}

async fn signing_keys_rotate_once_even_when_raced(store: Arc<SqlStore>) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let first = signing_key("k1", 1, 1_000);
    assert!(store.add_signing_key(&first, 1_000).await.unwrap());
    assert_eq!(store.signing_keys().await.unwrap(), vec![first.clone()]);
    // Two replicas rotate at the same moment: one successor is stored, the older key retires once.
    let (a, b) = (signing_key("k2a", 2, 5_000), signing_key("k2b", 2, 5_000));
    let (sa, sb) = (store.clone(), store.clone());
    let (ra, rb) = tokio::join!(
        async move { sa.add_signing_key(&a, 9_000).await.unwrap() },
        async move { sb.add_signing_key(&b, 9_000).await.unwrap() },
    );
    assert!(ra ^ rb, "exactly one rotation wins: {ra} {rb}");
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0].kid.as_str(), keys[0].retires_at),
        ("k1", Some(9_000))
    );
    assert_eq!(keys[1].retires_at, None, "the newest key does not retire");
    assert_eq!(
        keys[1].sealed_private_key,
        format!("v1.sealed-{}", keys[1].kid)
    );
    // A retired key goes after its grace period, and only then.
    store.purge_retired_signing_keys(9_000).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    store.purge_retired_signing_keys(9_001).await.unwrap();
    let left = store.signing_keys().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].generation, 2);
}

/// On an SQLite file, a write returns only after a sync of the log that covers it: a statement
/// on its own and a transaction alike. PostgreSQL's commit is durable itself.
async fn every_write_waits_for_the_disk(store: Arc<SqlStore>) {
    let synced = || store.synced_writes();
    let on_sqlite = synced().is_some();
    let waited = |before: Option<u64>, after: Option<u64>, what: &str| {
        if on_sqlite {
            assert!(after > before, "{what} returned without a sync of the log");
        } else {
            assert_eq!((before, after), (None, None));
        }
    };
    let before = synced();
    let me = user(&store, "me").await;
    waited(before, synced(), "registering a user");
    let before = synced();
    let (_, token) = new_token(&me.id, TokenKind::Personal, None, None);
    store.insert_token(&token).await.unwrap();
    waited(before, synced(), "storing a token");
    let before = synced();
    store.delete_token(token.id.as_ref(), None).await.unwrap();
    waited(before, synced(), "deleting a token");
}
