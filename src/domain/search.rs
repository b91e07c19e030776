//! The archive's search language, one for both backends: parsed here into a small syntax
//! tree, then written as an SQLite FTS5 `MATCH` expression or a Postgres `tsquery`. User text
//! never reaches either database's query parser as typed: only the words taken out of it,
//! each quoted.
//!
//! The language:
//! - words are ANDed: `refund shipping` finds chats with both words;
//! - `"a quoted phrase"` finds the words next to each other, in order;
//! - `OR` (upper case) between two terms finds either: `refund OR return`; it binds tighter
//!   than the AND of neighbouring terms (`a OR b c` is `(a OR b) AND c`);
//! - `-word` or `-"a phrase"` excludes chats that contain it (at least one term must not be
//!   excluded, and an excluded term cannot be part of an `OR`);
//! - `word*` finds words starting with `word` (also at the end of a phrase: `"next ord*"`).
//!
//! A word is a run of letters and digits; anything else separates words, on the documents
//! as in the query, so `alice@example.com` is the phrase `"alice example com"`. Matching
//! ignores case but not accents. The index holds every message (and note) as its own row and
//! the customer's name and email as one more row per chat: a phrase matches within one row,
//! the ANDed terms and the exclusions apply to the chat, so `alice refund` finds Alice's chat
//! where she asked for a refund.

use super::ValidationError;

type Result<T> = std::result::Result<T, ValidationError>;

/// Longest query, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;
/// Most terms (words and phrases, excluded or not) in a query.
pub const MAX_SEARCH_TERMS: usize = 16;

/// Snippet highlight delimiters as the databases write them (ASCII control characters, which
/// typed text does not carry); [`snippet_parts`] turns them into parts.
pub const HIGHLIGHT_START: char = '\u{1}';
pub const HIGHLIGHT_END: char = '\u{2}';

/// Words next to each other, in order; with `prefix`, the last one is a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    /// Lower case, letters and digits only, at least one.
    pub words: Vec<String>,
    pub prefix: bool,
}

/// A parsed query: every group must match (each by any of its phrases), and none of the
/// excluded phrases may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// ANDed; each group is its phrases ORed. Never empty.
    pub groups: Vec<Vec<Phrase>>,
    pub excluded: Vec<Phrase>,
}

/// A token of the query text.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A term: its words (maybe none: punctuation alone), prefix, excluded.
    Term {
        words: Vec<String>,
        prefix: bool,
        excluded: bool,
        quoted: bool,
    },
    Or,
}

fn bad(message: impl Into<String>) -> ValidationError {
    ValidationError(message.into())
}

/// The words of `text`: runs of letters and digits, lower case.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn tokenize(text: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut excluded = false;
        if c == '-' {
            chars.next();
            match chars.peek() {
                Some(&n) if !n.is_whitespace() => excluded = true,
                // A lone dash is punctuation.
                _ => continue,
            }
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut inner = String::new();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                inner.push(c);
            }
            if !closed {
                return Err(bad("a quoted phrase is not closed: add the missing \""));
            }
            let mut prefix = false;
            if chars.peek() == Some(&'*') {
                chars.next();
                prefix = true;
            }
            let trimmed = inner.trim_end();
            if let Some(stripped) = trimmed.strip_suffix('*') {
                prefix = true;
                inner = stripped.to_owned();
            }
            tokens.push(Token::Term {
                words: words(&inner),
                prefix,
                excluded,
                quoted: true,
            });
            continue;
        }
        let mut raw = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '"' {
                break;
            }
            raw.push(c);
            chars.next();
        }
        if raw == "OR" && !excluded {
            tokens.push(Token::Or);
            continue;
        }
        let prefix =
            raw.ends_with('*') && raw.trim_end_matches('*').ends_with(char::is_alphanumeric);
        tokens.push(Token::Term {
            words: words(&raw),
            prefix,
            excluded,
            quoted: false,
        });
    }
    Ok(tokens)
}

