//! Verifiable records and their verifiers: hand-written IFEval responses with the verdicts written by hand, and
//! the real GSM8K and IFEval files of `$ALIGNLAB_DATA` (default `../shared/data`; a missing file fails the test).

use alignlab_core::data::{ReadOptions, Text};
use alignlab_core::verify::{IFEVAL_INSTRUCTIONS, Verdict, VerifyError, ifeval_checks, read_verifiable, verify};
use serde_json::{Value, json};

mod common;
use common::data_path;

fn read_text(rel: &str) -> String {
    let path = data_path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn check(id: &str, kwargs: Value, response: &str) -> bool {
    let truth = json!({"instruction_id_list": [id], "kwargs": [kwargs]});
    let checks = ifeval_checks(&truth, response).unwrap_or_else(|e| panic!("{id}: {e}"));
    checks[0].1
}

/// Each implemented instruction with a response that follows it and one that does not (verdicts by hand from
/// the instruction's description in the IFEval paper).
#[test]
fn every_implemented_ifeval_instruction_passes_and_fails_by_hand() {
    let at_least = |key: &str, n: u64| json!({"relation": "at least", key: n});
    let less_than = |key: &str, n: u64| json!({"relation": "less than", key: n});
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, &str, bool)> = vec![
        ("punctuation:no_comma", json!({}), "No commas here.", true),
        ("punctuation:no_comma", json!({}), "One, two.", false),
        // 5 words: "It's" is two \w runs (It, s)
        ("length_constraints:number_words", at_least("num_words", 5), "It's a fine day.", true),
        ("length_constraints:number_words", at_least("num_words", 6), "It's a fine day.", false),
        ("length_constraints:number_words", less_than("num_words", 6), "It's a fine day.", true),
        // 3 sentences; Dr. and 3.5 are not ends
        ("length_constraints:number_sentences", at_least("num_sentences", 3), "Dr. Who came. He had 3.5 cats! Why?", true),
        ("length_constraints:number_sentences", less_than("num_sentences", 3), "Dr. Who came. He had 3.5 cats! Why?", false),
        ("length_constraints:number_sentences", less_than("num_sentences", 2), "Just one sentence here", true),
        ("length_constraints:number_paragraphs", json!({"num_paragraphs": 2}), "First.\n***\nSecond.", true),
        ("length_constraints:number_paragraphs", json!({"num_paragraphs": 3}), "First.\n***\nSecond.", false),
        // an empty paragraph between two dividers fails; empty ends do not count
        ("length_constraints:number_paragraphs", json!({"num_paragraphs": 2}), "A\n***\n***\nB", false),
        ("length_constraints:number_paragraphs", json!({"num_paragraphs": 2}), "***\nA\n***\nB\n***", true),
        ("length_constraints:nth_paragraph_first_word", json!({"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"}), "Start.\n\n\"Then, go.", true),
        ("length_constraints:nth_paragraph_first_word", json!({"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"}), "Start.\n\nNow go.", false),
        ("keywords:existence", json!({"keywords": ["Paris", "tower"]}), "The TOWER in paris.", true),
        ("keywords:existence", json!({"keywords": ["Paris", "tower"]}), "The tower in Rome.", false),
        ("keywords:frequency", at_least("frequency", 2).as_object().map(|m| { let mut m = m.clone(); m.insert("keyword".into(), "cat".into()); Value::Object(m) }).unwrap(), "Cat and cat.", true),
        ("keywords:frequency", json!({"keyword": "cat", "frequency": 2, "relation": "less than"}), "Cat, cat, catalogue.", false),
        // whole words only: "catalogue" does not contain the forbidden word "cat"
        ("keywords:forbidden_words", json!({"forbidden_words": ["cat", "dog"]}), "A catalogue.", true),
        ("keywords:forbidden_words", json!({"forbidden_words": ["cat", "dog"]}), "My Dog!", false),
        ("keywords:letter_frequency", json!({"letter": "a", "let_frequency": 3, "let_relation": "at least"}), "A banana", true),
        ("keywords:letter_frequency", json!({"letter": "a", "let_frequency": 3, "let_relation": "less than"}), "A banana", false),
        ("detectable_format:number_bullet_lists", json!({"num_bullets": 2}), "Intro\n* one\n- two\n**bold** line", true),
        ("detectable_format:number_bullet_lists", json!({"num_bullets": 3}), "Intro\n* one\n- two", false),
        ("detectable_format:title", json!({}), "<<My Title>>\nbody", true),
        ("detectable_format:title", json!({}), "<< >> and <<\nnot>>", false),
        ("detectable_format:json_format", json!({}), "```json\n{\"a\": [1, 2]}\n```", true),
        ("detectable_format:json_format", json!({}), "Here: {\"a\": 1}", false),
        ("detectable_format:number_highlighted_sections", json!({"num_highlights": 2}), "*one* and **two**", true),
        ("detectable_format:number_highlighted_sections", json!({"num_highlights": 2}), "*one* and ** **", false),
        ("detectable_format:multiple_sections", json!({"section_spliter": "SECTION", "num_sections": 2}), "SECTION 1\na\nSECTION 2\nb", true),
        ("detectable_format:multiple_sections", json!({"section_spliter": "SECTION", "num_sections": 2}), "SECTION 1\na\nSection 2\nb", false),
        ("detectable_format:constrained_response", json!({}), "My answer is maybe.", true),
        ("detectable_format:constrained_response", json!({}), "My answer is perhaps.", false),
        ("change_case:english_lowercase", json!({}), "all lower case, 123.", true),
        ("change_case:english_lowercase", json!({}), "not Quite", false),
        ("change_case:english_capital", json!({}), "ALL CAPS, 123!", true),
        ("change_case:english_capital", json!({}), "ALMOST aLL", false),
        // capital words: NASA, USA (I is one too: "I" is upper case)
        ("change_case:capital_word_frequency", json!({"capital_frequency": 2, "capital_relation": "at least"}), "NASA is in the USA.", true),
        ("change_case:capital_word_frequency", json!({"capital_frequency": 2, "capital_relation": "less than"}), "NASA is in the USA.", false),
        // "NASA's" holds the capital word NASA; "AI-POWERED" is one word
        ("change_case:capital_word_frequency", json!({"capital_frequency": 2, "capital_relation": "at least"}), "NASA's AI-POWERED probe", true),
        ("startend:end_checker", json!({"end_phrase": "Any other questions?"}), "Done. any other questions? ", true),
        ("startend:end_checker", json!({"end_phrase": "Any other questions?"}), "Any other questions? Bye.", false),
        // quotes around the whole response do not count
        ("startend:end_checker", json!({"end_phrase": "Bye."}), "\"Hello. Bye.\"", true),
        ("length_constraints:nth_paragraph_first_word", json!({"num_paragraphs": 1, "nth_paragraph": 1, "first_word": "why"}), "Why? Because.", true),
        ("startend:quotation", json!({}), " \"Quoted.\" ", true),
        ("startend:quotation", json!({}), "\"", false),
        ("detectable_content:postscript", json!({"postscript_marker": "P.S."}), "Body.\n\np. s. see you", true),
        ("detectable_content:postscript", json!({"postscript_marker": "P.P.S"}), "Body.\n\nP.S. see you", false),
        ("detectable_content:postscript", json!({"postscript_marker": "P.P.S"}), "Body.\nP.P.S bye", true),
        ("detectable_content:number_placeholders", json!({"num_placeholders": 2}), "[name] lives at [address].", true),
        ("detectable_content:number_placeholders", json!({"num_placeholders": 2}), "[name] lives at [addr\ness].", false),
        ("combination:repeat_prompt", json!({"prompt_to_repeat": "Write a poem."}), "write a poem. Roses…", true),
        ("combination:repeat_prompt", json!({"prompt_to_repeat": "Write a poem."}), "Roses… Write a poem.", false),
        ("combination:two_responses", json!({}), "First answer.\n******\nSecond answer.", true),
        ("combination:two_responses", json!({}), "Same.\n******\nSame.", false),
    ];
    for (id, kwargs, response, expected) in &cases {
        assert_eq!(check(id, kwargs.clone(), response), *expected, "{id} on {response:?}");
    }
    // every implemented id is covered by a passing and a failing case
    for id in IFEVAL_INSTRUCTIONS {
        for want in [true, false] {
            assert!(cases.iter().any(|c| c.0 == id && c.3 == want), "{id}: no case expecting {want}");
        }
    }
}

