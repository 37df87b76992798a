//! `eval::implicit` on a trained policy agrees with the training loop's own metrics of the same examples: after a
//! few steps of DPO, KTO and LiPO on real fixtures, the evaluation of the policy against its reference gives the
//! loop's `evaluate()` values under the same names — and at policy = reference every reward is exactly 0.

use alignlab_core::data::{ReadOptions, read_oasst_trees};
use alignlab_core::eval::implicit::{ImplicitMetrics, ImplicitRewards, implicit_rewards};
use alignlab_core::pretrained::Pretrained;
use alignlab_core::tiny::tiny_gguf;
use alignlab_core::train::{Objective, TrainConfig, TrainData, Trainer};
use burn::module::Module;
use burn::tensor::Device;

mod common;
use common::data_path;

fn data(objective: Objective, p: &Pretrained, c: &TrainConfig) -> TrainData {
    let read = |rel| std::fs::read_to_string(data_path(rel)).unwrap();
    let text = match objective {
        Objective::Dpo => read("llamafactory-demo/dpo_en_demo.json"),
        Objective::Kto => read("llamafactory-demo/kto_en_demo.json"),
        _ => {
            let trees = read("oasst-en100/en_100_tree.jsonl");
            let lists = read_oasst_trees("trees", &trees, &ReadOptions::default()).unwrap().records;
            lists.iter().filter(|l| l.responses.len() <= 4).map(|l| serde_json::to_string(l).unwrap() + "\n").collect()
        }
    };
    let opts = ReadOptions { max_records: Some(6), ..Default::default() };
    TrainData::read("fixture", &text, objective, &opts, &p.tokenizer, &c.tokenize_options()).unwrap().0
}

#[test]
fn evaluation_of_a_trained_policy_gives_the_loops_metrics() {
    let p = Pretrained::from_gguf(tiny_gguf(0), &Device::flex()).unwrap();
    for objective in [Objective::Dpo, Objective::Kto, Objective::Lipo] {
        let c = TrainConfig {
            objective,
            learning_rate: 5e-3,
            // one batch holds every example, so the loop's batch-wise KTO z0 is the data set's
            batch_size: 6,
            max_steps: Some(3),
            max_length: 48,
            max_prompt_length: 24,
            max_list_length: 4,
            ..Default::default()
        };
        let examples = data(objective, &p, &c);
        assert_eq!(examples.len(), 6);
        let run = |d: TrainData| pollster::block_on(Trainer::new(p.model.clone(), d, c.clone(), 2, &Device::flex()));
        let mut trainer = run(examples.clone()).unwrap();

        // At the start the policy is the reference: every reward is exactly 0.
        let start = pollster::block_on(implicit_rewards(&p.model, &p.model, examples.clone(), &c, 2, &Device::flex()));
        match start.unwrap() {
            ImplicitRewards::Pairs { chosen, rejected } => assert!(chosen.iter().chain(&rejected).all(|&r| r == 0.0)),
            ImplicitRewards::Unpaired { rewards, kl_ratios, .. } => {
                assert!(rewards.iter().chain(&kl_ratios).all(|&r| r == 0.0))
            }
            ImplicitRewards::Lists { rewards, .. } => assert!(rewards.iter().flatten().all(|&r| r == 0.0)),
        }

        pollster::block_on(trainer.steps(3)).unwrap();
        let loop_metrics = pollster::block_on(trainer.evaluate()).unwrap();
        let policy = trainer.policy().unwrap().valid().fork(&Device::flex());
        let rewards =
            pollster::block_on(implicit_rewards(&policy, &p.model, examples, &c, 2, &Device::flex())).unwrap();
        let metrics = rewards.metrics(10).unwrap();
        let json = serde_json::to_value(&metrics).unwrap();
        let mut names = vec!["rewards/chosen", "rewards/rejected", "rewards/margins"];
        // A tie in the rewards counts half here and wrong in the loop (TRL): the loop's accuracy is ours less
        // ties / (2 · pairs).
        let trl_accuracy = match &metrics {
            ImplicitMetrics::Pairs(m) => Some(m.accuracy - m.ties as f64 / (2 * m.count) as f64),
            ImplicitMetrics::Unpaired(_) => {
                names.extend(["logps/chosen", "logps/rejected", "kl"]);
                None
            }
            ImplicitMetrics::Lists(m) => Some(m.accuracy - m.ties as f64 / (2 * m.pairs) as f64),
        };
        if let Some(acc) = trl_accuracy {
            let theirs = loop_metrics["rewards/accuracies"];
            eprintln!("{objective:?} rewards/accuracies (ties wrong): eval {acc:.6}, loop {theirs:.6}");
            assert!((acc - theirs).abs() < 1e-6, "{objective:?}: {acc} vs {theirs}"); // the loop divides in f32
        }
        for name in names {
            let (ours, theirs) = (json[name].as_f64().unwrap(), loop_metrics[name]);
            eprintln!("{objective:?} {name}: eval {ours:.6}, loop {theirs:.6}");
            assert!((ours - theirs).abs() <= 1e-5 * theirs.abs().max(1.0), "{objective:?} {name}: {ours} vs {theirs}");
        }
        assert!(json["rewards/margins"].as_f64().unwrap() != 0.0, "{objective:?}: the policy moved");
    }
}
