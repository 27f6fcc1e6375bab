//! Splits a reasoning model's inline `<think>…</think>` out of its text stream, live: text
//! arrives in arbitrary pieces (a tag may be cut anywhere), thinking is passed on as soon as it
//! is known not to be part of a tag.
//!
//! Only a `<think>` at the very start of the answer (after whitespace) opens a thinking block,
//! the way Qwen3, QwQ and DeepSeek-R1 emit it; a `<think>` later in an answer is ordinary text.

use crate::ExpertEvent;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace yet: a `<think>` may still come.
    Start,
    /// Inside the thinking block.
    Thinking,
    /// Just after `</think>`: the blank lines before the answer are dropped.
    AfterThinking,
    /// Ordinary text from here on.
    Text,
}

/// The splitter for one answer.
#[derive(Debug)]
pub struct ThinkSplitter {
    state: State,
    /// Text held back: it may be the start of a tag.
    pending: String,
}

impl Default for ThinkSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl ThinkSplitter {
    /// A splitter at the start of an answer.
    pub fn new() -> Self {
        Self {
            state: State::Start,
            pending: String::new(),
        }
    }

    /// Feeds one piece of model text; returns the events it completes.
    pub fn push(&mut self, text: &str) -> Vec<ExpertEvent> {
        self.pending.push_str(text);
        let mut out = Vec::new();
        loop {
            match self.state {
                State::Start => {
                    let trimmed = self.pending.trim_start();
                    if trimmed.starts_with(OPEN) {
                        let skip = self.pending.len() - trimmed.len() + OPEN.len();
                        self.pending.drain(..skip);
                        self.state = State::Thinking;
                    } else if trimmed.is_empty() || OPEN.starts_with(trimmed) {
                        return out;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Thinking => match self.pending.find(CLOSE) {
                    Some(at) => {
                        let thinking: String = self.pending.drain(..at).collect();
                        self.pending.drain(..CLOSE.len());
                        push_thinking(&mut out, thinking);
                        self.state = State::AfterThinking;
                    }
                    None => {
                        let keep = partial_suffix(&self.pending, CLOSE);
                        let ready = self.pending.len() - keep;
                        let thinking: String = self.pending.drain(..ready).collect();
                        push_thinking(&mut out, thinking);
                        return out;
                    }
                },
                State::AfterThinking => {
                    let rest = self.pending.trim_start().to_owned();
                    self.pending = rest;
                    if self.pending.is_empty() {
                        return out;
                    }
                    self.state = State::Text;
                }
                State::Text => {
                    if !self.pending.is_empty() {
                        out.push(ExpertEvent::Text(std::mem::take(&mut self.pending)));
                    }
                    return out;
                }
            }
        }
    }

    /// The end of the answer: whatever was held back.
    pub fn finish(&mut self) -> Vec<ExpertEvent> {
        let rest = std::mem::take(&mut self.pending);
        match self.state {
            State::Thinking => {
                let mut out = Vec::new();
                push_thinking(&mut out, rest);
                out
            }
            _ if rest.is_empty() => Vec::new(),
            _ => vec![ExpertEvent::Text(rest)],
        }
    }
}

fn push_thinking(out: &mut Vec<ExpertEvent>, thinking: String) {
    if !thinking.is_empty() {
        out.push(ExpertEvent::Thinking(thinking));
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of `tag`.
fn partial_suffix(text: &str, tag: &str) -> usize {
    (1..tag.len())
        .rev()
        .find(|&n| {
            text.len() >= n
                && text.is_char_boundary(text.len() - n)
                && tag.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces`, then merges consecutive events of one kind.
    fn split(pieces: &[&str]) -> Vec<ExpertEvent> {
        let mut splitter = ThinkSplitter::new();
        let mut events: Vec<ExpertEvent> = pieces.iter().flat_map(|p| splitter.push(p)).collect();
        events.extend(splitter.finish());
        let mut merged: Vec<ExpertEvent> = Vec::new();
        for event in events {
            match (merged.last_mut(), event) {
                (Some(ExpertEvent::Text(a)), ExpertEvent::Text(b)) => a.push_str(&b),
                (Some(ExpertEvent::Thinking(a)), ExpertEvent::Thinking(b)) => a.push_str(&b),
                (_, event) => merged.push(event),
            }
        }
        merged
    }

    fn thinking(s: &str) -> ExpertEvent {
        ExpertEvent::Thinking(s.into())
    }

    fn text(s: &str) -> ExpertEvent {
        ExpertEvent::Text(s.into())
    }

    #[test]
    fn splits_whatever_the_cut() {
        let whole = "<think>\nLet me add: 2+2=4.\n</think>\n\nThe answer is 4.";
        let expected = vec![thinking("\nLet me add: 2+2=4.\n"), text("The answer is 4.")];
        assert_eq!(split(&[whole]), expected);
        for cut in 1..whole.len() {
            assert_eq!(
                split(&[&whole[..cut], &whole[cut..]]),
                expected,
                "cut at {cut}"
            );
        }
        let pieces: Vec<String> = whole.chars().map(String::from).collect();
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        assert_eq!(split(&pieces), expected);
    }

    #[test]
    fn thinking_streams_before_the_block_ends() {
        let mut splitter = ThinkSplitter::new();
        assert_eq!(splitter.push("<think>step one"), vec![thinking("step one")]);
        assert_eq!(
            splitter.push(", step two </thi"),
            vec![thinking(", step two ")]
        );
        assert_eq!(splitter.push("nk>done"), vec![text("done")]);
    }

    #[test]
    fn plain_answers_and_late_tags_are_text() {
        assert_eq!(split(&["Hello"]), vec![text("Hello")]);
        assert_eq!(split(&["<", "b>bold</b>"]), vec![text("<b>bold</b>")]);
        assert_eq!(
            split(&["Use <think> tags like this"]),
            vec![text("Use <think> tags like this")]
        );
        assert_eq!(split(&["  \n", "Hi"]), vec![text("  \nHi")]);
        assert_eq!(split(&["<thi"]), vec![text("<thi")]);
    }

    #[test]
    fn an_unclosed_block_is_all_thinking() {
        assert_eq!(
            split(&["<think>still going"]),
            vec![thinking("still going")]
        );
        assert_eq!(split(&["<think>é</th"]), vec![thinking("é</th")]);
    }
}
