//! The §3 formats without a trainer of their own: SFT examples, prompts, per-annotator judgements, and the
//! conversions ratings → pairs and GSM8K/IFEval → verifiable records (hand-written inputs, expected outputs by
//! hand).

use alignlab_core::convert::{ConvertError, ConvertOptions, ConvertReport, Format, Target, convert};
use alignlab_core::data::{ReadOptions, SftExample, Text, read_pandalm, read_preferences, read_prompts, read_sft};
use alignlab_core::tokenizer::Message;
use serde_json::{Value, json};

fn run(input: &str, to: Target, opts: &ConvertOptions) -> Result<(Vec<Value>, ConvertReport), ConvertError> {
    let mut out = Vec::new();
    let report = convert(input.as_bytes(), &mut out, "in.jsonl", to, None, opts)?;
    let lines = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    Ok((lines, report))
}

#[test]
fn sft_records_are_prompt_completion_messages_or_text() {
    let m = |r: &str, c: &str| Message::new(r, c);
    let text = [
        r#"{"prompt": "Q", "completion": "A", "source": "s"}"#,
        r#"{"prompt": [{"role": "user", "content": "Q"}], "completion": [{"role": "assistant", "content": "A"}]}"#,
        r#"{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}"#,
        r#"{"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}"#,
        r#"{"text": "Once upon a time", "category": "story"}"#,
    ]
    .join("\n");
    let r = read_sft("sft.jsonl", &text, &ReadOptions::default()).unwrap();
    let examples: Vec<&SftExample> = r.records.iter().map(|r| &r.example).collect();
    assert_eq!(
        examples,
        [
            &SftExample::PromptCompletion { prompt: Text::Plain("Q".into()), completion: Text::Plain("A".into()) },
            &SftExample::PromptCompletion {
                prompt: Text::Chat(vec![m("user", "Q")]),
                completion: Text::Chat(vec![m("assistant", "A")])
            },
            &SftExample::Messages { messages: vec![m("system", "S"), m("user", "Q"), m("assistant", "A")] },
            &SftExample::Messages { messages: vec![m("user", "Q"), m("assistant", "A")] },
            &SftExample::Text { text: "Once upon a time".into() },
        ]
    );
    assert_eq!(r.records.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!((r.records[0].source.as_deref(), r.records[4].category.as_deref()), (Some("s"), Some("story")));
    // written back, a record has the keys it was read with
    assert_eq!(
        serde_json::to_value(&r.records[4]).unwrap(),
        json!({"text": "Once upon a time", "category": "story", "line": 5})
    );

    let err = |line: &str| read_sft("sft.jsonl", line, &ReadOptions::default()).unwrap_err().to_string();
    assert_eq!(err(r#"{"prompt": "Q"}"#), "sft.jsonl:1: missing field \"completion\"");
    assert_eq!(
        err(r#"{"label": true}"#),
        "sft.jsonl:1: no \"prompt\" + \"completion\", \"messages\" or \"text\" (the SFT formats)"
    );
    assert_eq!(
        err(r#"{"prompt": "Q", "completion": [{"role": "assistant", "content": "A"}]}"#),
        "sft.jsonl:1: field \"completion\": prompt and completion must both be strings or both be message lists"
    );
    assert_eq!(err(r#"{"messages": []}"#), "sft.jsonl:1: field \"messages\": empty message list");
    assert_eq!(
        err(r#"{"messages": [{"role": "user", "content": "Q"}]}"#),
        "sft.jsonl:1: field \"messages\": no assistant message to train on"
    );
    assert_eq!(
        err(r#"{"messages": "hello"}"#),
        "sft.jsonl:1: field \"messages\": expected a list of {role, content} messages"
    );
    assert_eq!(err(r#"{"text": 3}"#), "sft.jsonl:1: field \"text\": expected a string");
}

#[test]
fn prompts_read_from_any_record_with_a_prompt() {
    let text = "{\"prompt\": \"Hi\", \"chosen\": \"x\", \"rejected\": \"y\"}\n\n\
                {\"prompt\": [{\"role\": \"user\", \"content\": \"Q\"}], \"source\": \"mt-bench\"}\n";
    let r = read_prompts("p.jsonl", text, &ReadOptions::default()).unwrap();
    assert_eq!(r.records.len(), 2);
    assert_eq!((r.records[0].prompt.clone(), r.records[0].line), (Text::Plain("Hi".into()), 1));
    assert_eq!((r.records[1].source.as_deref(), r.records[1].line), (Some("mt-bench"), 3));
    let err = |line: &str| read_prompts("p.jsonl", line, &ReadOptions::default()).unwrap_err().to_string();
    assert_eq!(err(r#"{"question": "Hi"}"#), "p.jsonl:1: missing field \"prompt\"");
    assert_eq!(err(r#"{"prompt": []}"#), "p.jsonl:1: field \"prompt\": empty message list");
    assert_eq!(
        err(r#"{"prompt": 5}"#),
        "p.jsonl:1: field \"prompt\": expected a string or a list of {role, content} messages"
    );
}

#[test]
fn pandalm_items_give_one_pair_per_annotator() {
    let text = r#"[
      {"idx": 1, "cmp_key": "a_b", "motivation_app": "Gmail", "instruction": "Say hi", "input": "",
       "response1": "hi", "response2": true, "annotator1": 2, "annotator2": 0, "annotator3": 1},
      {"idx": 2, "cmp_key": "a_b", "motivation_app": "Gmail", "instruction": "Add", "input": "1+1",
       "response1": "2", "response2": "3", "annotator1": 5}
    ]"#;
    let err = read_pandalm("t.json", text, &ReadOptions::default()).unwrap_err().to_string();
    assert_eq!(
        err,
        "t.json:4: field \"annotator1\": \"annotator1\" is 5; labels are 0 (tie), 1 or 2 (that response is better)"
    );
    let opts = ReadOptions { skip_bad_lines: true, ..Default::default() };
    let r = read_pandalm("t.json", text, &opts).unwrap();
    assert_eq!(r.skipped.len(), 1);
    let got: Vec<(Option<&str>, &Text, bool, bool)> =
        r.records.iter().map(|p| (p.annotator.as_deref(), &p.chosen, p.tie, p.swapped)).collect();
    let (hi, yes) = (Text::Plain("hi".into()), Text::Plain("True".into()));
    assert_eq!(
        got,
        [
            (Some("annotator1"), &yes, false, true),
            (Some("annotator2"), &hi, true, false),
            (Some("annotator3"), &hi, false, false)
        ]
    );
    let p = &r.records[0];
    assert_eq!((p.prompt.clone(), p.rejected.clone()), (Text::Plain("Say hi".into()), hi.clone()));
    assert_eq!((p.source.as_deref(), p.category.as_deref(), p.line), (Some("a_b"), Some("Gmail"), 2));
}

#[test]
fn stack_exchange_paired_columns_are_prompt_chosen_rejected() {
    let line = r#"{"question": "Q?", "response_j": "good", "response_k": "bad"}"#;
    let r = read_preferences("se.json", line, &ReadOptions::default()).unwrap();
    let p = &r.records[0];
    assert_eq!(
        (&p.prompt, &p.chosen, &p.rejected),
        (&Text::Plain("Q?".into()), &Text::Plain("good".into()), &Text::Plain("bad".into()))
    );
    // TRL's own names win: a record that has them is read as it is
    let both = r#"{"prompt": "P", "chosen": "c", "rejected": "r", "question": "Q?", "response_j": "good"}"#;
    assert_eq!(
        read_preferences("se.json", both, &ReadOptions::default()).unwrap().records[0].chosen,
        Text::Plain("c".into())
    );
}

const RATINGS: &str = r#"{"prompt": "p", "response": "a", "attributes": {"helpfulness": 4, "correctness": 3}}
{"prompt": "p", "response": "b", "attributes": {"helpfulness": 1, "correctness": 4}}
{"prompt": "p", "response": "c", "attributes": {"helpfulness": 4, "correctness": 0}}
{"prompt": "q", "response": "x", "attributes": {"helpfulness": 2, "correctness": 1}}
{"prompt": "q", "response": "y", "attributes": {"helpfulness": 3.5, "correctness": 1}}
"#;

#[test]
fn ratings_become_pairs_with_strength_from_the_score_gap() {
    let (out, report) = run(RATINGS, Target::Pairs, &ConvertOptions::default()).unwrap();
    let pair = |c: &str, r: &str, s: Option<f64>, tie: bool| {
        let mut v = json!({"prompt": if c == "x" || c == "y" { "q" } else { "p" }, "chosen": c, "rejected": r, "objective": "helpfulness"});
        if let Some(s) = s {
            v["strength"] = json!(s);
        }
        if tie {
            v["tie"] = json!(true);
        }
        v
    };
    // helpfulness: a 4, b 1, c 4 → (a, b) gap 3 → strength 3; (a, c) equal → tie; (b, c) gap 3, c chosen;
    // x 2, y 3.5 → gap 1.5 → strength 2
    assert_eq!(
        out,
        [
            pair("a", "b", Some(3.0), false),
            pair("a", "c", None, true),
            pair("c", "b", Some(3.0), false),
            pair("y", "x", Some(2.0), false)
        ]
    );
    assert_eq!(report.format, Some(Format::Ratings));
    assert_eq!((report.records_read, report.records_written, report.ties), (5, 4, 1));

    // helpfulness + 0.5 · correctness: a 5.5, b 3, c 4 → gaps 2.5 (3), 1.5 (2), 1 (1, c over b); x 2.5, y 4 → 1.5
    let weights = vec![("helpfulness".to_string(), 1.0), ("correctness".to_string(), 0.5)];
    let opts = ConvertOptions { rating_weights: weights, drop_ties: true, ..Default::default() };
    let (out, _) = run(RATINGS, Target::Pairs, &opts).unwrap();
    let got: Vec<(&str, &str, f64)> = out
        .iter()
        .map(|v| (v["chosen"].as_str().unwrap(), v["rejected"].as_str().unwrap(), v["strength"].as_f64().unwrap()))
        .collect();
    assert_eq!(got, [("a", "b", 3.0), ("a", "c", 2.0), ("c", "b", 1.0), ("y", "x", 2.0)]);
    assert!(out.iter().all(|v| v.get("objective").is_none()));
}

#[test]
fn ratings_of_a_prompt_must_be_together_and_rate_the_attribute() {
    let scattered = format!("{RATINGS}{}", r#"{"prompt": "p", "response": "d", "attributes": {"helpfulness": 0}}"#);
    let err = run(&scattered, Target::Pairs, &ConvertOptions::default()).unwrap_err().to_string();
    assert_eq!(
        err,
        "in.jsonl:6: field \"prompt\": this prompt's ratings are not on consecutive lines (sort the file by prompt)"
    );
    let missing = r#"{"prompt": "p", "response": "a", "attributes": {"helpfulness": 4}}
{"prompt": "p", "response": "b", "attributes": {"verbosity": 1}}"#;
    let err = run(missing, Target::Pairs, &ConvertOptions::default()).unwrap_err().to_string();
    assert_eq!(err, "in.jsonl:2: field \"attributes\": no \"helpfulness\" rating to compare responses on");
    let err = run(RATINGS, Target::Unpaired, &ConvertOptions::default()).unwrap_err().to_string();
    assert!(err.contains("convert to pairs first"), "{err}");
}

#[test]
fn gsm8k_and_ifeval_records_become_verifiable_ones() {
    let input = r#"{"question": "Natalia sold 48 clips in April and half as many in May. How many in all?", "answer": "48/2 = <<48/2=24>>24\n48+24 = <<48+24=72>>72\n#### 72"}
{"key": 1001, "prompt": "Write without commas.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}"#;
    // the format is told from the first record; both kinds are verifiable input
    let (out, report) = run(input, Target::Verifiable, &ConvertOptions::default()).unwrap();
    assert_eq!(report.format, Some(Format::Verifiable));
    assert_eq!(
        out,
        [
            json!({"prompt": "Natalia sold 48 clips in April and half as many in May. How many in all?",
                   "ground_truth": "72", "verifier": "gsm8k", "source": "gsm8k"}),
            json!({"prompt": "Write without commas.", "verifier": "ifeval", "source": "ifeval",
                   "ground_truth": {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}}),
        ]
    );
    // and back through the reader they verify
    let again: String = out.iter().map(|v| format!("{v}\n")).collect();
    let (checked, _) = run(&again, Target::Same, &ConvertOptions::default()).unwrap();
    assert_eq!(checked, out);
    let err = run(input, Target::Pairs, &ConvertOptions::default()).unwrap_err().to_string();
    assert!(err.contains("verifiable prompts have no responses to compare"), "{err}");
    let pairs = r#"{"prompt": "p", "chosen": "a", "rejected": "b"}"#;
    let err = run(pairs, Target::Verifiable, &ConvertOptions::default()).unwrap_err().to_string();
    assert!(err.contains("only GSM8K and IFEval records become verifiable ones"), "{err}");
}

/// Random text built from the pieces the parsers and checkers look for never panics them: every reader returns
/// records or errors, and every IFEval check and the GSM8K extractor return a verdict or an error.
#[test]
fn readers_and_verifiers_never_panic_on_random_input() {
    use alignlab_core::verify::{IFEVAL_INSTRUCTIONS, gsm8k_answer, read_verifiable, verify};
    const PIECES: [&str; 40] = [
        "*",
        "**",
        "***",
        "******",
        "<<",
        ">>",
        "[",
        "]",
        "\n",
        "\n\n",
        "p.",
        "P.S.",
        "P.P.S",
        "####",
        "$",
        "-",
        ",",
        ".",
        "...",
        "?",
        "!",
        "\"",
        "\u{201d}",
        "é",
        "🦀",
        "1",
        "3.5",
        "1,080",
        " ",
        "A",
        "U.S.",
        "Mr",
        "SECTION",
        "{",
        "}",
        "\"prompt\"",
        ":",
        "[]",
        "null",
        "My answer is yes.",
    ];
    let mut rng = alignlab_core::rng::SplitMix64::new(7);
    let mut random_text = |n: usize| -> String { (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect() };
    let kwargs = json!({
        "num_words": 3, "num_sentences": 2, "num_paragraphs": 2, "nth_paragraph": 2, "first_word": "a",
        "relation": "at least", "keywords": ["a", "é"], "keyword": "p.", "frequency": 1, "forbidden_words": ["a", "-"],
        "letter": "a", "let_frequency": 1, "let_relation": "less than", "num_bullets": 1, "num_highlights": 1,
        "section_spliter": "SECTION", "num_sections": 1, "capital_frequency": 1, "capital_relation": "at least",
        "end_phrase": "!", "postscript_marker": "P.P.S", "num_placeholders": 1, "prompt_to_repeat": "*",
    });
    let opts = ReadOptions { skip_bad_lines: true, ..Default::default() };
    for round in 0..2000 {
        let text = random_text(round % 60);
        for id in IFEVAL_INSTRUCTIONS {
            let truth = json!({"instruction_id_list": [id], "kwargs": [kwargs]});
            verify("ifeval", &truth, &text).unwrap();
        }
        let _ = gsm8k_answer(&text);
        let _ = verify("gsm8k", &json!(text), &text);
        let line = format!("{{\"prompt\": \"{}\", {}}}", text.replace(['"', '\\', '\n'], ""), random_text(8));
        for input in [&text, &line] {
            let _ = read_verifiable("r.jsonl", input, &opts);
            let _ = read_sft("r.jsonl", input, &opts);
            let _ = read_prompts("r.jsonl", input, &opts);
            let _ = read_pandalm("r.jsonl", input, &opts);
            let _ = read_preferences("r.jsonl", input, &opts);
            let _ = run(input, Target::Pairs, &ConvertOptions { read: opts.clone(), ..Default::default() });
        }
    }
}