impl SearchQuery {
    /// Parses `text`; BAD_USER_INPUT says what is wrong with it.
    pub fn parse(text: &str) -> Result<SearchQuery> {
        if text.chars().count() > MAX_SEARCH_CHARS {
            return Err(bad(format!(
                "a search is at most {MAX_SEARCH_CHARS} characters"
            )));
        }
        let tokens = tokenize(text)?;
        let mut groups: Vec<Vec<Phrase>> = Vec::new();
        let mut excluded = Vec::new();
        // Whether the previous token was OR: the next term joins the last group.
        let mut pending_or = false;
        // Whether the last group may take an OR (it ends with a positive term).
        let mut last_positive = false;
        let mut terms = 0;
        for token in tokens {
            match token {
                Token::Or => {
                    if !last_positive || pending_or {
                        return Err(bad(
                            "OR needs a word or phrase on each side, and cannot join an excluded one",
                        ));
                    }
                    pending_or = true;
                }
                Token::Term {
                    words,
                    prefix,
                    excluded: is_excluded,
                    quoted,
                } => {
                    if words.is_empty() {
                        if pending_or || quoted {
                            return Err(bad("a term has no letters or digits to search for"));
                        }
                        // Punctuation alone, such as "&": nothing to find.
                        continue;
                    }
                    terms += 1;
                    if terms > MAX_SEARCH_TERMS {
                        return Err(bad(format!(
                            "a search has at most {MAX_SEARCH_TERMS} words and phrases"
                        )));
                    }
                    let phrase = Phrase { words, prefix };
                    if is_excluded {
                        if pending_or {
                            return Err(bad("an excluded term cannot be part of an OR"));
                        }
                        excluded.push(phrase);
                        last_positive = false;
                    } else if pending_or {
                        if let Some(last) = groups.last_mut() {
                            last.push(phrase);
                        }
                        pending_or = false;
                        last_positive = true;
                    } else {
                        groups.push(vec![phrase]);
                        last_positive = true;
                    }
                }
            }
        }
        if pending_or {
            return Err(bad("OR needs a word or phrase after it"));
        }
        if groups.is_empty() {
            return Err(bad(if excluded.is_empty() {
                "the search has no words to look for"
            } else {
                "a search cannot only exclude: add a word to look for"
            }));
        }
        Ok(SearchQuery { groups, excluded })
    }

    /// The query for SQLite's FTS5, each part a `MATCH` expression. Every word is a quoted
    /// FTS5 string holding only letters and digits.
    pub fn to_fts5(&self) -> CompiledSearch {
        fn phrase(p: &Phrase) -> String {
            let mut out = format!("\"{}\"", p.words.join(" "));
            if p.prefix {
                out.push_str(" *");
            }
            out
        }
        self.compile(phrase, " OR ")
    }

    /// The query for Postgres, each part text for `to_tsquery('simple', …)`. Every word is
    /// quoted and holds only letters and digits.
    pub fn to_tsquery(&self) -> CompiledSearch {
        fn phrase(p: &Phrase) -> String {
            let last = p.words.len() - 1;
            let parts: Vec<String> = p
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == last && p.prefix {
                        format!("'{w}':*")
                    } else {
                        format!("'{w}'")
                    }
                })
                .collect();
            parts.join(" <-> ")
        }
        self.compile(phrase, " | ")
    }

    fn compile(&self, phrase: fn(&Phrase) -> String, or: &str) -> CompiledSearch {
        let any = |phrases: &mut dyn Iterator<Item = &Phrase>| {
            let parts: Vec<String> = phrases.map(|p| format!("({})", phrase(p))).collect();
            parts.join(or)
        };
        CompiledSearch {
            groups: self.groups.iter().map(|g| any(&mut g.iter())).collect(),
            excluded: (!self.excluded.is_empty()).then(|| any(&mut self.excluded.iter())),
            any: any(&mut self.groups.iter().flatten()),
        }
    }
}

/// A search written in one database's full-text syntax, for an index with one row per message
/// (and one for the customer's name and email): a chat matches when, for every group, one of
/// its rows matches the group's expression, and none of its rows matches `excluded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledSearch {
    /// One expression per ANDed group (its phrases ORed).
    pub groups: Vec<String>,
    /// The excluded phrases ORed, if any.
    pub excluded: Option<String>,
    /// Every positive phrase ORed: what a snippet highlights.
    pub any: String,
}

/// A piece of a snippet: highlighted where it matched the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnippetPart {
    pub text: String,
    pub highlighted: bool,
}