#[test]
fn ifeval_verdicts_count_instructions_and_refuse_unknown_ids() {
    let truth = json!({
        "instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase", "startend:quotation"],
        "kwargs": [{}, null, {}],
    });
    let v = verify("ifeval", &truth, "no commas and lower case").unwrap();
    assert_eq!(v, Verdict { passed: 2, total: 3 });
    assert!((v.score() - 2.0 / 3.0).abs() < 1e-12);
    assert!(!v.all_passed());
    let unknown = json!({"instruction_id_list": ["punctuation:no_comma", "made:up"], "kwargs": [{}, {}]});
    assert_eq!(verify("ifeval", &unknown, "x").unwrap_err(), VerifyError::UnknownInstruction("made:up".into()));
    let language = json!({"instruction_id_list": ["language:response_language"], "kwargs": [{"language": "de"}]});
    assert_eq!(
        verify("ifeval", &language, "Hallo").unwrap_err().to_string(),
        "IFEval instruction \"language:response_language\" is not implemented: it needs a language detector"
    );
    let words = json!({"instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"num_words": 3}]});
    assert_eq!(
        verify("ifeval", &words, "a b c").unwrap_err().to_string(),
        "IFEval instruction \"length_constraints:number_words\": missing kwarg \"relation\""
    );
    let uneven = json!({"instruction_id_list": ["punctuation:no_comma"], "kwargs": []});
    assert!(verify("ifeval", &uneven, "x").unwrap_err().to_string().contains("1 instruction ids and 0 kwargs"));
}

#[test]
fn verifiable_lines_are_checked_when_read() {
    let text = [
        r#"{"prompt": "2+2?", "ground_truth": "4", "verifier": "gsm8k", "category": "math"}"#,
        r#"{"prompt": [{"role": "user", "content": "Hi"}], "ground_truth": {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}, "verifier": "ifeval"}"#,
        r#"{"prompt": "x", "ground_truth": "4", "verifier": "regex"}"#,
        r#"{"prompt": "x", "ground_truth": [4], "verifier": "gsm8k"}"#,
        r#"{"prompt": "x", "verifier": "gsm8k"}"#,
        r#"{"question": "1+1?", "answer": "one and one\n#### 2"}"#,
        r#"{"question": "1+1?", "answer": "no hashes"}"#,
    ]
    .join("\n");
    let err = read_verifiable("v.jsonl", &text, &ReadOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "v.jsonl:3: field \"verifier\": unknown verifier \"regex\" (known: gsm8k, ifeval)");
    let opts = ReadOptions { skip_bad_lines: true, ..Default::default() };
    let r = read_verifiable("v.jsonl", &text, &opts).unwrap();
    assert_eq!(r.records.len(), 3);
    assert_eq!((r.records[0].verifier.as_str(), r.records[0].category.as_deref()), ("gsm8k", Some("math")));
    assert_eq!(r.records[1].prompt, Text::Chat(vec![alignlab_core::tokenizer::Message::new("user", "Hi")]));
    assert_eq!(r.records[2].ground_truth, json!("2"));
    assert_eq!(r.records[2].source.as_deref(), Some("gsm8k"));
    let lines: Vec<usize> = r.skipped.iter().map(|s| s.0).collect();
    assert_eq!(lines, [3, 4, 5, 7]);
    assert_eq!(
        r.skipped[1].1,
        "field \"ground_truth\": gsm8k ground truth: expected the final number (a string or a number), found an array"
    );
    assert_eq!(r.skipped[2].1, "missing field \"ground_truth\"");
}

/// SOURCE.md: train.jsonl has 7,473 problems and test.jsonl 1,319; each reference solution ends with
/// "#### <answer>", so each verifies against its own ground truth.
#[test]
fn gsm8k_reference_solutions_verify_against_their_own_answers() {
    for (file, count) in [("gsm8k/train.jsonl", 7473), ("gsm8k/test.jsonl", 1319)] {
        let text = read_text(file);
        let report = read_verifiable(file, &text, &ReadOptions::default()).unwrap();
        assert_eq!(report.records.len(), count, "{file}");
        let raw: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for (rec, row) in report.records.iter().zip(&raw) {
            assert_eq!(rec.prompt, Text::Plain(row["question"].as_str().unwrap().into()));
            let solution = row["answer"].as_str().unwrap();
            let v = verify(&rec.verifier, &rec.ground_truth, solution).unwrap();
            assert_eq!(v, Verdict { passed: 1, total: 1 }, "{file}: {solution}");
            // the solution without its final line is judged by its last number, which is then not always right,
            // and a wrong final answer fails
            let wrong = format!("{}\n#### 0.123", &solution[..solution.rfind("####").unwrap()]);
            assert_eq!(verify("gsm8k", &rec.ground_truth, &wrong).unwrap().passed, 0);
        }
    }
    // commas in answers: "#### 1,080" has the ground truth 1080
    let text = read_text("gsm8k/train.jsonl");
    let report = read_verifiable("train.jsonl", &text, &ReadOptions::default()).unwrap();
    assert!(report.records.iter().any(|r| r.ground_truth == json!("1080")));
}

/// GPT-3 solutions of `example_model_solutions.jsonl` end with "A: <answer>" (no ####), so the verifier reads
/// their last number; their `is_correct` labels come from OpenAI's own answer parser. SOURCE.md gives the
/// correct counts per model: 6B-ft 286, 6B-verif 515, 175B-ft 458, 175B-verif 742.
#[test]
fn gsm8k_verifier_agrees_with_the_labelled_model_solutions() {
    let text = read_text("gsm8k/example_model_solutions.jsonl");
    let models = ["6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"];
    let (mut agree, mut total, mut correct) = (0, 0, [0; 4]);
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let truth = alignlab_core::verify::gsm8k_answer(row["ground_truth"].as_str().unwrap()).unwrap();
        for (m, name) in models.iter().enumerate() {
            let label = row[name]["is_correct"].as_bool().unwrap();
            correct[m] += label as usize;
            let ours = verify("gsm8k", &json!(truth), row[name]["solution"].as_str().unwrap()).unwrap().all_passed();
            agree += (ours == label) as usize;
            total += 1;
        }
    }
    assert_eq!(correct, [286, 515, 458, 742]);
    let rate = agree as f64 / total as f64;
    println!("gsm8k verifier agrees with is_correct on {agree}/{total} solutions ({:.2} %)", 100.0 * rate);
    assert!(rate > 0.97, "agreement {rate}");
}

