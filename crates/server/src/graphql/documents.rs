//! Parsed GraphQL documents, kept by their text (docs/ARCHITECTURE.md, "GraphQL"). Clients send
//! the same few query texts over and over (specklepy's, the connectors', a script's loop), and
//! parsing one with async-graphql's pest grammar costs more than answering it from the caches, so
//! each distinct text is parsed once and its document reused. The cache is bounded twice: by
//! entries (S3-FIFO eviction, `quick_cache`, as the token cache) and by the length of a text it
//! keeps; longer texts are parsed every time. A text that does not parse is never kept, so every
//! request with it gets the parser's own error.

use std::sync::Arc;

use async_graphql::ServerError;
use async_graphql::parser::parse_query;
use async_graphql::parser::types::ExecutableDocument;

/// Distinct query texts kept.
const DOCUMENTS: usize = 1_000;
/// The longest text kept (bytes): 1,000 of them stay within a few megabytes.
const MAX_KEPT_TEXT: usize = 4_096;

pub struct Documents {
    parsed: quick_cache::sync::Cache<String, Arc<ExecutableDocument>>,
}

impl Default for Documents {
    fn default() -> Self {
        Documents {
            parsed: quick_cache::sync::Cache::new(DOCUMENTS),
        }
    }
}

impl Documents {
    /// The document `text` parses to, from the cache when it was parsed before.
    pub fn parse(&self, text: &str) -> Result<Arc<ExecutableDocument>, ServerError> {
        if text.len() > MAX_KEPT_TEXT {
            return Ok(Arc::new(parse_query(text)?));
        }
        if let Some(doc) = self.parsed.get(text) {
            return Ok(doc);
        }
        let doc = Arc::new(parse_query(text)?);
        self.parsed.insert(text.to_owned(), doc.clone());
        Ok(doc)
    }

    /// How many texts are kept.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.parsed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_parsed_once_and_each_text_keeps_its_own_document() {
        let docs = Documents::default();
        let first = docs.parse("{ activeUser { id } }").unwrap();
        let again = docs.parse("{ activeUser { id } }").unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second parse did not reuse the first"
        );
        let other = docs.parse("{ serverInfo { name } }").unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(docs.kept(), 2);
    }

    #[test]
    fn bad_and_long_texts_are_not_kept() {
        let docs = Documents::default();
        let err = docs.parse("{ activeUser { id }").unwrap_err();
        assert!(err.message.contains("expected"), "{}", err.message);
        assert!(
            docs.parse("{ activeUser { id }").is_err(),
            "a bad text was kept"
        );
        let long = format!("{{ {} }}", "activeUser { id } ".repeat(400));
        assert!(long.len() > MAX_KEPT_TEXT);
        let a = docs.parse(&long).unwrap();
        let b = docs.parse(&long).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(docs.kept(), 0);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let docs = Documents::default();
        for i in 0..(DOCUMENTS * 3) {
            docs.parse(&format!("{{ a{i} }}")).unwrap();
        }
        assert!(docs.kept() <= DOCUMENTS, "{} kept", docs.kept());
    }
}
