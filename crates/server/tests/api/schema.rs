//! The committed `schema.graphql` must match the served schema, so a change that could break
//! clients shows up in review. To accept a deliberate change: `TESSERA_UPDATE_SCHEMA=1 cargo test`.

#[test]
fn committed_schema_matches_the_served_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let served = tessera_server::graphql::sdl();
    if std::env::var("TESSERA_UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(path, &served).expect("write schema.graphql");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == served,
        "crates/server/schema.graphql is out of date with the served schema. If the change is \
         deliberate, run `TESSERA_UPDATE_SCHEMA=1 cargo test -p tessera-server --test api schema` \
         and commit the result.\n--- served ---\n{served}"
    );
}
