//! Suite `boot-base`: the pristine base kernel boots and runs its Rust doctests.

use crate::boot::{boot_suite, BootPlan};
use crate::builds::build_base;
use crate::ctx::Ctx;
use crate::report::SuiteResult;
use crate::setup::Toolchain;
use anyhow::Result;

/// `boot-base`: the base kernel with the base fragment runs all its Rust doctests.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    let built = build_base(ctx, tc)?;
    let plan = BootPlan {
        name: "boot-base",
        bzimage: &built.bzimage,
        programs: Vec::new(),
        modules: Vec::new(),
        files: Vec::new(),
        run_lines: Vec::new(),
        gpus: Vec::new(),
        devices: Vec::new(),
        expect_suites: &["rust_doctests_kernel"],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
    };
    let (suite, _) = boot_suite(ctx, tc, plan)?;
    Ok(suite)
}
