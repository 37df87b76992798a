//! Simulated annotators (src/annotators.rs): P_j by hand, seeded determinism, flip rate and position bias
//! within binomial bounds, the gold features on hand-written responses, the best-of-n estimator against
//! enumeration, and MiniLM relevance on the real model.

use alignlab_core::annotators::{
    Annotator, Candidate, CandidateSet, Encoder, Features, GoldReward, PoolConfig, ScoredSet, Who, best_of_n,
    best_of_n_weights, bon_curve, judge, label_pairs, label_report, length_penalty, read_candidate_sets, repetition,
    score_sets, strength, text_features,
};
use alignlab_core::data::{ReadOptions, Text, parse_preference};
use alignlab_core::model::bert::{Bert, bert_tokenizer};
use alignlab_core::rng::SplitMix64;
use burn::tensor::Device;

mod common;

fn annotator(temperature: f64, position_bias: f64, length_bias: f64, flip: f64) -> Annotator {
    Annotator { temperature, position_bias, length_bias, flip, ..Annotator::gold() }
}

fn candidate(features: Features, words: usize) -> Candidate {
    Candidate { text: Text::Plain(format!("{words} words")), features, words }
}

const TOL: f64 = 1e-12;

#[test]
fn preference_probability_by_hand() {
    // Gold weights (constraint 2, relevance 3, length_penalty −1, repetition −2, complete 0.5).
    let gold = GoldReward::default();
    let a = Features { constraint: 1.0, relevance: 0.6, length_penalty: 0.0, repetition: 0.1, complete: 1.0 };
    let b = Features { constraint: 0.5, relevance: 0.4, length_penalty: 0.2, repetition: 0.0, complete: 0.0 };
    // f(A) = 2·1 + 3·0.6 − 1·0 − 2·0.1 + 0.5·1 = 2 + 1.8 − 0.2 + 0.5 = 4.1
    // f(B) = 2·0.5 + 3·0.4 − 1·0.2 − 0 + 0 = 1 + 1.2 − 0.2 = 2.0
    let j = annotator(0.5, 0.3, 0.01, 0.0);
    let (fa, fb) = (j.score(&gold, &a), j.score(&gold, &b));
    assert!((fa - 4.1).abs() < TOL && (fb - 2.0).abs() < TOL, "{fa} {fb}");
    // |A| = 40, |B| = 90 words: logit = (4.1 − 2.0)/0.5 + 0.3 + 0.01·(40 − 90) = 4.2 + 0.3 − 0.5 = 4.0,
    // P = 1/(1 + e^−4) = 0.98201379003790845
    let p = j.preference_probability(fa, fb, 40, 90);
    assert!((p - 0.982_013_790_037_908_5).abs() < TOL, "{p}");
    // Shown the other way round: logit = (2.0 − 4.1)/0.5 + 0.3 + 0.01·(90 − 40) = −4.2 + 0.3 + 0.5 = −3.4,
    // P(B ≻ A) = 1/(1 + e^3.4) = 0.032295464698450516; so P(A ≻ B) = 0.9677 when A is shown second.
    let q = j.preference_probability(fb, fa, 90, 40);
    assert!((q - 0.032_295_464_698_450_52).abs() < TOL, "{q}");
    // T = 0: the sign decides, and equal scores leave only the biases: σ(0.3 + 0.01·(40 − 90)) = σ(−0.2) = 0.45017
    let det = annotator(0.0, 0.3, 0.01, 0.0);
    assert_eq!((det.preference_probability(fa, fb, 40, 90), det.preference_probability(fb, fa, 90, 40)), (1.0, 0.0));
    assert!((det.preference_probability(1.0, 1.0, 40, 90) - 0.450_166_002_687_522_1).abs() < TOL);
    // An annotator with its own weights: relevance 5 alone → f(A) − f(B) = 5·0.2 = 1, T 1, no bias: σ(1) = 0.7311
    let rel = Annotator {
        weights: Some(Features { relevance: 5.0, ..Features::default() }),
        ..annotator(1.0, 0.0, 0.0, 0.0)
    };
    let p = rel.preference_probability(rel.score(&gold, &a), rel.score(&gold, &b), 40, 90);
    assert!((p - 0.731_058_578_630_004_9).abs() < TOL, "{p}");
    // Strength bands on |P − ½|: 0.05 → 1, 0.2 → 2, 0.3 and more → 3.
    assert_eq!([strength(0.55), strength(0.3), strength(0.8), strength(0.02)], [1.0, 2.0, 3.0, 3.0]);
}

