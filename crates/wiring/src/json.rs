//! A strict JSON reader that remembers where everything is, and text edits built on it.
//!
//! Editing Claude's files by re-serializing a parsed document would reformat them, reorder
//! nothing (with `preserve_order`) but still change numbers (`1e2` → `100.0`, big integers lose
//! precision), escapes and whitespace, and refuse deep nesting. Instead the file is parsed into
//! spans and only the bytes of the members we own are replaced, inserted or removed; every other
//! byte stays as it was.
//!
//! The grammar is RFC 8259 (what `JSON.parse` accepts), plus a leading UTF-8 byte-order mark,
//! which is kept. Only the first [`DETAIL_DEPTH`] levels are kept as a tree; deeper values are
//! validated without recursion, so no nesting depth can overflow the stack.

use std::fmt;
use std::ops::Range;

use serde_json::Value;

/// Levels of objects and arrays kept as a tree (the root is level 1).
const DETAIL_DEPTH: usize = 4;

/// Where and why a document does not parse (line and column count from 1, columns in chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// A parsed value and the bytes it occupies.
#[derive(Debug, Clone)]
pub struct Node {
    /// The value's bytes in the document.
    pub span: Range<usize>,
    /// What it is.
    pub kind: Kind,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone)]
pub enum Kind {
    /// An object, members in document order.
    Object(Vec<Member>),
    /// An array.
    Array(Vec<Node>),
    /// A string, number, boolean or null; or an object/array deeper than the detail depth.
    Leaf,
}

/// One `"key": value` of an object.
#[derive(Debug, Clone)]
pub struct Member {
    /// The decoded key.
    pub key: String,
    /// The key's bytes, quotes included.
    pub key_span: Range<usize>,
    /// The value.
    pub value: Node,
}

impl Node {
    /// The members, when this is an object.
    pub fn members(&self) -> Option<&[Member]> {
        match &self.kind {
            Kind::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The value of `key` (the last one when a key repeats, as `JSON.parse` does).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.members()?
            .iter()
            .rev()
            .find(|m| m.key == key)
            .map(|m| &m.value)
    }
}

/// A JSON document: its text and the tree of its first levels.
#[derive(Debug, Clone)]
pub struct Document {
    text: String,
    root: Node,
}

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// A value on the path is not an object (e.g. `"env": "x"`).
    NotAnObject(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject(path) => write!(f, "`{path}` is not a JSON object"),
        }
    }
}

impl Document {
    /// Parses `text`. Empty (or whitespace-only) text is an empty object; the root must be an
    /// object.
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let body_start = if text.starts_with('\u{feff}') { 3 } else { 0 };
        if text[body_start..].trim().is_empty() {
            let text = format!("{}{{}}\n", &text[..body_start]);
            return Self::parse(&text);
        }
        let root = Parser::new(text, body_start).document()?;
        if root.members().is_none() {
            return Err(error_at(
                text,
                root.span.start,
                "expected a JSON object at the top",
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            root,
        })
    }

    /// The document's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The node at `path` (object keys from the root).
    pub fn node(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(&self.root, |node, key| node.get(key))
    }

    /// The raw text of the value at `path`.
    pub fn raw(&self, path: &[&str]) -> Option<&str> {
        self.node(path).map(|n| &self.text[n.span.clone()])
    }

    /// The value at `path`, parsed (for comparisons; edits never go through it).
    pub fn value(&self, path: &[&str]) -> Option<Value> {
        serde_json::from_str(self.raw(path)?).ok()
    }

    /// Sets `path` to `raw` (JSON text), creating missing objects on the way.
    pub fn set_raw(&mut self, path: &[&str], raw: &str) -> Result<(), EditError> {
        let Some((last, parents)) = path.split_last() else {
            return Ok(());
        };
        // The deepest existing object on the path.
        let mut object = &self.root;
        let mut depth = 0;
        for key in parents {
            match object.get(key) {
                Some(child) if child.members().is_some() => {
                    object = child;
                    depth += 1;
                }
                Some(_) => return Err(EditError::NotAnObject(path[..=depth].join("."))),
                None => break,
            }
        }
        let edit = if depth == parents.len() {
            match object
                .members()
                .and_then(|m| m.iter().rev().find(|m| m.key == *last))
            {
                Some(member) => {
                    let indent = line_indent(&self.text, member.key_span.start);
                    let value = reindent(raw, &indent, newline(&self.text));
                    (member.value.span.clone(), value)
                }
                None => insert_member(&self.text, object, last, raw),
            }
        } else {
            // Build the missing objects inside out.
            let mut value: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
            for key in path[depth + 1..].iter().rev() {
                let mut map = serde_json::Map::new();
                map.insert((*key).to_owned(), value);
                value = Value::Object(map);
            }
            let inner = serde_json::to_string_pretty(&value).unwrap_or_default();
            insert_member(&self.text, object, path[depth], &inner)
        };
        self.apply(edit);
        Ok(())
    }

