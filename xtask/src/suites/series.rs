//! Suite `series`: `series check`, then every commit of every topic builds.

use super::suite;
use crate::builds::commit_builds;
use crate::cache::Verdicts;
use crate::check;
use crate::ctx::Ctx;
use crate::report::{self, SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::util;
use anyhow::Result;

/// `series`: series check, one result per check.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    util::announce("series: series check");
    let results = check::run(&ctx.repo, &ctx.build, tc, &Verdicts::new(ctx))?;
    let applies = results
        .iter()
        .any(|r| r.name == "applies" && r.problems.is_empty());
    let mut tests: Vec<TestResult> = results
        .into_iter()
        .map(|r| report::check(format!("series.{}", r.name), r.problems))
        .collect();
    if applies {
        util::announce("series: every commit builds");
        tests.extend(commit_builds(ctx, tc)?);
    }
    Ok(suite("series", tests, vec![]))
}
