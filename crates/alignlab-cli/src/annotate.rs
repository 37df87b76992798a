//! `alignlab annotate`: simulated annotators (alignlab_core::annotators) on candidate sets — preference pairs or
//! ranked lists from a seeded pool, best-of-n curves of gold vs a proxy reward model, and the pool's agreement
//! with human raters.

use std::fs;
use std::io::Write;
use std::path::Path;

use alignlab_core::annotators::{
    CandidateSet, Encoder, PoolConfig, ScoredSet, Who, bon_curve, label_pairs, label_report, rank_sets,
    read_candidate_sets, score_sets,
};
use alignlab_core::data::{ListRecord, ReadOptions, TokenizeOptions, TokenizedPair, read_pandalm, tokenize_list};
use alignlab_core::eval::agreement::{agreement_report, model_agreement};
use alignlab_core::model::reward::AnyRewardModel;
use alignlab_core::train::score_rewards;
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use serde_json::{Value, json};

use crate::args::AnnotateArgs;

pub fn annotate(a: AnnotateArgs) -> Result<()> {
    let pool = read_pool(a.pool.as_deref())?;
    if a.print_pool {
        print!("{}", toml::to_string(&pool)?);
        return Ok(());
    }
    // A misspelt --annotator fails before the (slow) scoring.
    labeller(pool.clone(), a.annotator.as_deref())?;
    let device = crate::device(a.device);
    let encoder = match pool.uses_relevance() {
        true => Some(crate::load_encoder(&a.encoder, &device)?.with_context(|| {
            format!("{} is not a BERT encoder folder (the relevance feature)", a.encoder.display())
        })?),
        false => None,
    };
    let enc = encoder.as_ref().map(|(bert, tokenizer)| Encoder { bert, tokenizer, device: &device });
    if let Some(path) = &a.human_labels {
        return human_agreement(&a, path, &pool, enc.as_ref());
    }
    let path = a.candidates.as_ref().context("give --candidates (or --human-labels)")?;
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let opts = ReadOptions { skip_bad_lines: a.skip_bad_lines, ..ReadOptions::default() };
    let report = read_candidate_sets(&path.display().to_string(), &text, &opts)?;
    for (line, why) in &report.skipped {
        eprintln!("skipped {}:{line}: {why}", path.display());
    }
    let sets = report.records;
    if sets.is_empty() {
        bail!("{}: no candidate sets", path.display());
    }
    eprintln!("scoring {} candidate sets with the gold features", sets.len());
    let scored = pollster::block_on(score_sets(&sets, &pool, enc.as_ref()))?;
    if a.bon_curve {
        return bon(&a, &pool, &sets, &scored, &device);
    }
    let (pool, who) = labeller(pool, a.annotator.as_deref())?;
    let out = a.out.as_ref().context("--out (where to write the labels) is needed, or --bon-curve")?;
    let mut file =
        std::io::BufWriter::new(fs::File::create(out).with_context(|| format!("creating {}", out.display()))?);
    let mut summary = json!({ "candidate_sets": scored.len(), "out": out, "seed": a.seed });
    if a.lists {
        let lists = rank_sets(&pool, &scored, who, a.seed);
        for rec in &lists {
            writeln!(file, "{rec}")?;
        }
        summary["lists"] = lists.len().into();
    } else {
        let labels = label_pairs(&pool, &scored, who, a.seed);
        for l in &labels {
            writeln!(file, "{}", serde_json::to_string(&l.to_pair(&scored, &pool))?)?;
        }
        summary["report"] = serde_json::to_value(label_report(&pool, &scored, &labels, a.seed))?;
    }
    file.flush().with_context(|| format!("writing {}", out.display()))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// The pool from a TOML or JSON file (by extension; `.json` is JSON, anything else TOML), or the default one.
fn read_pool(path: Option<&Path>) -> Result<PoolConfig> {
    let pool = match path {
        None => PoolConfig::default(),
        Some(p) => {
            let text = fs::read_to_string(p).with_context(|| format!("reading the pool {}", p.display()))?;
            if p.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text).with_context(|| format!("in the pool {}", p.display()))?
            } else {
                toml::from_str(&text).with_context(|| format!("in the pool {}", p.display()))?
            }
        }
    };
    pool.validate()?;
    Ok(pool)
}