    /// Sets `path` to `value`.
    pub fn set(&mut self, path: &[&str], value: &Value) -> Result<(), EditError> {
        let raw = serde_json::to_string_pretty(value).unwrap_or_default();
        self.set_raw(path, &raw)
    }

    /// Puts `raw`, text read from this document earlier, back as the value at `path` (the root
    /// for an empty path) exactly as it was: undoing an edit, so no re-indenting (which
    /// [`Self::set_raw`] does to values it writes). Falls back to [`Self::set_raw`] when the
    /// member is gone or the result would not parse.
    pub fn restore_raw(&mut self, path: &[&str], raw: &str) -> Result<(), EditError> {
        if let Some(node) = self.node(path) {
            let mut text = self.text.clone();
            text.replace_range(node.span.clone(), raw);
            if let Ok(restored) = Self::parse(&text) {
                *self = restored;
                return Ok(());
            }
        }
        self.set_raw(path, raw)
    }

    /// Removes the member at `path` (every occurrence of a repeated key). True when something
    /// was removed.
    pub fn remove(&mut self, path: &[&str]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut removed = false;
        while let Some(object) = self.node(parents) {
            let Some(members) = object.members() else {
                break;
            };
            let Some(index) = members.iter().rposition(|m| m.key == *last) else {
                break;
            };
            let edit = remove_member(object, index);
            self.apply(edit);
            removed = true;
        }
        removed
    }

    /// Removes item `index` of the array at `path`, with its comma. True when it existed.
    pub fn remove_item(&mut self, path: &[&str], index: usize) -> bool {
        let Some(Node {
            kind: Kind::Array(items),
            span,
        }) = self.node(path)
        else {
            return false;
        };
        let edit = match (index.checked_sub(1), items.get(index), items.get(index + 1)) {
            (_, None, _) => return false,
            (None, Some(_), None) => (span.start + 1..span.end - 1, String::new()),
            (_, Some(item), Some(next)) => (item.span.start..next.span.start, String::new()),
            (Some(before), Some(item), None) => {
                (items[before].span.end..item.span.end, String::new())
            }
        };
        self.apply(edit);
        true
    }

    /// Appends `raw` (JSON text) to the array at `path`, following the array's layout.
    pub fn push_item(&mut self, path: &[&str], raw: &str) -> Result<(), EditError> {
        let Some(Node {
            kind: Kind::Array(items),
            span,
        }) = self.node(path)
        else {
            return Err(EditError::NotAnObject(format!(
                "{} (an array)",
                path.join(".")
            )));
        };
        let nl = newline(&self.text);
        let edit = match (items.first(), items.last()) {
            (Some(first), Some(last)) => {
                let before_first = &self.text[span.start + 1..first.span.start];
                let indent = before_first.rsplit('\n').next().unwrap_or("").to_owned();
                let value = if before_first.contains('\n') {
                    reindent(raw, &indent, nl)
                } else {
                    compact(raw)
                };
                (
                    last.span.end..last.span.end,
                    format!(",{before_first}{value}"),
                )
            }
            _ => {
                let outer = line_indent(&self.text, span.start);
                let inner = format!("{outer}  ");
                let value = reindent(raw, &inner, nl);
                (
                    span.start + 1..span.end - 1,
                    format!("{nl}{inner}{value}{nl}{outer}"),
                )
            }
        };
        self.apply(edit);
        Ok(())
    }

    fn apply(&mut self, (range, replacement): (Range<usize>, String)) {
        self.text.replace_range(range, &replacement);
        // Our own edits keep the document valid; re-parse to refresh every span.
        if let Ok(reparsed) = Self::parse(&self.text) {
            *self = reparsed;
        }
    }
}

/// The edit that inserts `"key": raw` as the last member of `object`.
fn insert_member(text: &str, object: &Node, key: &str, raw: &str) -> (Range<usize>, String) {
    let nl = newline(text);
    let key_json = serde_json::to_string(key).unwrap_or_default();
    let members = object.members().unwrap_or_default();
    match (members.first(), members.last()) {
        (Some(first), Some(last)) => {
            // Follow the object's own style: the whitespace before its first key, and the text
            // between a key and its value.
            let before_first = &text[object.span.start + 1..first.key_span.start];
            let colon = &text[first.key_span.end..first.value.span.start];
            let indent = before_first.rsplit('\n').next().unwrap_or("").to_owned();
            let value = if before_first.contains('\n') {
                reindent(raw, &indent, nl)
            } else {
                compact(raw)
            };
            let at = last.value.span.end;
            (at..at, format!(",{before_first}{key_json}{colon}{value}"))
        }
        _ => {
            let outer = line_indent(text, object.span.start);
            let inner = format!("{outer}  ");
            let value = reindent(raw, &inner, nl);
            let inside = object.span.start + 1..object.span.end - 1;
            (inside, format!("{nl}{inner}{key_json}: {value}{nl}{outer}"))
        }
    }
}

