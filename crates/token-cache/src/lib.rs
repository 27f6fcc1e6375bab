//! Exact tokenization of chat prompts that reuses the ids of segments seen before.
//!
//! A Claude Code request is ~20k tokens of system prompt and tool definitions that do not change
//! between turns, then the conversation. Chat templates separate messages with special tokens
//! (`<|im_start|>`, `<|eot_id|>`, …), and a Hugging Face tokenizer cuts its input at every added
//! token before it normalizes, pre-tokenizes and runs the model on each piece alone. So the text
//! between two added tokens always encodes to the same ids, wherever it stands: [`encode`] cuts
//! the prompt where the tokenizer would, encodes only the pieces it has not seen, and adds what
//! the post-processor adds (a BOS token, say) around them.
//!
//! That is exact only for tokenizers whose pieces really are independent; [`Plan::for_tokenizer`]
//! checks it (no truncation or padding, no added token that strips spaces or must be a whole
//! word, no pre-tokenizer that treats the start of the input specially, a post-processor that
//! only wraps) and every other tokenizer encodes the whole text as before.

mod cache;

use std::sync::{Arc, LazyLock, Mutex, Weak};

use aho_corasick::{AhoCorasick, MatchKind};
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::metaspace::PrependScheme;

use cache::SegmentCache;

/// Set to `0` to encode every prompt whole (the tests compare both ways).
pub const ENV_SWITCH: &str = "MOE_SOVEREIGN_TOKEN_CACHE";

/// The ids of `text`, exactly as `tokenizer.encode_fast(text, add_special_tokens)` gives them.
pub fn encode(
    tokenizer: &Arc<Tokenizer>,
    text: &str,
    add_special_tokens: bool,
) -> tokenizers::Result<Vec<u32>> {
    match plan_for(tokenizer) {
        Some(plan) if !text.is_empty() => plan.encode(tokenizer, text, add_special_tokens),
        _ => Ok(tokenizer
            .encode_fast(text, add_special_tokens)?
            .get_ids()
            .to_vec()),
    }
}

/// What one tokenizer needs for segmented encoding.
pub struct Plan {
    /// The added tokens the tokenizer extracts from raw text, matched as it matches them.
    added: AhoCorasick,
    /// Ids the post-processor puts before and after a sequence when asked for special tokens.
    wrap: (Vec<u32>, Vec<u32>),
    segments: SegmentCache,
}

impl Plan {
    /// A plan when segmented encoding is exact for `tokenizer`, else `None`.
    pub fn for_tokenizer(tokenizer: &Tokenizer) -> Option<Self> {
        if tokenizer.get_truncation().is_some()
            || tokenizer.get_padding().is_some()
            || tokenizer.get_encode_special_tokens()
            || tokenizer
                .get_pre_tokenizer()
                .is_some_and(|p| !pieces_independent(p))
        {
            return None;
        }
        let mut patterns = Vec::new();
        for token in tokenizer.get_added_tokens_decoder().into_values() {
            if token.single_word || token.lstrip || token.rstrip {
                return None;
            }
            if !token.normalized {
                patterns.push(token.content);
            }
        }
        // The same automaton the tokenizer builds (`AddedVocabulary::refresh_added_tokens`).
        let added = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()?;
        let wrap = wrapping(tokenizer)?;
        Some(Self {
            added,
            wrap,
            segments: SegmentCache::default(),
        })
    }

    fn encode(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        add_special_tokens: bool,
    ) -> tokenizers::Result<Vec<u32>> {
        let mut ids = Vec::new();
        if add_special_tokens {
            ids.extend_from_slice(&self.wrap.0);
        }
        for segment in split_before_added_tokens(&self.added, text) {
            match self.segments.get(segment) {
                Some(cached) => ids.extend_from_slice(&cached),
                None => {
                    let encoded: Arc<[u32]> =
                        tokenizer.encode_fast(segment, false)?.get_ids().into();
                    ids.extend_from_slice(&encoded);
                    self.segments.insert(segment, encoded);
                }
            }
        }
        if add_special_tokens {
            ids.extend_from_slice(&self.wrap.1);
        }
        Ok(ids)
    }
}

/// `text` cut just before every added token the tokenizer would extract from it.
fn split_before_added_tokens<'t>(added: &AhoCorasick, text: &'t str) -> Vec<&'t str> {
    let mut segments = Vec::new();
    let mut start = 0;
    for found in added.find_iter(text) {
        if found.start() > start {
            segments.push(&text[start..found.start()]);
            start = found.start();
        }
    }
    segments.push(&text[start..]);
    segments
}

/// Whether the pre-tokenizer treats every piece alike, wherever it stands in the input. Only
/// Metaspace's `prepend_scheme: first` looks at the piece's offset in the whole input.
fn pieces_independent(pre_tokenizer: &PreTokenizerWrapper) -> bool {
    match pre_tokenizer {
        PreTokenizerWrapper::Metaspace(m) => m.get_prepend_scheme() != PrependScheme::First,
        PreTokenizerWrapper::Sequence(s) => s.as_ref().iter().all(pieces_independent),
        _ => true,
    }
}

/// The ids the post-processor adds before and after a sequence, read off two probes; `None` when
/// it does anything but wrap (the probes disagree, or the plain ids are not kept whole).
fn wrapping(tokenizer: &Tokenizer) -> Option<(Vec<u32>, Vec<u32>)> {
    let wrap_of = |probe: &str| -> Option<(Vec<u32>, Vec<u32>)> {
        let plain = tokenizer.encode_fast(probe, false).ok()?.get_ids().to_vec();
        let special = tokenizer.encode_fast(probe, true).ok()?.get_ids().to_vec();
        let at = (0..=special.len().checked_sub(plain.len())?)
            .find(|&at| special[at..at + plain.len()] == plain[..])?;
        Some((special[..at].to_vec(), special[at + plain.len()..].to_vec()))
    };
    let first = wrap_of("Probe: one two three.")?;
    (wrap_of("\nanother probe, 42 x")? == first).then_some(first)
}

/// One plan per live tokenizer. The `Weak` keeps the tokenizer's allocation, so a new tokenizer
/// cannot appear at the address of one that was dropped while its entry is here.
static PLANS: LazyLock<Mutex<Vec<PlanEntry>>> = LazyLock::new(Mutex::default);

/// A tokenizer and its plan (`None`: it encodes whole).
type PlanEntry = (Weak<Tokenizer>, Option<Arc<Plan>>);

fn plan_for(tokenizer: &Arc<Tokenizer>) -> Option<Arc<Plan>> {
    if std::env::var(ENV_SWITCH).is_ok_and(|v| v == "0") {
        return None;
    }
    let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    plans.retain(|(weak, _)| weak.strong_count() > 0);
    if let Some((_, plan)) = plans
        .iter()
        .find(|(weak, _)| weak.as_ptr() == Arc::as_ptr(tokenizer))
    {
        return plan.clone();
    }
    let plan = Plan::for_tokenizer(tokenizer).map(Arc::new);
    plans.push((Arc::downgrade(tokenizer), plan.clone()));
    plan
}

#[cfg(test)]
mod tests;