/// Who labels: the pool, one of its training annotators, or its evaluation annotator (made the only one).
fn labeller(pool: PoolConfig, name: Option<&str>) -> Result<(PoolConfig, Who)> {
    let Some(name) = name else { return Ok((pool, Who::Pool)) };
    if let Ok(i) = pool.index_of(name) {
        return Ok((pool, Who::One(i)));
    }
    if pool.evaluation.name == name {
        let only = PoolConfig { annotators: vec![pool.evaluation.clone()], ..pool };
        return Ok((only, Who::One(0)));
    }
    let names: Vec<&str> = pool.annotators.iter().chain([&pool.evaluation]).map(|a| a.name.as_str()).collect();
    bail!("--annotator {name}: the pool has {}", names.join(", "))
}

/// Best-of-n by the proxy reward model over every set, with the gold reward of the picks.
fn bon(
    a: &AnnotateArgs,
    pool: &PoolConfig,
    sets: &[CandidateSet],
    scored: &[ScoredSet],
    device: &Device,
) -> Result<()> {
    let dir = a.reward_model.as_ref().context("--bon-curve needs --reward-model (the proxy)")?;
    let rm = crate::load_reward_model(dir, device)?;
    let topts = TokenizeOptions {
        max_length: a.max_length,
        max_prompt_length: a.max_prompt_length,
        chat_template: a.chat_template,
        max_list_length: usize::MAX,
        ..Default::default()
    };
    // Each set's responses ride in pairs (the last one twice when K is odd) through the reward scorer.
    let mut pairs = Vec::new();
    for s in sets {
        let rec = ListRecord {
            prompt: s.prompt.clone(),
            responses: s.responses.clone(),
            ranking: None,
            scores: None,
            annotator: None,
            source: None,
            category: None,
            ref_logps: None,
            line: s.line,
        };
        let t = tokenize_list(&rm.tokenizer, &rec, &topts).map_err(|e| e.in_file(&a.candidates_name()))?;
        for i in (0..t.responses.len()).step_by(2) {
            let j = (i + 1).min(t.responses.len() - 1);
            pairs.push(TokenizedPair {
                prompt: t.prompt.clone(),
                chosen: t.responses[i].clone(),
                rejected: t.responses[j].clone(),
                line: s.line,
                strength: None,
                ref_chosen_logps: None,
                ref_rejected_logps: None,
            });
        }
    }
    let b = a.batch_size.max(1);
    let scores = match &rm.model {
        AnyRewardModel::Decoder(m, _) => pollster::block_on(score_rewards(m, &pairs, b, rm.pad_id, device))?,
        AnyRewardModel::Encoder(m, _) => pollster::block_on(score_rewards(m, &pairs, b, rm.pad_id, device))?,
    };
    let mut at = scores.iter();
    let mut curves = Vec::new();
    for s in scored {
        let k = s.candidates.len();
        let mut proxy = Vec::with_capacity(k);
        for _ in 0..k.div_ceil(2) {
            let (x, y) = at.next().context("one score pair per two responses")?;
            proxy.push(*x as f64);
            proxy.push(*y as f64);
        }
        proxy.truncate(k);
        let gold: Vec<f64> = s.candidates.iter().map(|c| pool.gold_reward(&c.features)).collect();
        curves.push((proxy, gold));
    }
    // How often the proxy orders two responses as the gold does (ties in gold left out, in proxy count ½).
    let (mut hits, mut count) = (0.0, 0usize);
    for (p, g) in &curves {
        for i in 0..p.len() {
            for j in i + 1..p.len() {
                if g[i] != g[j] {
                    count += 1;
                    hits += if p[i] == p[j] { 0.5 } else { f64::from(u8::from((p[i] > p[j]) == (g[i] > g[j]))) };
                }
            }
        }
    }
    let out = json!({
        "reward_model": dir,
        "candidate_sets": curves.len(),
        "proxy_gold_pair_accuracy": (count > 0).then(|| hits / count as f64),
        "curve": bon_curve(&curves)?,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

impl AnnotateArgs {
    fn candidates_name(&self) -> String {
        self.candidates.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
    }
}

/// Human-labelled pairs in PandaLM's layout (a JSON array or JSONL of `{"instruction", "input", "response1",
/// "response2", "annotator1", "annotator2", …}`, labels 0 = tie, 1 / 2 = that response is better): the pool
/// labels every item once more as one more annotator, and its agreement with the humans is printed beside
/// theirs with each other (AlpacaFarm compares 65 % sim-human with 66 % human-human).
fn human_agreement(a: &AnnotateArgs, path: &Path, pool: &PoolConfig, enc: Option<&Encoder<'_>>) -> Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let opts = ReadOptions { skip_bad_lines: a.skip_bad_lines, ..ReadOptions::default() };
    let report = read_pandalm(&path.display().to_string(), &text, &opts)?;
    // One record per (item, annotator), items in line order: response1 is the chosen one unless `swapped`.
    let (mut sets, mut humans): (Vec<CandidateSet>, Vec<Vec<Option<u8>>>) = (Vec::new(), Vec::new());
    for r in &report.records {
        if sets.last().is_none_or(|s: &CandidateSet| s.line != r.line) {
            let (r1, r2) = if r.swapped { (&r.rejected, &r.chosen) } else { (&r.chosen, &r.rejected) };
            sets.push(CandidateSet {
                prompt: r.prompt.clone(),
                responses: vec![r1.clone(), r2.clone()],
                ground_truth: None,
                verifier: None,
                source: r.source.clone(),
                category: r.category.clone(),
                line: r.line,
            });
            humans.push(Vec::new());
        }
        let label = if r.tie {
            0
        } else if r.swapped {
            2
        } else {
            1
        };
        humans.last_mut().expect("pushed above").push(Some(label));
    }
    if sets.is_empty() {
        bail!("{}: no human-labelled pairs", path.display());
    }
    eprintln!("scoring {} human-labelled pairs with the gold features", sets.len());
    let scored = pollster::block_on(score_sets(&sets, pool, enc))?;
    let pool_labels: Vec<Option<u8>> =
        label_pairs(pool, &scored, Who::Pool, a.seed).iter().map(|l| Some(l.canonical())).collect();
    let gold_pool = PoolConfig { annotators: vec![pool.evaluation.clone()], ..pool.clone() };
    let gold_labels: Vec<Option<u8>> =
        label_pairs(&gold_pool, &scored, Who::One(0), a.seed).iter().map(|l| Some(l.canonical())).collect();
    // The longer answer wins (words; equal lengths tie): the baseline any judge should beat.
    let longer: Vec<Option<u8>> = scored
        .iter()
        .map(|s| {
            Some(match s.candidates[0].words.cmp(&s.candidates[1].words) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => 2,
                std::cmp::Ordering::Equal => 0,
            })
        })
        .collect();
    let humans_report = agreement_report(&humans)?;
    let judge = |name: &str, labels: &[Option<u8>]| -> Result<Value> {
        let m = model_agreement(labels, &humans)?;
        // Raw agreement with each human, averaged: the number to set beside the humans' mean pairwise agreement.
        let raters = humans.iter().map(Vec::len).max().unwrap_or(0);
        let per_human: Vec<f64> = (0..raters)
            .map(|r| {
                let both: Vec<bool> =
                    labels.iter().zip(&humans).filter_map(|(x, h)| Some(x.as_ref()? == h.get(r)?.as_ref()?)).collect();
                both.iter().filter(|&&b| b).count() as f64 / both.len().max(1) as f64
            })
            .collect();
        // Accuracy on the items whose human majority prefers one response (ties left out), as reward models are scored.
        let decided: Vec<(u8, u8)> = labels
            .iter()
            .zip(&humans)
            .filter_map(|(x, h)| Some((*x.as_ref()?, alignlab_core::eval::agreement::majority(h).filter(|&m| m != 0)?)))
            .collect();
        let accuracy = decided
            .iter()
            .map(|(x, m)| {
                if x == m {
                    1.0
                } else if *x == 0 {
                    0.5
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / decided.len().max(1) as f64;
        let with_humans: Vec<Vec<Option<u8>>> =
            humans.iter().zip(labels).map(|(h, x)| h.iter().copied().chain([*x]).collect()).collect();
        Ok(json!({
            "name": name,
            "mean_agreement_with_each_human": per_human.iter().sum::<f64>() / per_human.len().max(1) as f64,
            "agreement_with_each_human": per_human,
            "majority_accuracy": m.majority_accuracy,
            "majority_items": m.majority_items,
            "non_tie_majority_accuracy": accuracy,
            "non_tie_majority_items": decided.len(),
            "cohen_kappa_with_each_human": m.cohen_kappa,
            "mean_cohen_kappa": m.mean_cohen_kappa,
            "fleiss_kappa_with_humans": agreement_report(&with_humans)?.fleiss_kappa,
            "ties": labels.iter().filter(|l| **l == Some(0)).count(),
        }))
    };
    let out = json!({
        "items": humans.len(),
        "seed": a.seed,
        "humans": {
            "raters": humans_report.raters,
            "mean_pairwise_agreement": humans_report.mean_item_agreement,
            "mean_cohen_kappa": humans_report.mean_cohen_kappa,
            "fleiss_kappa": humans_report.fleiss_kappa,
        },
        "pool": judge("pool", &pool_labels)?,
        "evaluation": judge(&pool.evaluation.name, &gold_labels)?,
        "longer_answer_wins": judge("longer", &longer)?,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