/// The edit that removes member `index` of `object`, with its comma.
fn remove_member(object: &Node, index: usize) -> (Range<usize>, String) {
    let members = object.members().unwrap_or_default();
    let member = &members[index];
    if members.len() == 1 {
        return (object.span.start + 1..object.span.end - 1, String::new());
    }
    if index + 1 < members.len() {
        return (
            member.key_span.start..members[index + 1].key_span.start,
            String::new(),
        );
    }
    (
        members[index - 1].value.span.end..member.value.span.end,
        String::new(),
    )
}

/// The leading whitespace of the line holding byte `at`.
fn line_indent(text: &str, at: usize) -> String {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..at]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// The document's line ending.
fn newline(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// `raw` (pretty JSON starting at column 0) moved right by `indent`, with `nl` line endings.
/// Newlines inside JSON strings are escaped, so every raw newline is layout.
fn reindent(raw: &str, indent: &str, nl: &str) -> String {
    raw.lines()
        .collect::<Vec<_>>()
        .join(&format!("{nl}{indent}"))
}

/// `raw` on one line.
fn compact(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string(&v).ok())
        .unwrap_or_else(|| raw.to_owned())
}

fn error_at(text: &str, at: usize, message: &str) -> SyntaxError {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    SyntaxError {
        line,
        column: before[line_start..].chars().count() + 1,
        message: message.to_owned(),
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, at: usize) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            at,
        }
    }

    fn document(mut self) -> Result<Node, SyntaxError> {
        self.skip_ws();
        let root = self.value(1)?;
        self.skip_ws();
        if self.at < self.bytes.len() {
            return Err(self.error("unexpected text after the JSON value"));
        }
        Ok(root)
    }

    fn error(&self, message: &str) -> SyntaxError {
        error_at(self.text, self.at, message)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), SyntaxError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let start = self.at;
        let kind = match self.peek() {
            Some(b'{' | b'[') if depth > DETAIL_DEPTH => {
                self.skip_nested()?;
                Kind::Leaf
            }
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            _ => {
                self.scalar()?;
                Kind::Leaf
            }
        };
        Ok(Node {
            span: start..self.at,
            kind,
        })
    }

    fn object(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        self.at += 1;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Kind::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key_start = self.at;
            let key = self.string()?;
            let key_span = key_start..self.at;
            self.skip_ws();
            self.expect(b':', "`:` after the key")?;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Kind::Object(members));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Kind::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Kind::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// Validates a nested object or array without recursion.
    fn skip_nested(&mut self) -> Result<(), SyntaxError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Open {
            Object,
            Array,
        }
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // At the start of a value.
            self.skip_ws();
            match self.peek() {
                Some(b'{') => {
                    self.at += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                    } else {
                        stack.push(Open::Object);
                        self.key_and_colon()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.at += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.at += 1;
                    } else {
                        stack.push(Open::Array);
                        continue;
                    }
                }
                _ => self.scalar()?,
            }
            // After a value: close containers or move to the next element.
            loop {
                let Some(open) = stack.last().copied() else {
                    return Ok(());
                };
                self.skip_ws();
                match (self.peek(), open) {
                    (Some(b','), Open::Object) => {
                        self.at += 1;
                        self.key_and_colon()?;
                        break;
                    }
                    (Some(b','), Open::Array) => {
                        self.at += 1;
                        break;
                    }
                    (Some(b'}'), Open::Object) | (Some(b']'), Open::Array) => {
                        self.at += 1;
                        stack.pop();
                    }
                    (_, Open::Object) => return Err(self.error("expected `,` or `}`")),
                    (_, Open::Array) => return Err(self.error("expected `,` or `]`")),
                }
            }
        }
    }

    fn key_and_colon(&mut self) -> Result<(), SyntaxError> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string key"));
        }
        self.string()?;
        self.skip_ws();
        self.expect(b':', "`:` after the key")
    }

    fn scalar(&mut self) -> Result<(), SyntaxError> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            None => Err(self.error("unexpected end of file")),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), SyntaxError> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number: digits expected after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number: digits expected in the exponent"));
            }
        }
        Ok(())
    }

    /// A string; returns it decoded (lone surrogates become U+FFFD).
    fn string(&mut self) -> Result<String, SyntaxError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let run_start = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            out.push_str(&self.text[run_start..self.at]);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), SyntaxError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.at += 1;
                let high = self.hex4()?;
                let c = if (0xD800..0xDC00).contains(&high)
                    && self.bytes[self.at..].starts_with(b"\\u")
                {
                    let save = self.at;
                    self.at += 2;
                    let low = self.hex4()?;
                    if (0xDC00..0xE000).contains(&low) {
                        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                    } else {
                        self.at = save;
                        None
                    }
                } else {
                    char::from_u32(high)
                };
                out.push(c.unwrap_or('\u{fffd}'));
                return Ok(());
            }
            _ => return Err(self.error("invalid escape in a string")),
        };
        self.at += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))
    }
}

#[cfg(test)]
pub(crate) mod tests;
