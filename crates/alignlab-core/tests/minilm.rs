//! The real all-MiniLM-L6-v2 (BERT, 6 layers, d 384), natively on CPU. Expected values come from
//! `scripts/minilm_reference.py`, an independent float64 numpy forward pass of the same safetensors with its own
//! WordPiece tokenizer; the cosines are those of ../shared/DESIGN.md §5.
//! The model comes from `scripts/fetch-minilm.sh` (or the folder `all-MiniLM-L6-v2` in ALIGNLAB_MODELS); when
//! it is absent each test says so and passes.

use std::path::PathBuf;
use std::sync::OnceLock;

use alignlab_core::model::bert::{Bert, BertConfig, EncoderRewardModel, Pooling, bert_tokenizer};
use alignlab_core::tokenizer::Tokenizer;
use burn::tensor::{Device, Int, Tensor, TensorData};

struct MiniLm {
    model: Bert,
    config: BertConfig,
    tokenizer: Tokenizer,
}

fn minilm() -> Option<&'static MiniLm> {
    static MODEL: OnceLock<Option<MiniLm>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = std::env::var_os("ALIGNLAB_MODELS")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")))
                .join("all-MiniLM-L6-v2");
            if !dir.is_dir() {
                eprintln!("skipped: {} is absent; run scripts/fetch-minilm.sh", dir.display());
                return None;
            }
            let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()));
            let (model, config) =
                Bert::from_hf(&read("config.json"), &read("model.safetensors"), &Device::flex()).expect("MiniLM loads");
            let tokenizer = bert_tokenizer(&read("tokenizer.json")).expect("tokenizer.json loads");
            Some(MiniLm { model, config, tokenizer })
        })
        .as_ref()
}

const SENTENCES: [&str; 3] = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."];

/// `[CLS] … [SEP]` ids from scripts/minilm_reference.py.
const IDS: [&[u32]; 3] = [
    &[101, 1996, 4633, 2003, 8403, 2651, 1012, 102],
    &[101, 2009, 1005, 1055, 2061, 11559, 2648, 999, 102],
    &[101, 2002, 5225, 2000, 1996, 3346, 1012, 102],
];

/// Right-pads `seqs` to `t` with the pad id 0, as the tokenizer.json of the model does (to 128).
fn batch(seqs: &[&[u32]], t: usize) -> (Tensor<2, Int>, Vec<usize>) {
    let flat: Vec<i64> = seqs.iter().flat_map(|s| (0..t).map(|j| s.get(j).map_or(0, |&id| id as i64))).collect();
    let ids = Tensor::from_data(TensorData::new(flat, [seqs.len(), t]), &Device::flex());
    (ids, seqs.iter().map(|s| s.len()).collect())
}

fn rows(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, d] = t.dims();
    t.into_data().iter::<f32>().collect::<Vec<_>>().chunks(d).map(<[f32]>::to_vec).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn config_comes_from_the_file() {
    let Some(m) = minilm() else { return };
    assert_eq!(m.config, BertConfig::new(30522, 384, 6, 12, 1536));
    assert_eq!((m.model.d_model(), m.model.max_len()), (384, 512));
}

#[test]
fn wordpiece_ids_match_the_reference_tokenizer() {
    let Some(m) = minilm() else { return };
    for (s, want) in SENTENCES.iter().zip(IDS) {
        assert_eq!(m.tokenizer.encode_with(s, true).unwrap(), want, "{s}");
    }
    let t = &m.tokenizer;
    assert_eq!((t.bos_id(), t.eos_id(), t.pad_id(), t.add_bos()), (Some(101), Some(102), Some(0), true));
}

#[test]
fn mean_pooled_embedding_matches_the_numpy_reference() {
    let Some(m) = minilm() else { return };
    let (ids, lengths) = batch(&IDS[..1], IDS[0].len());
    let got = rows(m.model.embed(ids, &lengths, Pooling::Mean)).remove(0);
    // scripts/minilm_reference.py: mean-pooled[:8] of "The weather is lovely today." (norm 5.085657).
    let want = [0.097623f32, 0.610713, 0.811662, 0.341074, 0.254663, -0.131814, 0.287178, -0.472243];
    let diff = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
    eprintln!("first 8: {:?}; max |diff| {diff:.2e}", &got[..8]);
    assert!(diff < 1e-5, "{:?} vs {want:?}", &got[..8]);
    let norm = dot(&got, &got).sqrt();
    assert!((norm - 5.085657).abs() < 1e-3, "norm {norm}");
}

#[test]
fn cosine_similarities_match_design() {
    let Some(m) = minilm() else { return };
    // Padded to 128 as the model's tokenizer.json pads: the mask must make the padding invisible.
    let (ids, lengths) = batch(&IDS, 128);
    let e = rows(m.model.sentence_embeddings(ids, &lengths, Pooling::Mean));
    let (sunny, stadium) = (dot(&e[0], &e[1]), dot(&e[0], &e[2]));
    eprintln!("cosine: sunny {sunny:.6}, stadium {stadium:.6}");
    // DESIGN.md §5: 0.666 and 0.105; scripts/minilm_reference.py: 0.665955 and 0.104584.
    assert!((sunny - 0.666).abs() < 1e-3 && (sunny - 0.665955).abs() < 1e-4, "{sunny}");
    assert!((stadium - 0.105).abs() < 1e-3 && (stadium - 0.104584).abs() < 1e-4, "{stadium}");
    // The same sentences unpadded, one at a time.
    for (i, s) in IDS.iter().enumerate() {
        let (ids, lengths) = batch(&[s], s.len());
        let alone = rows(m.model.sentence_embeddings(ids, &lengths, Pooling::Mean)).remove(0);
        let diff = alone.iter().zip(&e[i]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "sentence {i}: padding changed the embedding by {diff}");
    }
}

#[test]
fn fresh_encoder_reward_model_scores_zero() {
    let Some(m) = minilm() else { return };
    let rm = EncoderRewardModel::new(m.model.clone(), Pooling::Mean, &Device::flex());
    let (ids, lengths) = batch(&IDS[1..], 9);
    assert_eq!(rm.forward(ids, &lengths).into_data().iter::<f32>().collect::<Vec<_>>(), [0.0, 0.0]);
}
