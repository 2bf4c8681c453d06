//! The GraphQL cost guard: bounds what a document may cost before the engine expands it.
//!
//! async-graphql's own depth and complexity limits walk the document with every fragment spread
//! expanded, so a document whose fragments each spread the next one twice costs 2^k steps before
//! either limit can refuse it. This guard computes the same measures, the fragment-expanded field
//! count, depth, alias count and directive count, in one pass over the document: each fragment's
//! cost is computed once and reused at every spread (saturating arithmetic, so huge counts stay
//! cheap), and a fragment cycle is refused instead of followed. The work is linear in the size of
//! the document, which the body limit bounds.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use super::{MAX_COMPLEXITY, MAX_DEPTH};

/// The most fields a document may select once its fragments are expanded.
pub const MAX_FIELDS: u64 = MAX_COMPLEXITY as u64;
/// The most aliases (`a: field`) a document may use, fragments expanded.
pub const MAX_ALIASES: u64 = 256;
/// The most directives (`@include`, `@skip`, …) a document may carry, fragments expanded.
pub const MAX_DIRECTIVES: u64 = 128;
/// The most operations and fragments a document may define.
pub const MAX_DEFINITIONS: usize = 256;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub fields: u64,
    pub depth: u64,
    pub aliases: u64,
    pub directives: u64,
}

impl Cost {
    /// This cost with `n` more directives.
    fn with_directives(self, n: usize) -> Cost {
        Cost {
            directives: self.directives.saturating_add(n as u64),
            ..self
        }
    }

    fn add(self, other: Cost) -> Cost {
        Cost {
            fields: self.fields.saturating_add(other.fields),
            depth: self.depth.max(other.depth),
            aliases: self.aliases.saturating_add(other.aliases),
            directives: self.directives.saturating_add(other.directives),
        }
    }
}

/// Why a document was refused; the message tells the caller what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooCostly(pub String);

enum Memo {
    Visiting,
    Done(Cost),
}

struct Walker<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<&'a str, Memo>,
}

impl<'a> Walker<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<Cost, TooCostly> {
        let mut total = Cost::default();
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let inner = self.selection_set(&field.selection_set.node)?;
                    Cost {
                        fields: inner.fields.saturating_add(1),
                        depth: inner.depth.saturating_add(1),
                        aliases: inner
                            .aliases
                            .saturating_add(u64::from(field.alias.is_some())),
                        directives: inner
                            .directives
                            .saturating_add(field.directives.len() as u64),
                    }
                }
                Selection::FragmentSpread(spread) => self
                    .fragment(spread.node.fragment_name.node.as_str())?
                    .with_directives(spread.node.directives.len()),
                Selection::InlineFragment(inline) => self
                    .selection_set(&inline.node.selection_set.node)?
                    .with_directives(inline.node.directives.len()),
            };
            total = total.add(cost);
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'a str) -> Result<Cost, TooCostly> {
        match self.memo.get(name) {
            Some(Memo::Done(cost)) => return Ok(*cost),
            Some(Memo::Visiting) => {
                return Err(TooCostly(format!(
                    "The fragment {name} spreads itself (directly or through other fragments)."
                )));
            }
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it by name.
        let Some((key, definition)) = self.doc.fragments.get_key_value(name) else {
            return Ok(Cost::default());
        };
        self.memo.insert(key.as_str(), Memo::Visiting);
        let cost = self
            .selection_set(&definition.node.selection_set.node)?
            .with_directives(definition.node.directives.len());
        self.memo.insert(key.as_str(), Memo::Done(cost));
        Ok(cost)
    }
}

/// The cost of the operation that would run (`operation_name`, or the only one), fragments
/// expanded.
pub fn measure(doc: &ExecutableDocument, operation_name: Option<&str>) -> Result<Cost, TooCostly> {
    let mut walker = Walker {
        doc,
        memo: HashMap::new(),
    };
    let mut total = Cost::default();
    for (name, op) in doc.operations.iter() {
        let selected = match operation_name {
            Some(wanted) => name.is_some_and(|n| n.as_str() == wanted),
            None => true,
        };
        if selected {
            let cost = walker
                .selection_set(&op.node.selection_set.node)?
                .with_directives(op.node.directives.len());
            total = total.add(cost);
        }
    }
    // Fragments no operation uses are still walked once, so a cycle among them is refused too.
    for name in doc.fragments.keys() {
        walker.fragment(name.as_str())?;
    }
    Ok(total)
}

