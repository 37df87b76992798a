//! Chat-template masks at token level, the bug class most reported against TRL. For every human-ranked reply of
//! ../shared/data/oasst-en100 (212 lists, multi-turn prompts up to five turns deep), with the real SmolLM2 tokenizer
//! under its own ChatML template and under a Llama-3-style template with atomic header tokens:
//! - the prompt ids are exactly the tokens generation conditions on (the prompt rendered with the generation
//!   prompt, tokenised alone), so training and sampling see the same prefix;
//! - the response ids decode to the reply and its end-of-turn marker, nothing of the prompt: no prompt token is
//!   trained on and no response token is masked;
//! - prompt + response decode to the whole rendered conversation: nothing is lost or doubled at the boundary;
//! - where the tokenizer splits at the boundary anyway (ChatML's header ends with a newline), prompt + response
//!   ids equal the tokens of the whole conversation. Under the Llama-3 layout with a GPT-2-style pre-tokenizer they
//!   differ on purpose ("\n\n" is one token at the end of a prompt, two before a word): the ids follow what
//!   generation sees, and the test counts those lists.
//!
//! The model is found in `$ALIGNLAB_MODELS` (default: the workspace's `models/`, filled by
//! `scripts/fetch-models.sh`), the data in `$ALIGNLAB_DATA` (default: `../shared/data`).

use alignlab_core::data::{
    ListRecord, ReadOptions, Text, TokenizeOptions, Truncation, list_to_pairs, read_oasst_trees, tokenize_list,
};
use alignlab_core::tokenizer::{Message, Tokenizer};
use alignlab_core::weights::gguf::Gguf;
use tokenizers::AddedToken;

mod common;
use common::{data_path, model_path};

/// The counts of oasst-en100's SOURCE.md: 212 nodes with ≥ 2 ranked replies give 754 pairwise preferences.
const OASST_LISTS: usize = 212;
const OASST_PAIRS: usize = 754;

/// A Llama-3-style template: `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`, BOS first.
const LLAMA3_STYLE: &str = "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}\
<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}\
<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

fn smollm2_tokenizer() -> Tokenizer {
    let gguf = model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
    Tokenizer::from_gguf(&Gguf::parse(std::fs::read(gguf).unwrap()).unwrap()).unwrap()
}

/// SmolLM2's vocabulary with Llama 3's header and end-of-turn markers added as special (atomic) tokens.
fn llama3_style_tokenizer() -> Tokenizer {
    let mut inner = smollm2_tokenizer().inner().clone();
    let specials = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
    inner.add_special_tokens(&specials.map(|s| AddedToken::from(s, true)));
    let json = inner.to_string(false).unwrap();
    let config =
        serde_json::json!({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA3_STYLE});
    Tokenizer::from_hf(json.as_bytes(), Some(config.to_string().as_bytes())).unwrap()
}

fn oasst_lists() -> Vec<ListRecord> {
    let file = data_path("oasst-en100/en_100_tree.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let lists = read_oasst_trees("en_100_tree.jsonl", &text, &ReadOptions::default()).unwrap();
    assert!(lists.skipped.is_empty(), "{:?}", lists.skipped);
    let pairs: usize = lists.records.iter().map(|l| list_to_pairs(l).iter().filter(|p| !p.tie).count()).sum();
    assert_eq!((lists.records.len(), pairs), (OASST_LISTS, OASST_PAIRS), "the counts of SOURCE.md");
    lists.records
}

/// Checks the invariants of the module doc on every list; returns (lists with a multi-turn prompt, lists whose
/// prompt + response ids differ from the joint tokenisation of some reply).
fn check_masks(tok: &Tokenizer, end_of_turn: &str, joint_must_match: bool) -> (usize, usize) {
    let opts = TokenizeOptions {
        max_length: 1 << 20,
        max_prompt_length: 1 << 20,
        max_list_length: usize::MAX,
        truncation: Truncation::Error,
        ..TokenizeOptions::default()
    };
    let (mut multi_turn, mut joint_differs) = (0, 0);
    for list in oasst_lists() {
        let line = list.line;
        let ids = tokenize_list(tok, &list, &opts).unwrap_or_else(|e| panic!("line {line}: {e}"));
        let prompt_msgs = list.prompt.to_messages("user");
        multi_turn += usize::from(prompt_msgs.len() > 1);
        let rendered_prompt = tok.apply_chat_template(&prompt_msgs, true).unwrap();
        assert_eq!(ids.prompt, tok.encode(&rendered_prompt).unwrap(), "line {line}: the prompt generation sees");
        let mut differs = false;
        for (reply, response) in list.responses.iter().zip(&ids.responses) {
            let Text::Chat(reply_msgs) = reply else { panic!("oasst replies are messages") };
            let mut msgs = prompt_msgs.clone();
            msgs.extend(reply_msgs.iter().cloned());
            let whole = tok.apply_chat_template(&msgs, false).unwrap();
            let rest = whole.strip_prefix(&rendered_prompt).expect("the prompt renders as a prefix").trim_end();
            assert!(rest.ends_with(end_of_turn) && rest.contains(reply_msgs[0].content.trim()), "line {line}");
            assert_eq!(tok.decode(response, false).unwrap(), rest, "line {line}: the response is the reply");
            let joined = [ids.prompt.as_slice(), response.as_slice()].concat();
            assert_eq!(tok.decode(&joined, false).unwrap(), whole.trim_end(), "line {line}: nothing lost or doubled");

            let full = tok.encode(&whole).unwrap();
            let same = full.starts_with(&joined) && tok.decode(&full[joined.len()..], false).unwrap().trim().is_empty();
            assert!(same || !joint_must_match, "line {line}: prompt + response ids differ from the joint tokens");
            differs |= !same;
        }
        joint_differs += usize::from(differs);
    }
    (multi_turn, joint_differs)
}

#[test]
fn chatml_masks_split_every_oasst_reply_at_the_token_boundary() {
    let (multi_turn, joint_differs) = check_masks(&smollm2_tokenizer(), "<|im_end|>", true);
    assert!(multi_turn > 50, "only {multi_turn} multi-turn prompts: the test must cover conversations");
    assert_eq!(joint_differs, 0);
}

#[test]
fn llama3_style_masks_split_every_oasst_reply_at_the_token_boundary() {
    let tok = llama3_style_tokenizer();
    let rendered = tok.apply_chat_template(&[Message::new("user", " Hi ")], true).unwrap();
    assert_eq!(
        rendered,
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    let eot = tok.token_to_id("<|eot_id|>").unwrap();
    assert_eq!(tok.encode(&rendered).unwrap().iter().filter(|&&id| id == eot).count(), 1, "atomic markers");
    let (_, joint_differs) = check_masks(&tok, "<|eot_id|>", false);
    println!(
        "Llama-3 layout: {joint_differs}/{OASST_LISTS} lists tokenise differently when joined (\"\\n\\n\" + word)"
    );
}
