//! The unpaired (KTO) and listwise (LiPO) formats: readers, their errors, the converters, and the real files
//! (OpenAssistant rankings, LLaMA-Factory's demo files) with the counts their SOURCE.md gives.

use alignlab_core::data::{
    ListRecord, RankGroup, ReadOptions, Text, TokenizeOptions, Truncation, UnpairedRecord, list_to_pairs,
    pairs_to_unpaired, read_lists, read_oasst_trees, read_preferences, read_unpaired, tokenize_completion,
    tokenize_list,
};
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::tokenizer::{Message, Tokenizer};
use alignlab_core::weights::gguf::Gguf;

mod common;
use common::data_path;

fn read_data(rel: &str) -> String {
    std::fs::read_to_string(data_path(rel)).unwrap()
}

fn lists(text: &str) -> Result<Vec<ListRecord>, String> {
    read_lists("lists.jsonl", text, &ReadOptions::default()).map(|r| r.records).map_err(|e| e.to_string())
}

fn unpaired(text: &str) -> Result<Vec<UnpairedRecord>, String> {
    read_unpaired("kto.jsonl", text, &ReadOptions::default()).map(|r| r.records).map_err(|e| e.to_string())
}

#[test]
fn unpaired_records_read_with_errors_by_line_and_field() {
    let good = r#"{"prompt": "Q", "completion": " A", "label": true}"#;
    let recs =
        unpaired(&format!("{good}\n\n{}", r#"{"prompt": "Q", "completion": " B", "label": false, "x": 1}"#)).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[0].label, recs[1].label, recs[1].line), (true, false, 3));
    assert_eq!(recs[1].completion, Text::Plain(" B".into()));
    assert_eq!(
        unpaired(&format!("{good}\n{}", r#"{"prompt": "Q", "completion": "A"}"#)).unwrap_err(),
        r#"kto.jsonl:2: missing field "label""#
    );
    assert_eq!(
        unpaired(r#"{"prompt": "Q", "completion": "A", "label": "yes"}"#).unwrap_err(),
        r#"kto.jsonl:1: field "label": expected true or false"#
    );
    assert_eq!(
        unpaired(r#"{"prompt": "Q", "completion": [{"role": "assistant", "content": "A"}], "label": true}"#)
            .unwrap_err(),
        r#"kto.jsonl:1: field "completion": prompt and completion must both be strings or both be message lists"#
    );
    // LLaMA-Factory's `messages`: the last message is the completion, and must be the assistant's.
    let m =
        r#"{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "label": false}"#;
    let rec = &unpaired(m).unwrap()[0];
    assert_eq!(rec.prompt, Text::Chat(vec![Message::new("user", "Q")]));
    assert_eq!(rec.completion, Text::Chat(vec![Message::new("assistant", "A")]));
    assert_eq!(
        unpaired(r#"{"messages": [{"role": "user", "content": "Q"}], "label": true}"#).unwrap_err(),
        r#"kto.jsonl:1: field "messages": its last message is the completion and must be the assistant's"#
    );
    // Skip and count.
    let opts = ReadOptions { skip_bad_lines: true, ..Default::default() };
    let r = read_unpaired("kto.jsonl", &format!("{good}\nnope\n{good}"), &opts).unwrap();
    assert_eq!((r.records.len(), r.skipped.len(), r.skipped[0].0), (2, 1, 2));
}

#[test]
fn lists_read_rankings_scores_and_ties_and_refuse_bad_ones() {
    let recs = lists(concat!(
        r#"{"prompt": "Q", "responses": ["a", "b", "c", "d"], "ranking": [2, [0, 3], 1]}"#,
        "\n",
        r#"{"prompt": "Q", "responses": ["a", "b", "c"], "scores": [0.5, 2, 0.5], "source": "s"}"#
    ))
    .unwrap();
    assert_eq!(recs[0].ranking, Some(vec![RankGroup::One(2), RankGroup::Tied(vec![0, 3]), RankGroup::One(1)]));
    // Win rates over K − 1 = 3: response 2 beats all three (1); 0 and 3 beat 1 and tie each other (1.5/3);
    // response 1 beats nobody (0).
    assert_eq!(recs[0].labels(), vec![0.5, 0.0, 1.0, 0.5]);
    assert_eq!(recs[1].labels(), vec![0.5, 2.0, 0.5]);

    let err = |line: &str| lists(line).unwrap_err();
    assert_eq!(
        err(r#"{"prompt": "Q", "responses": ["a", "b"]}"#),
        r#"lists.jsonl:1: field "ranking": a list needs "ranking" or "scores""#
    );
    assert_eq!(
        err(r#"{"prompt": "Q", "responses": ["a", "b"], "ranking": [0, 0]}"#),
        r#"lists.jsonl:1: field "ranking": names response 0 twice or out of range (0..2)"#
    );
    assert_eq!(
        err(r#"{"prompt": "Q", "responses": ["a", "b", "c"], "ranking": [2, 0]}"#),
        r#"lists.jsonl:1: field "ranking": must name each of the 3 responses once"#
    );
    assert_eq!(
        err(r#"{"prompt": "Q", "responses": ["a", "b"], "ranking": "0,1"}"#),
        r#"lists.jsonl:1: field "ranking": expected a list of indices or tie groups"#
    );
    assert_eq!(
        err(r#"{"prompt": "Q", "responses": ["a", "b"], "scores": [1]}"#),
        r#"lists.jsonl:1: field "scores": needs 2 finite numbers, one per response"#
    );
    assert_eq!(
        err(r#"{"prompt": "Q", "responses": ["a", "b"], "scores": [1, 300]}"#),
        r#"lists.jsonl:1: field "scores": |score| must be at most 100 (2^score overflows); rescale"#
    );
    assert_eq!(
        err(r#"{"prompt": "Q", "responses": ["a"], "scores": [1]}"#),
        r#"lists.jsonl:1: field "responses": has 1 responses; a list takes 2 to 64"#
    );
    assert_eq!(
        err(r#"{"prompt": "Q", "responses": ["a", 3], "scores": [1, 0]}"#),
        r#"lists.jsonl:1: field "responses": expected a string or a list of {role, content} messages"#
    );
    let opts = ReadOptions { max_responses: 3, ..Default::default() };
    let four = r#"{"prompt": "Q", "responses": ["a", "b", "c", "d"], "scores": [1, 0, 0, 0]}"#;
    let e = read_lists("l.jsonl", four, &opts).unwrap_err().to_string();
    assert_eq!(e, r#"l.jsonl:1: field "responses": has 4 responses; a list takes 2 to 3"#);
}

#[test]
fn a_json_array_reads_like_jsonl_and_names_the_line_of_a_bad_element() {
    let text = "[\n  {\"prompt\": \"Q\", \"completion\": \"[a, }\", \"label\": true},\n  {\"prompt\": \"Q\",\n   \"completion\": \"b\"}\n]\n";
    assert_eq!(unpaired(text).unwrap_err(), r#"kto.jsonl:3: missing field "label""#);
    let ok = text.replace("\"b\"}", "\"b\", \"label\": false}");
    let recs = unpaired(&ok).unwrap();
    assert_eq!(recs.iter().map(|r| (r.line, r.label)).collect::<Vec<_>>(), [(2, true), (3, false)]);
    assert_eq!(recs[0].completion, Text::Plain("[a, }".into()));
    assert_eq!(unpaired("[]").unwrap(), vec![]);
    assert!(unpaired("[{\"prompt\": \"Q\"}").unwrap_err().contains("ends before its closing"));
    assert!(unpaired("[{}] x").unwrap_err().contains("followed by more text"));
}

#[test]
fn lists_become_pairs_with_strength_and_ties_and_pairs_become_unpaired() {
    let recs = lists(concat!(
        r#"{"prompt": "Q", "responses": ["a", "b", "c"], "scores": [1, 3, 1], "category": "c"}"#,
        "\n",
        r#"{"prompt": "Q", "responses": ["a", "b", "c"], "ranking": [1, 2, 0]}"#
    ))
    .unwrap();
    let pairs = list_to_pairs(&recs[0]);
    let view: Vec<(String, String, Option<f32>, bool)> = pairs
        .iter()
        .map(|p| {
            let s = |t: &Text| match t {
                Text::Plain(s) => s.clone(),
                Text::Chat(_) => unreachable!(),
            };
            (s(&p.chosen), s(&p.rejected), p.strength, p.tie)
        })
        .collect();
    let own = |a: &str, b: &str, s: Option<f32>, t| (a.to_string(), b.to_string(), s, t);
    assert_eq!(view, [own("b", "a", Some(2.0), false), own("a", "c", None, true), own("b", "c", Some(2.0), false)]);
    assert!(pairs.iter().all(|p| p.category.as_deref() == Some("c") && p.line == 1));
    // A ranking gives order without strength.
    let ranked = list_to_pairs(&recs[1]);
    assert!(ranked.iter().all(|p| p.strength.is_none() && !p.tie));
    assert_eq!(ranked.len(), 3);

    // TRL's unpair_preference_dataset: chosen → desirable, rejected → undesirable; the tie is left out.
    let unpaired = pairs_to_unpaired(&pairs);
    assert_eq!(unpaired.len(), 4);
    assert_eq!(unpaired.iter().map(|u| u.label).collect::<Vec<_>>(), [true, true, false, false]);
    assert_eq!(unpaired[2].completion, Text::Plain("a".into()));
}

#[test]
fn oasst_trees_give_212_ranked_lists_and_754_pairs() {
    let report =
        read_oasst_trees("en_100_tree.jsonl", &read_data("oasst-en100/en_100_tree.jsonl"), &ReadOptions::default())
            .unwrap();
    // SOURCE.md: the 212 nodes with at least two ranked replies give 754 pairwise preferences.
    assert!(report.skipped.is_empty());
    assert_eq!(report.records.len(), 212);
    let mut sizes = [0usize; 10];
    report.records.iter().for_each(|l| sizes[l.responses.len()] += 1);
    assert_eq!(sizes, [0, 0, 57, 117, 27, 3, 6, 0, 1, 1]);
    let pairs: Vec<_> = report.records.iter().flat_map(list_to_pairs).collect();
    assert_eq!(pairs.len(), 754);
    assert_eq!(pairs.iter().filter(|p| p.tie).count(), 0);
    // The prompt is the conversation down to the prompter's turn; the lines are the trees' lines.
    let first = &report.records[0];
    let Text::Chat(m) = &first.prompt else { panic!("conversations") };
    assert_eq!(m.last().unwrap().role, "user");
    assert_eq!(m.len() % 2, 1);
    assert!(report.records.iter().all(|l| (1..=100).contains(&l.line)));
    // Best first: rank 0 has the highest label.
    for l in &report.records {
        let best = l.ranking.as_ref().unwrap()[0].clone();
        let RankGroup::One(b) = best else { panic!("no ties in this file") };
        assert_eq!(l.labels()[b], 1.0);
    }
    // The lists tokenise with the tiny model's chat template; K is capped at max_list_length.
    let tok = Tokenizer::from_gguf(&Gguf::parse(tiny_gguf(0)).unwrap()).unwrap();
    let nine = report.records.iter().find(|l| l.responses.len() == 9).unwrap();
    let t = tokenize_list(&tok, nine, &TokenizeOptions::default()).unwrap();
    assert_eq!((t.responses.len(), t.labels.len()), (8, 8));
    let strict = TokenizeOptions {
        truncation: Truncation::Error,
        max_length: 100_000,
        max_prompt_length: 50_000,
        ..Default::default()
    };
    let e = tokenize_list(&tok, nine, &strict).unwrap_err().to_string();
    assert!(
        e.ends_with(r#"field "responses": 9 responses, more than max_list_length 8 (truncation is set to Error)"#),
        "{e}"
    );
}

#[test]
fn llamafactory_demo_files_load_as_they_are() {
    let kto =
        read_unpaired("kto_en_demo.json", &read_data("llamafactory-demo/kto_en_demo.json"), &ReadOptions::default())
            .unwrap();
    // SOURCE.md: 300 examples, 150 desirable and 150 undesirable.
    assert_eq!(kto.records.len(), 300);
    assert_eq!(kto.records.iter().filter(|r| r.label).count(), 150);
    assert!(
        kto.records.iter().all(|r| matches!(&r.completion, Text::Chat(m) if m.len() == 1 && m[0].role == "assistant"))
    );
    let dpo =
        read_preferences("dpo_en_demo.json", &read_data("llamafactory-demo/dpo_en_demo.json"), &ReadOptions::default())
            .unwrap();
    // SOURCE.md: 300 pairs, 220 conversations start with a human turn and 80 with a system turn.
    assert_eq!(dpo.records.len(), 300);
    let first_role = |t: &Text| match t {
        Text::Chat(m) => m[0].role.clone(),
        Text::Plain(_) => panic!("ShareGPT is conversational"),
    };
    assert_eq!(dpo.records.iter().filter(|r| first_role(&r.prompt) == "system").count(), 80);
    assert_eq!(dpo.records.iter().filter(|r| first_role(&r.prompt) == "user").count(), 220);
    assert!(dpo.records.iter().all(|r| first_role(&r.chosen) == "assistant" && first_role(&r.rejected) == "assistant"));
    let sample = dpo.records.iter().find(|r| matches!(&r.prompt, Text::Chat(m) if m[0].content.starts_with("Obtain the result by calculating 6778576-84834150134"))).unwrap();
    assert_eq!(sample.chosen, Text::Chat(vec![Message::new("assistant", "6778576 - 84834150134 = -84827371558")]));
    // The unpaired examples tokenise through the chat template.
    let tok = Tokenizer::from_gguf(&Gguf::parse(tiny_gguf(0)).unwrap()).unwrap();
    let t = tokenize_completion(&tok, &kto.records[0], &TokenizeOptions::default()).unwrap();
    assert_eq!((t.label, t.line), (kto.records[0].label, kto.records[0].line));
    assert!(!t.completion.is_empty() && t.prompt.len() <= 256);
}
