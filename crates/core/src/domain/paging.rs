//! Cursor pagination as Speckle's lists do it: `limit` (at most 100) and an opaque `cursor` that
//! the previous page returned.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};
use crate::store::{Cursor, PageRequest};

pub const MAX_LIMIT: i64 = 100;

/// Lists in a request (ids to filter by, versions to delete, …) hold at most this many items.
pub const MAX_LIST: usize = 100;

/// Refuses an over-long list in a request.
pub fn check_list(len: usize, what: &str) -> Result<()> {
    if len > MAX_LIST {
        return Err(Error::user_input(format!(
            "{what} can hold at most {MAX_LIST} items."
        )));
    }
    Ok(())
}

/// The longest search text a listing accepts (names are at most 512 characters; a search needs
/// far fewer, and a long `LIKE` pattern is work for nothing).
pub const MAX_SEARCH_CHARS: usize = 256;

/// Refuses an over-long search text.
pub fn check_search(text: Option<&str>, what: &str) -> Result<()> {
    if text.is_some_and(|t| t.chars().count() > MAX_SEARCH_CHARS) {
        return Err(Error::user_input(format!(
            "{what} is too long; it can be at most {MAX_SEARCH_CHARS} characters."
        )));
    }
    Ok(())
}

/// The opaque form of a cursor.
pub fn encode(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", cursor.key, cursor.id))
}

fn decode(text: &str) -> Option<Cursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let (key, id) = raw.split_once(':')?;
    Some(Cursor {
        key: key.parse().ok()?,
        id: id.to_owned(),
    })
}

/// Checks a page request.
pub fn request(limit: i64, cursor: Option<&str>) -> Result<PageRequest> {
    if !(0..=MAX_LIMIT).contains(&limit) {
        return Err(Error::Malformed(
            format!("limit must be between 0 and {MAX_LIMIT}").into(),
        ));
    }
    let after = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode(c).ok_or_else(|| {
            Error::Malformed(
                "The cursor is not valid; pass the one a previous page returned.".into(),
            )
        })?),
    };
    Ok(PageRequest { limit, after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let c = Cursor {
            key: 1_795_000_000_123,
            id: "abc:def".into(),
        };
        let page = request(10, Some(&encode(&c))).unwrap();
        assert_eq!(page.after, Some(c));
        assert!(request(10, Some("!!")).is_err());
        assert!(request(101, None).is_err());
        assert!(request(-1, None).is_err());
        assert_eq!(request(0, Some("")).unwrap().after, None);
    }
}