/// Splits a snippet the database marked with [`HIGHLIGHT_START`] and [`HIGHLIGHT_END`] into
/// parts; adjacent parts of the same kind merge, stray markers vanish.
pub fn snippet_parts(marked: &str) -> Vec<SnippetPart> {
    let mut parts: Vec<SnippetPart> = Vec::new();
    let mut highlighted = false;
    let mut current = String::new();
    let flush = |parts: &mut Vec<SnippetPart>, text: &mut String, highlighted: bool| {
        if text.is_empty() {
            return;
        }
        match parts.last_mut() {
            Some(last) if last.highlighted == highlighted => last.text.push_str(text),
            _ => parts.push(SnippetPart {
                text: text.clone(),
                highlighted,
            }),
        }
        text.clear();
    };
    for c in marked.chars() {
        match c {
            HIGHLIGHT_START => {
                flush(&mut parts, &mut current, highlighted);
                highlighted = true;
            }
            HIGHLIGHT_END => {
                flush(&mut parts, &mut current, highlighted);
                highlighted = false;
            }
            // Line breaks between messages read as spaces in a one-line snippet.
            '\n' | '\r' => current.push(' '),
            c => current.push(c),
        }
    }
    flush(&mut parts, &mut current, highlighted);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SearchQuery {
        SearchQuery::parse(text).unwrap()
    }

    fn error(text: &str) -> String {
        match SearchQuery::parse(text) {
            Err(ValidationError(message)) => message,
            other => panic!("{text:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn words_are_anded() {
        let q = parse("Refund  shipping");
        let fts5 = q.to_fts5();
        assert_eq!(fts5.groups, ["(\"refund\")", "(\"shipping\")"]);
        assert_eq!(fts5.excluded, None);
        assert_eq!(fts5.any, "(\"refund\") OR (\"shipping\")");
        let ts = q.to_tsquery();
        assert_eq!(ts.groups, ["('refund')", "('shipping')"]);
        assert_eq!(ts.any, "('refund') | ('shipping')");
    }

    #[test]
    fn phrases_or_exclusions_and_prefixes() {
        let q = parse("\"next order\" refund OR return -spam ship*");
        let fts5 = q.to_fts5();
        assert_eq!(
            fts5.groups,
            [
                "(\"next order\")",
                "(\"refund\") OR (\"return\")",
                "(\"ship\" *)"
            ]
        );
        assert_eq!(fts5.excluded.as_deref(), Some("(\"spam\")"));
        assert_eq!(
            fts5.any,
            "(\"next order\") OR (\"refund\") OR (\"return\") OR (\"ship\" *)"
        );
        let ts = q.to_tsquery();
        assert_eq!(
            ts.groups,
            [
                "('next' <-> 'order')",
                "('refund') | ('return')",
                "('ship':*)"
            ]
        );
        assert_eq!(ts.excluded.as_deref(), Some("('spam')"));
        let q = parse("\"next ord*\"");
        assert_eq!(q.to_tsquery().groups, ["('next' <-> 'ord':*)"]);
        let q = parse("a -\"b c\" -d");
        assert_eq!(
            q.to_fts5().excluded.as_deref(),
            Some("(\"b c\") OR (\"d\")")
        );
    }

    #[test]
    fn punctuation_splits_words_and_cannot_escape_quoting() {
        let q = parse("alice@example.com");
        assert_eq!(q.groups[0][0].words, ["alice", "example", "com"]);
        let q = parse("x' | !y:* \"); DROP TABLE chats; --\" NEAR(a b)");
        for compiled in [q.to_fts5(), q.to_tsquery()] {
            for text in compiled.groups.iter().chain([&compiled.any]) {
                assert!(!text.contains(';') && !text.contains("NEAR"), "{text}");
            }
        }
        assert_eq!(parse("Café").groups[0][0].words, ["café"]);
    }

    #[test]
    fn malformed_queries_are_refused_with_a_reason() {
        assert!(error("").contains("no words"));
        assert!(error("  & ").contains("no words"));
        assert!(error("-spam").contains("only exclude"));
        assert!(error("\"open").contains("not closed"));
        assert!(error("OR refund").contains("OR"));
        assert!(error("refund OR").contains("OR"));
        assert!(error("a OR OR b").contains("OR"));
        assert!(error("a OR -b").contains("excluded"));
        assert!(error("-b OR a").contains("OR"));
        assert!(error("\"\"").contains("no letters"));
        assert!(error(&"a ".repeat(17)).contains("at most"));
        assert!(error(&"a".repeat(201)).contains("at most"));
        // Lower-case "or" is a word.
        assert_eq!(parse("this or that").groups.len(), 3);
    }

    #[test]
    fn snippets_split_into_parts() {
        assert_eq!(
            snippet_parts("…the \u{1}refund\u{2} is\n\u{1}here\u{2}\u{2}"),
            vec![
                SnippetPart {
                    text: "…the ".into(),
                    highlighted: false
                },
                SnippetPart {
                    text: "refund".into(),
                    highlighted: true
                },
                SnippetPart {
                    text: " is ".into(),
                    highlighted: false
                },
                SnippetPart {
                    text: "here".into(),
                    highlighted: true
                },
            ]
        );
    }
}
