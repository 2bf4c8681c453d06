//! The GraphQL cost guard: for any document that parses, measuring it never panics and finishes in
//! time linear in the document (libFuzzer's timeout catches an exponential walk).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_server::graphql::cost;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = async_graphql::parser::parse_query(text) else {
        return;
    };
    let measured = cost::measure(&doc, None);
    let checked = cost::check(&doc, None);
    if let Ok(cost) = measured {
        if checked.is_ok() {
            assert!(cost.fields <= cost::MAX_FIELDS);
            assert!(cost.aliases <= cost::MAX_ALIASES);
            assert!(cost.directives <= cost::MAX_DIRECTIVES);
        }
    }
});