/// IFEval input (541 prompts, SOURCE.md) read as verifiable records, and the strict prompt-level accuracy of the
/// GPT-4 responses shipped with it (the paper reports 76.9 % strict prompt-level for GPT-4 with all 25 ids; here
/// prompts with `language:response_language`, which is not implemented, are left out and counted).
#[test]
fn ifeval_gpt4_responses_strict_accuracy() {
    let input = read_text("ifeval/input_data.jsonl");
    let report = read_verifiable("input_data.jsonl", &input, &ReadOptions::default()).unwrap();
    assert_eq!(report.records.len(), 541);
    assert!(report.records.iter().all(|r| r.verifier == "ifeval" && r.source.as_deref() == Some("ifeval")));
    // The two files are in the same order; they join by line. One prompt differs: the response file asks for
    // "at least one placeholder" where input_data asks for "at least 3" (line 340); it is checked as input_data
    // says, as IFEval scores the input file's instructions.
    let responses: Vec<(String, String)> = read_text("ifeval/input_response_data_gpt4_20231107_145030.jsonl")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["prompt"].as_str().unwrap().to_string(), v["response"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(responses.len(), 541);
    let differ: Vec<usize> = report
        .records
        .iter()
        .zip(&responses)
        .enumerate()
        .filter(|(_, (r, (p, _)))| r.prompt != Text::Plain(p.clone()))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(differ, [340]);
    let (mut prompts, mut prompt_pass, mut skipped) = (0, 0, 0);
    let (mut instructions, mut instruction_pass) = (0, 0);
    let mut per_id: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (rec, (_, response)) in report.records.iter().zip(&responses) {
        match verify(&rec.verifier, &rec.ground_truth, response) {
            Ok(v) => {
                prompts += 1;
                prompt_pass += v.all_passed() as usize;
                instructions += v.total;
                instruction_pass += v.passed;
                for (id, ok) in ifeval_checks(&rec.ground_truth, response).unwrap() {
                    let e = per_id.entry(id).or_default();
                    e.0 += ok as usize;
                    e.1 += 1;
                }
            }
            Err(VerifyError::NotImplemented { id, .. }) => {
                assert_eq!(id, "language:response_language");
                skipped += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    for (id, (pass, n)) in &per_id {
        println!("{id}: {pass}/{n}");
    }
    let (p, i) = (prompt_pass as f64 / prompts as f64, instruction_pass as f64 / instructions as f64);
    println!(
        "GPT-4 strict: prompt-level {prompt_pass}/{prompts} = {:.1} %, instruction-level {instruction_pass}/\
         {instructions} = {:.1} %; {skipped} prompts with language:response_language left out",
        100.0 * p,
        100.0 * i
    );
    assert_eq!(skipped, 31); // SOURCE.md's id counts: language:response_language 31
    assert_eq!(prompts, 541 - 31);
    // A broken checker lands far from the paper's 76.9 %; the band is a sanity check, not a target.
    assert!((0.65..0.9).contains(&p), "prompt-level {p}");
}
