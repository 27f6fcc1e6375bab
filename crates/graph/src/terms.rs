//! Turning free text (from users or models) into a safe FTS5 query.
//!
//! Only runs of letters/digits survive, so the result can hold no FTS5 syntax: every term is
//! quoted as an FTS5 string and the terms are OR-ed.

/// At most this many distinct terms go into one query.
pub(crate) const MAX_TERMS: usize = 12;

/// Frequent English words that only add noise to a keyword match.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have",
    "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not",
    "of", "on", "or", "our", "she", "so", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "to", "us", "was", "we", "were", "what", "when", "where", "which",
    "who", "why", "will", "with", "would", "you", "your",
];

/// The distinct lowercase terms of `text`: letter/digit runs of at least two characters that
/// are not stop words, in order of first appearance, at most [`MAX_TERMS`].
pub(crate) fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if out.len() == MAX_TERMS {
            break;
        }
        if word.chars().nth(1).is_none() {
            continue;
        }
        let word = word.to_lowercase();
        if !STOP_WORDS.contains(&word.as_str()) && !out.contains(&word) {
            out.push(word);
        }
    }
    out
}

/// An FTS5 MATCH expression OR-ing the quoted terms of `text`; `None` when it has none.
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let terms = terms(text);
    if terms.is_empty() {
        return None;
    }
    // Terms hold only alphanumerics, so they cannot contain a double quote to escape.
    let quoted: Vec<String> = terms.iter().map(|t| format!("\"{t}\"")).collect();
    Some(quoted.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_lowercase_distinct_terms_without_stop_words() {
        assert_eq!(
            terms("What is the PORT of x7? Port, port-9977 & a b ü-Ölfeld"),
            ["port", "x7", "9977", "ölfeld"]
        );
    }

    #[test]
    fn caps_terms_and_quotes_them() {
        let many: String = (0..50).map(|i| format!("w{i} ")).collect();
        assert_eq!(terms(&many).len(), MAX_TERMS);
        assert_eq!(fts_query("NEAR(\"x\" *"), Some("\"near\"".to_owned()));
        assert_eq!(fts_query("\" * ) AND OR NOT"), None);
        assert_eq!(fts_query(""), None);
    }
}