fn toy_sets(n: usize, k: usize, seed: u64) -> Vec<ScoredSet> {
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|s| ScoredSet {
            prompt: Text::Plain(format!("prompt {s}")),
            candidates: (0..k)
                .map(|_| {
                    let f = Features {
                        relevance: r.next_f64(),
                        repetition: 0.2 * r.next_f64(),
                        complete: f64::from(u8::from(r.next_f64() < 0.7)),
                        ..Features::default()
                    };
                    candidate(f, 10 + r.below(80))
                })
                .collect(),
            source: None,
            category: None,
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_labels() {
    let pool = PoolConfig::default();
    pool.validate().unwrap();
    let sets = toy_sets(20, 4, 1);
    let a = label_pairs(&pool, &sets, Who::Pool, 7);
    let b = label_pairs(&pool, &sets, Who::Pool, 7);
    let c = label_pairs(&pool, &sets, Who::Pool, 8);
    assert_eq!(a.len(), 20 * 6);
    assert_eq!(a, b);
    assert_ne!(a, c, "another seed gives other labels");
    let records: Vec<String> = a.iter().map(|l| serde_json::to_string(&l.to_pair(&sets, &pool)).unwrap()).collect();
    let again: Vec<String> = b.iter().map(|l| serde_json::to_string(&l.to_pair(&sets, &pool)).unwrap()).collect();
    assert_eq!(records, again);
    // Every written record reads back as a §3 preference pair with its annotator, order and strength.
    for (line, l) in records.iter().zip(&a) {
        let rec = parse_preference(line, 1 << 20).unwrap();
        assert_eq!(rec.annotator.as_deref(), Some(pool.annotators[l.annotator].name.as_str()));
        assert_eq!(rec.tie, l.judgement.first_wins.is_none());
        assert_eq!(rec.swapped, l.judgement.first_wins == Some(false));
        assert_eq!(rec.strength, l.judgement.strength);
    }
    // Every annotator of the pool is drawn.
    let report = label_report(&pool, &sets, &a, 7);
    assert_eq!(report.per_annotator.len(), pool.annotators.len(), "{report:?}");
    assert_eq!(label_report(&pool, &sets, &b, 7), report);
}

/// |x − n·p| ≤ 5·sqrt(n·p·(1 − p)): a binomial count outside this happens with probability < 1e-6.
fn within_binomial(count: usize, n: usize, p: f64) -> bool {
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (count as f64 - n as f64 * p).abs() <= 5.0 * sd
}

#[test]
fn flip_rate_is_binomial() {
    // A deterministic annotator (T = 0) on a pair it always gets right: every wrong label is a flip.
    let gold = GoldReward::default();
    let good = candidate(Features { relevance: 0.9, ..Features::default() }, 30);
    let bad = candidate(Features { relevance: 0.1, ..Features::default() }, 30);
    let j = annotator(0.0, 0.0, 0.0, 0.25);
    let mut rng = SplitMix64::new(3);
    let n = 20_000;
    let (mut wrong, mut flipped) = (0, 0);
    for _ in 0..n {
        let v = judge(&j, &gold, &good, &bad, &mut rng);
        wrong += usize::from(v.first_wins == Some(false));
        flipped += usize::from(v.flipped);
        assert_eq!(v.p_first, 1.0);
        assert_eq!(v.strength, Some(3.0));
    }
    assert_eq!(wrong, flipped);
    assert!(within_binomial(wrong, n, 0.25), "{wrong} flips of {n}");
    // No flips without noise.
    let clean = annotator(0.0, 0.0, 0.0, 0.0);
    assert!((0..1000).all(|_| judge(&clean, &gold, &good, &bad, &mut rng).first_wins == Some(true)));
}

#[test]
fn position_bias_shows_on_swapped_orders() {
    // Two responses of equal score and length: only b_pos decides, so the one shown first wins with σ(b_pos)
    // = σ(0.8) = 0.6899744811276125, whichever it is.
    let gold = GoldReward::default();
    let f = Features { relevance: 0.5, ..Features::default() };
    let (x, y) = (candidate(f, 20), candidate(f, 20));
    let j = annotator(1.0, 0.8, 0.0, 0.0);
    let p = 0.689_974_481_127_612_5;
    let mut rng = SplitMix64::new(11);
    let n = 20_000;
    let x_first = (0..n).filter(|_| judge(&j, &gold, &x, &y, &mut rng).first_wins == Some(true)).count();
    let y_first = (0..n).filter(|_| judge(&j, &gold, &y, &x, &mut rng).first_wins == Some(true)).count();
    assert!(within_binomial(x_first, n, p), "x shown first won {x_first} of {n}");
    assert!(within_binomial(y_first, n, p), "y shown first won {y_first} of {n}");
    // Through label_pairs, which draws the order: the measured first-shown rate is σ(b_pos) too, and the order
    // is logged (swapped ⇔ the chosen one was shown second).
    let pool = PoolConfig { annotators: vec![Annotator { name: "left".into(), ..j }], ..PoolConfig::default() };
    let sets: Vec<ScoredSet> = (0..n / 2)
        .map(|_| ScoredSet {
            prompt: Text::Plain("p".into()),
            candidates: vec![candidate(f, 20), candidate(f, 20)],
            source: None,
            category: None,
        })
        .collect();
    let labels = label_pairs(&pool, &sets, Who::Pool, 5);
    let report = label_report(&pool, &sets, &labels, 5);
    let first = (report.chosen_shown_first * labels.len() as f64).round() as usize;
    assert!(within_binomial(first, labels.len(), p), "{report:?}");
    let swapped = labels.iter().filter(|l| l.to_pair(&sets, &pool).swapped).count();
    assert_eq!(swapped, labels.len() - first);
    // Both orders were shown about equally often.
    let shown_first_0 = labels.iter().filter(|l| l.first == 0).count();
    assert!(within_binomial(shown_first_0, labels.len(), 0.5));
}

#[test]
fn ties_inside_the_band_and_length_bias() {
    let gold = GoldReward::default();
    let (a, b) =
        (Features { relevance: 0.50, ..Features::default() }, Features { relevance: 0.49, ..Features::default() });
    // Gold weights: f(A) − f(B) = 3·0.01 = 0.03, T 1: P = σ(0.03) = 0.5075 → |P − ½| = 0.0075 ≤ 0.01: a tie.
    let j = Annotator { tie_band: 0.01, ..annotator(1.0, 0.0, 0.0, 0.25) };
    let mut rng = SplitMix64::new(0);
    let v = judge(&j, &gold, &candidate(a, 10), &candidate(b, 10), &mut rng);
    assert_eq!((v.first_wins, v.strength, v.flipped), (None, None, false));
    // A length bias of 0.05/word and 40 more words: σ(0.03 + 2) = 0.8839, never a tie, strength 3.
    let long = Annotator { length_bias: 0.05, ..j };
    let v = judge(&long, &gold, &candidate(a, 50), &candidate(b, 10), &mut rng);
    assert!((v.p_first - 0.883_911_077_931_005_1).abs() < 1e-12, "{}", v.p_first);
    assert_eq!(v.strength, Some(3.0));
}

#[test]
fn gold_features_of_hand_written_responses() {
    let gold = GoldReward { min_words: 4, max_words: 8, ..GoldReward::default() };
    // 6 words, inside [4, 8]: no length penalty; 6 distinct trigrams of 4 → repetition 0; ends with '.'.
    let f = text_features("Paris is the capital of France.", &gold);
    assert_eq!((f.length_penalty, f.repetition, f.complete), (0.0, 0.0, 1.0));
    // 2 words: |ln(2/4)| = ln 2; cut mid-sentence.
    let f = text_features("Paris is", &gold);
    assert!((f.length_penalty - std::f64::consts::LN_2).abs() < TOL);
    assert_eq!((f.repetition, f.complete), (0.0, 0.0));
    // 16 words: ln(16/8) = ln 2.
    let text = "the cat sat the cat sat the cat sat the cat sat the cat sat down";
    // Words: 16. Trigrams 14: (the cat sat)×5, (cat sat the)×4, (sat the cat)×4, (cat sat down)×1 → 4 distinct.
    let f = text_features(text, &gold);
    assert!((f.length_penalty - (16.0f64 / 8.0).ln()).abs() < TOL);
    assert!((f.repetition - (1.0 - 4.0 / 14.0)).abs() < TOL, "{}", f.repetition);
    assert_eq!(f.complete, 0.0);
    // Case does not make a trigram new; an empty answer has the largest penalty ln(4/1) and is not complete.
    assert!((repetition("A b c a B C") - (1.0 - 3.0 / 4.0)).abs() < TOL);
    assert!((length_penalty(0, 4, 8) - 4f64.ln()).abs() < TOL);
    assert_eq!(text_features("", &gold).complete, 0.0);
    // A closing code fence or quote ends a block.
    assert_eq!(text_features("```\nprint(1)\n```", &gold).complete, 1.0);
    assert_eq!(text_features("He said \"yes\"", &gold).complete, 1.0);
    // gold = 2·constraint + 3·relevance − length_penalty − 2·repetition + 0.5·complete on the first answer with
    // relevance 0.5: 1.5 + 0.5 = 2.0.
    let f = Features { relevance: 0.5, ..text_features("Paris is the capital of France.", &gold) };
    assert!((PoolConfig::default().gold_reward(&f) - 2.0).abs() < TOL);
}

#[test]
fn constraint_feature_comes_from_the_verifier() {
    // IFEval's no_comma and lowercase on two answers: 2/2 and 0/2 checks; a GSM8K answer right and wrong.
    let lines = [
        r#"{"prompt": "Say hi.", "responses": ["hi there friend.", "Hi, there."], "verifier": "ifeval", "ground_truth": {"instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"], "kwargs": [{}, {}]}}"#,
        "{\"prompt\": \"2 + 2?\", \"responses\": [\"It is 4\", \"#### 5\"], \"verifier\": \"gsm8k\", \"ground_truth\": \"4\"}",
    ];
    let sets = read_candidate_sets("c.jsonl", &lines.join("\n"), &ReadOptions::default()).unwrap().records;
    let pool = PoolConfig {
        gold: GoldReward {
            weights: Features { relevance: 0.0, ..GoldReward::default().weights },
            ..GoldReward::default()
        },
        annotators: vec![Annotator {
            weights: Some(Features { constraint: 1.0, ..Features::default() }),
            ..Annotator::gold()
        }],
        evaluation: Annotator::gold(),
    };
    let scored = pollster::block_on(score_sets(&sets, &pool, None)).unwrap();
    let c: Vec<Vec<f64>> =
        scored.iter().map(|s| s.candidates.iter().map(|c| c.features.constraint).collect()).collect();
    assert_eq!(c, vec![vec![1.0, 0.0], vec![1.0, 0.0]]);
    // The default pool weighs relevance: without the encoder it refuses.
    assert!(pollster::block_on(score_sets(&sets, &PoolConfig::default(), None)).is_err());
}

#[test]
fn bad_candidate_sets_and_pools_are_named() {
    let opts = ReadOptions::default();
    let err = |text: &str| read_candidate_sets("c.jsonl", text, &opts).unwrap_err().to_string();
    assert!(err("{\"prompt\": \"p\"}").contains("c.jsonl:1: missing field \"responses\""));
    assert!(err("\n{\"prompt\": \"p\", \"responses\": []}").contains("c.jsonl:2"));
    assert!(err(r#"{"prompt": "p", "responses": ["a"], "verifier": "gsm8k"}"#).contains("ground_truth"));
    assert!(
        err(r#"{"prompt": "p", "responses": [[{"role": "assistant", "content": "a"}]]}"#).contains("all be strings")
    );
    assert!(err("[1]").contains("c.jsonl:1"));
    let ok = read_candidate_sets("c.jsonl", r#"{"prompt": "p", "responses": ["a", "b"], "extra": 1}"#, &opts).unwrap();
    assert_eq!(
        ok.records[0],
        CandidateSet {
            prompt: Text::Plain("p".into()),
            responses: vec![Text::Plain("a".into()), Text::Plain("b".into())],
            ground_truth: None,
            verifier: None,
            source: None,
            category: None,
            line: 1,
        }
    );
    // Pool configs: unknown keys and bad numbers are refused with the annotator's name.
    let bad_key = r#"{"annotators": [{"name": "x", "temprature": 1}]}"#;
    assert!(serde_json::from_str::<PoolConfig>(bad_key).unwrap_err().to_string().contains("temprature"));
    let bad_flip: PoolConfig = serde_json::from_str(r#"{"annotators": [{"name": "x", "flip": 1.5}]}"#).unwrap();
    let msg = bad_flip.validate().unwrap_err().to_string();
    assert!(msg.contains("annotators[0] \"x\"") && msg.contains("flip"), "{msg}");
    let twice: PoolConfig = serde_json::from_str(r#"{"annotators": [{"name": "x"}, {"name": "x"}]}"#).unwrap();
    assert!(twice.validate().unwrap_err().to_string().contains("twice"));
    // The default pool round-trips through JSON and is valid.
    let d = PoolConfig::default();
    let back: PoolConfig = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
    assert!(d.annotators.iter().all(|a| a.flip == 0.25) && d.evaluation == Annotator::gold());
}

/// The best-of-n pick's expected gold by brute force: every n-subset, the member with the largest proxy (the
/// later index among equal proxies).
fn enumerate(proxy: &[f64], gold: &[f64], n: usize) -> (f64, f64) {
    let k = proxy.len();
    let (mut g, mut p, mut count) = (0.0, 0.0, 0.0);
    for mask in 0u32..(1 << k) {
        if mask.count_ones() as usize != n {
            continue;
        }
        let best = (0..k).filter(|i| mask >> i & 1 == 1).max_by(|&a, &b| proxy[a].total_cmp(&proxy[b]).then(a.cmp(&b)));
        let best = best.unwrap();
        g += gold[best];
        p += proxy[best];
        count += 1.0;
    }
    (g / count, p / count)
}

#[test]
fn best_of_n_estimator_matches_enumeration() {
    let proxy = [0.3, -1.2, 2.5, 0.3, 1.1, 0.0, -0.4];
    let gold = [1.0, 0.5, -2.0, 0.7, 1.5, 0.2, 0.9];
    for n in 1..=proxy.len() {
        let (g, p) = best_of_n(&proxy, &gold, n).unwrap();
        let (eg, ep) = enumerate(&proxy, &gold, n);
        assert!((g - eg).abs() < 1e-12 && (p - ep).abs() < 1e-12, "n {n}: {g} vs {eg}, {p} vs {ep}");
        let w = best_of_n_weights(&proxy, n);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    // By hand, K = 3, n = 2: proxies sorted ascending are (b, a, c), weights C(i−1, 1)/C(3, 2) = 0, 1/3, 2/3.
    let w = best_of_n_weights(&[1.0, 0.0, 5.0], 2);
    assert_eq!(w, vec![1.0 / 3.0, 0.0, 2.0 / 3.0]);
    // n = 1 is the mean; n = K the argmax.
    assert!((best_of_n(&proxy, &gold, 1).unwrap().0 - gold.iter().sum::<f64>() / 7.0).abs() < 1e-12);
    assert_eq!(best_of_n(&proxy, &gold, 7).unwrap().0, -2.0);
    assert!(best_of_n(&proxy, &gold, 8).is_none());
    // The curve: n = 1, 2, 4; the proxy's pick gets worse on gold here (over-optimisation), the oracle better.
    let curve = bon_curve(&[(proxy.to_vec(), gold.to_vec())]).unwrap();
    assert_eq!(curve.iter().map(|c| c.n).collect::<Vec<_>>(), vec![1, 2, 4]);
    assert!((curve[1].kl_bon - (2f64.ln() - 0.5)).abs() < 1e-12);
    assert!(curve[2].proxy > curve[0].proxy && curve[2].gold_oracle > curve[0].gold_oracle);
}

#[test]
fn relevance_is_the_minilm_cosine() {
    let dir = common::model_path("all-MiniLM-L6-v2");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let device = Device::flex();
    let (bert, _) = Bert::from_hf(&read("config.json"), &read("model.safetensors"), &device).unwrap();
    let tokenizer = bert_tokenizer(&read("tokenizer.json")).unwrap();
    let encoder = Encoder { bert: &bert, tokenizer: &tokenizer, device: &device };
    // DESIGN.md §5: cosine 0.666 between these two, 0.105 against the third.
    let line = r#"{"prompt": "The weather is lovely today.", "responses": ["It's so sunny outside!", "He drove to the stadium."]}"#;
    let sets = read_candidate_sets("c.jsonl", line, &ReadOptions::default()).unwrap().records;
    let scored = pollster::block_on(score_sets(&sets, &PoolConfig::default(), Some(&encoder))).unwrap();
    let rel: Vec<f64> = scored[0].candidates.iter().map(|c| c.features.relevance).collect();
    assert!((rel[0] - 0.666).abs() < 2e-3 && (rel[1] - 0.105).abs() < 2e-3, "{rel:?}");
}

#[test]
fn agreement_with_the_evaluation_annotator_is_one_minus_the_flip_rate() {
    // A T = 0 gold-weighted annotator with 25 % flips against the noise-free gold: it agrees exactly when its
    // label was not flipped, so the agreement is binomial around 0.75; without flips it is 1 (κ = 1).
    let sets = toy_sets(500, 4, 2);
    let noisy = Annotator { name: "noisy".into(), flip: 0.25, ..Annotator::gold() };
    let pool = PoolConfig { annotators: vec![noisy], ..PoolConfig::default() };
    let labels = label_pairs(&pool, &sets, Who::Pool, 3);
    let r = label_report(&pool, &sets, &labels, 3);
    let n = labels.len();
    assert_eq!((r.pairs, r.ties), (3000, 0));
    let agree = (r.agreement_with_evaluation.unwrap() * n as f64).round() as usize;
    assert_eq!(agree, n - r.flipped);
    assert!(within_binomial(r.flipped, n, 0.25), "{r:?}");
    let clean = PoolConfig { annotators: vec![Annotator::gold()], ..PoolConfig::default() };
    let labels = label_pairs(&clean, &sets, Who::Pool, 3);
    let r = label_report(&clean, &sets, &labels, 3);
    assert_eq!(
        (r.agreement_with_evaluation, r.kappa_with_evaluation, r.pool_pool_agreement),
        (Some(1.0), Some(1.0), Some(1.0))
    );
}

#[test]
fn lists_rank_by_plackett_luce() {
    // T = 0: the ranking is the order of the annotator's scores, equal scores one tie group.
    let f = |relevance: f64| Features { relevance, ..Features::default() };
    let set = ScoredSet {
        prompt: Text::Plain("p".into()),
        candidates: vec![candidate(f(0.2), 5), candidate(f(0.9), 5), candidate(f(0.2), 5), candidate(f(0.5), 5)],
        source: Some("s".into()),
        category: None,
    };
    let pool = PoolConfig { annotators: vec![Annotator::gold()], ..PoolConfig::default() };
    let lists = alignlab_core::annotators::rank_sets(&pool, std::slice::from_ref(&set), Who::One(0), 0);
    assert_eq!(lists[0]["ranking"], serde_json::json!([1, 3, [0, 2]]));
    assert_eq!((lists[0]["annotator"].as_str(), lists[0]["source"].as_str()), (Some("gold"), Some("s")));
    // The written record reads back as a §3 list.
    let line = lists[0].to_string();
    alignlab_core::data::parse_list(&line, 1 << 20, 64).unwrap();
    // T = 1, two responses whose gold scores differ by 3·(0.9 − 0.5) = 1.2: the better one is ranked first with
    // the Bradley–Terry probability σ(1.2) = 0.7685247834990175 (Gumbel-max = Luce's choice).
    let two = ScoredSet { candidates: vec![candidate(f(0.9), 5), candidate(f(0.5), 5)], ..set };
    let sets = vec![two; 20_000];
    let t1 =
        PoolConfig { annotators: vec![Annotator { temperature: 1.0, ..Annotator::gold() }], ..PoolConfig::default() };
    let lists = alignlab_core::annotators::rank_sets(&t1, &sets, Who::Pool, 9);
    let first = lists.iter().filter(|l| l["ranking"][0] == 0).count();
    assert!(within_binomial(first, sets.len(), 0.768_524_783_499_017_5), "{first}");
}
