use super::*;

use tokenizers::AddedToken;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::Metaspace;
use tokenizers::processors::template::TemplateProcessing;

/// A byte-level BPE tokenizer (the GPT-2 / SmolLM2 / Qwen family) with a few merges and the
/// ChatML special tokens.
fn chatml() -> Tokenizer {
    let mut chars: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    chars.sort_unstable();
    let mut vocab: Vec<String> = chars.iter().map(char::to_string).collect();
    let merges: Vec<(String, String)> =
        [("h", "e"), ("l", "l"), ("Ġ", "w"), ("he", "ll"), ("Ġ", "t")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
    let vocab: Vec<(String, u32)> = vocab.into_iter().zip(0..).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab.into_iter().collect::<ahash::AHashMap<_, _>>(), merges)
        .build()
        .expect("a valid BPE");
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::default()));
    tokenizer.add_special_tokens(&[
        AddedToken::from("<|im_start|>", true),
        AddedToken::from("<|im_end|>", true),
        AddedToken::from("<|im_end|>x", true), // overlaps the one above: longest match wins
    ]);
    tokenizer
}

const TEXTS: &[&str] = &[
    "hello world",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhello, tell me<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_end|><|im_start|>",
    "  leading spaces <|im_start|>  spaces before and after  <|im_end|>  ",
    "unicode: grüße, 日本語, emoji 🦀<|im_end|>xx and the longer token",
    "no tokens at all, just text\n\n\twith tabs",
    "<|im_start",
    "<|im_end|>",
    "trailing token <|im_start|>",
];

fn check_exact(tokenizer: Tokenizer) {
    let tokenizer = Arc::new(tokenizer);
    let plan = Plan::for_tokenizer(&tokenizer).expect("segmentable");
    for add_special in [false, true] {
        for _round in 0..2 {
            for text in TEXTS {
                let whole = tokenizer
                    .encode_fast(*text, add_special)
                    .expect("encodes")
                    .get_ids()
                    .to_vec();
                let segmented = plan.encode(&tokenizer, text, add_special).expect("encodes");
                assert_eq!(segmented, whole, "{text:?} (special tokens: {add_special})");
                assert_eq!(
                    encode(&tokenizer, text, add_special).expect("encodes"),
                    whole
                );
            }
        }
    }
}

#[test]
fn segmented_ids_equal_whole_ids_for_a_byte_level_tokenizer() {
    check_exact(chatml());
}

#[test]
fn a_post_processor_that_adds_bos_and_eos_is_reproduced() {
    let mut tokenizer = chatml();
    tokenizer.add_special_tokens(&[
        AddedToken::from("<s>", true),
        AddedToken::from("</s>", true),
    ]);
    let (bos, eos) = (
        tokenizer.token_to_id("<s>").expect("added"),
        tokenizer.token_to_id("</s>").expect("added"),
    );
    let template = TemplateProcessing::builder()
        .try_single("<s> $A </s>")
        .expect("a template")
        .special_tokens(vec![("<s>", bos), ("</s>", eos)])
        .build()
        .expect("a template");
    tokenizer.with_post_processor(Some(template));
    assert_eq!(
        Plan::for_tokenizer(&tokenizer).map(|p| p.wrap),
        Some((vec![bos], vec![eos]))
    );
    check_exact(tokenizer);
}

#[test]
fn unchanged_segments_are_encoded_once() {
    let tokenizer = Arc::new(chatml());
    let plan = Plan::for_tokenizer(&tokenizer).expect("segmentable");
    let prefix = "<|im_start|>system\nLong and stable.<|im_end|>\n";
    plan.encode(
        &tokenizer,
        &format!("{prefix}<|im_start|>user\nfirst"),
        false,
    )
    .expect("encodes");
    assert_eq!(plan.segments.len(), 3);
    plan.encode(
        &tokenizer,
        &format!("{prefix}<|im_start|>user\nsecond"),
        false,
    )
    .expect("encodes");
    assert_eq!(
        plan.segments.len(),
        4,
        "only the new last message was encoded"
    );
}

#[test]
fn tokenizers_whose_pieces_depend_on_each_other_encode_whole() {
    let mut strips = chatml();
    strips.add_special_tokens(&[AddedToken::from("<mask>", true).lstrip(true)]);
    assert!(Plan::for_tokenizer(&strips).is_none());
    let strips = Arc::new(strips);
    let text = "a <mask> b";
    assert_eq!(
        encode(&strips, text, true).expect("encodes"),
        strips
            .encode_fast(text, true)
            .expect("encodes")
            .get_ids()
            .to_vec()
    );

    let mut first_only = chatml();
    first_only.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::First, true)));
    assert!(Plan::for_tokenizer(&first_only).is_none());

    let mut always = chatml();
    always.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    assert!(Plan::for_tokenizer(&always).is_some());
}
