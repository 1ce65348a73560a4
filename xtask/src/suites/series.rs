//! Suite `series`: `series check`, then every commit of every topic builds.

use super::suite;
use crate::builds::commit_builds;
use crate::cache::Verdicts;
use crate::check;
use crate::ctx::Ctx;
use crate::git::Git;
use crate::report::{self, SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::topics::Topics;
use crate::{mbox, util};
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
        util::announce("series: each topic through b4 am");
        tests.extend(b4_round_trips(ctx, tc)?);
        util::announce("series: every commit builds");
        tests.extend(commit_builds(ctx, tc)?);
    }
    Ok(suite("series", tests, vec![]))
}

/// Each topic with patches, as the threaded mail of `series mbox`, through `b4 am` and `git am`
/// onto its parents: the result must be the topic branch's tree and b4 must not complain.
fn b4_round_trips(ctx: &Ctx, tc: &Toolchain) -> Result<Vec<TestResult>> {
    let series_dir = ctx.repo.join("series");
    let topics = Topics::load(&series_dir)?;
    let scratch = Git::new(check::scratch(&ctx.build));
    let mut tests = Vec::new();
    for t in &topics.topics {
        let Some(m) = mbox::topic_mbox(&scratch.dir, &series_dir, t)? else {
            continue;
        };
        let work = ctx.build.join("b4").join(&t.dir);
        let problems = mbox::b4_round_trip(&tc.b4, &scratch, &work, t, &m);
        tests.push(report::check(format!("series.b4-am.{}", t.dir), problems));
    }
    Ok(tests)
}