/// Refuses a document that defines too much, or whose selected operation would select too many
/// fields, nest too deep, or carry too many aliases or directives once fragments are expanded.
pub fn check(doc: &ExecutableDocument, operation_name: Option<&str>) -> Result<(), TooCostly> {
    let definitions = doc.fragments.len() + doc.operations.iter().count();
    if definitions > MAX_DEFINITIONS {
        return Err(TooCostly(format!(
            "The document defines {definitions} operations and fragments; at most \
             {MAX_DEFINITIONS} are allowed."
        )));
    }
    let cost = measure(doc, operation_name)?;
    let limits = [
        (cost.fields, MAX_FIELDS, "selects", "fields"),
        (cost.depth, MAX_DEPTH as u64, "nests", "levels deep"),
        (cost.aliases, MAX_ALIASES, "uses", "aliases"),
        (cost.directives, MAX_DIRECTIVES, "carries", "directives"),
    ];
    for (value, max, verb, what) in limits {
        if value > max {
            let value = if value == u64::MAX {
                "more than 18446744073709551614".to_owned()
            } else {
                value.to_string()
            };
            return Err(TooCostly(format!(
                "The query is too costly: with its fragments expanded it {verb} {value} {what}, \
                 and at most {max} are allowed. Ask for less in one request."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    /// `query { ...F0 } fragment F0 on Query { ...F1 ...F1 } … fragment Fk on Query { leaf }`.
    pub fn fan_out(k: usize) -> String {
        let mut doc = String::from("query { ...F0 }\n");
        for i in 0..k {
            doc.push_str(&format!(
                "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
                n = i + 1
            ));
        }
        doc.push_str(&format!(
            "fragment F{k} on Query {{ serverInfo {{ name }} }}\n"
        ));
        doc
    }

    fn cost(query: &str) -> Cost {
        measure(&parse_query(query).unwrap(), None).unwrap()
    }

    #[test]
    fn counts_expanded_fields_depth_aliases_and_directives() {
        assert_eq!(
            cost("{ a: serverInfo { name @include(if: true) } activeUser { id } }"),
            Cost {
                fields: 4,
                depth: 2,
                aliases: 1,
                directives: 1
            }
        );
        let c = cost("query { ...F ...F } fragment F on Query { x: serverInfo { name } }");
        assert_eq!((c.fields, c.depth, c.aliases), (4, 2, 2));
        let c = cost("query { ... on Query @skip(if: false) { serverInfo { name } } }");
        assert_eq!((c.fields, c.depth, c.directives), (2, 2, 1));
    }

    #[test]
    fn the_fan_out_is_measured_without_expanding_it() {
        let doc = parse_query(fan_out(30)).unwrap();
        let started = std::time::Instant::now();
        let c = measure(&doc, None).unwrap();
        assert_eq!(c.fields, 2 * (1 << 30));
        assert!(
            check(&doc, None)
                .unwrap_err()
                .0
                .contains("2147483648 fields")
        );
        // Linear, not exponential: this would take minutes if the spreads were expanded.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let doc = parse_query(fan_out(200)).unwrap();
        assert!(check(&doc, None).is_err());
    }

    #[test]
    fn cycles_and_unknown_fragments() {
        let doc =
            parse_query("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
                .unwrap();
        assert!(check(&doc, None).unwrap_err().0.contains("spreads itself"));
        let doc = parse_query("query { ...Missing }").unwrap();
        assert!(
            check(&doc, None).is_ok(),
            "validation names a missing fragment"
        );
    }

    #[test]
    fn only_the_selected_operation_counts() {
        let doc = parse_query(format!(
            "query Small {{ serverInfo {{ name }} }} query Big {{ {} }}",
            (0..300)
                .map(|i| format!("a{i}: serverInfo {{ name }}"))
                .collect::<Vec<_>>()
                .join(" ")
        ))
        .unwrap();
        assert!(check(&doc, Some("Small")).is_ok());
        assert!(check(&doc, Some("Big")).unwrap_err().0.contains("aliases"));
    }
}
