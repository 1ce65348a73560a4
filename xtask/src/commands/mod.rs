//! Commands that drive the layers below for a person rather than for a suite: `cargo xtask
//! run` (build, boot, show) and `cargo xtask bench` (the harness's budgets).

pub mod bench;
pub mod run;
