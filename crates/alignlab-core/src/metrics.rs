//! Metric names, TRL's, so that people's dashboards and habits carry over. One record per logged step; the
//! CLI writes them as JSONL, the npm package hands them to callbacks, the page charts them.

use std::collections::BTreeMap;

pub const STEP: &str = "step";
pub const EPOCH: &str = "epoch";
pub const LOSS: &str = "loss";
pub const LEARNING_RATE: &str = "learning_rate";
pub const GRAD_NORM: &str = "grad_norm";
pub const NUM_TOKENS: &str = "num_tokens";
pub const REWARDS_CHOSEN: &str = "rewards/chosen";
pub const REWARDS_REJECTED: &str = "rewards/rejected";
pub const REWARDS_MARGINS: &str = "rewards/margins";
pub const REWARDS_ACCURACIES: &str = "rewards/accuracies";
pub const LOGPS_CHOSEN: &str = "logps/chosen";
pub const LOGPS_REJECTED: &str = "logps/rejected";
pub const ACCURACY: &str = "accuracy";
pub const MARGIN: &str = "margin";
pub const MEAN_REWARD: &str = "mean_reward";
pub const MIN_REWARD: &str = "min_reward";
pub const MAX_REWARD: &str = "max_reward";

/// One logged step: metric name → value.
pub type Metrics = BTreeMap<String, f64>;
