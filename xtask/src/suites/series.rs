//! Suite `series`: `series check`, then every commit of every topic builds.

use super::suite;
use crate::builds::commit_builds;
use crate::cache::{self, Verdicts};
use crate::ctx::Ctx;
use crate::results::report::{self, SuiteResult, TestResult};
use crate::series::check;
use crate::series::tree::{self, ToolTree};
use crate::setup::Toolchain;
use crate::{series::mbox, util};
use anyhow::Result;

/// `series`: series check, one result per check.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    util::announce("series: series check");
    let mut notes = Vec::new();
    let mut t = std::time::Instant::now();
    let mut took = |notes: &mut Vec<String>, what: &str| {
        notes.push(format!("{what}: {:.1} s", t.elapsed().as_secs_f64()));
        t = std::time::Instant::now();
    };
    let results = check::run(ctx, tc, &Verdicts::new(ctx))?;
    took(&mut notes, "series check (apply, checkpatch, tip view)");
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
        took(&mut notes, "b4 am round trips");
        util::announce("series: every commit builds");
        tests.extend(commit_builds(ctx, tc)?);
        took(&mut notes, "every commit built and documented");
    }
    Ok(suite("series", tests, notes))
}

/// Each topic with patches, as the threaded mail of `series mbox`, through `b4 am` and `git am`
/// onto its parents: the result must be the topic branch's tree and b4 must not complain.
fn b4_round_trips(ctx: &Ctx, tc: &Toolchain) -> Result<Vec<TestResult>> {
    let series = ctx.series()?;
    let (series_dir, topics) = (&series.dir, &series.topics);
    // Applied by the series check.
    let check_tree = ToolTree::check(&ctx.build);
    let git = check_tree.git();
    let verdicts = Verdicts::new(ctx);
    // What the mail and b4's verdict depend on besides the patches: the tip's maintainers file,
    // the base (get_maintainer.pl) and b4 itself.
    let maintainers = git.run(&[
        "rev-parse",
        &format!("refs/heads/{}:MAINTAINERS", topics.tip().branch),
    ])?;
    let base = git.run(&[
        "rev-parse",
        &format!("refs/tags/{}", crate::setup::BASE_TAG),
    ])?;
    let b4 = util::output(std::process::Command::new(&tc.b4).arg("--version"))?;
    let mut tests = Vec::new();
    for t in &topics.topics {
        let files = crate::series::read_topic_dir(series_dir, t)?;
        if files.is_empty() {
            continue;
        }
        let mut digest = String::new();
        for (name, data) in &files {
            digest.push_str(&format!("{name}:{}\n", util::sha256(data)));
        }
        let verdict = cache::key(
            tc,
            "b4 am round trip",
            &[
                &digest,
                maintainers.trim(),
                base.trim(),
                b4.trim(),
                &t.parents.join(" "),
            ],
        );
        let test = format!("series.b4-am.{}", t.dir);
        if verdicts.passed(&verdict) {
            tests.push(TestResult::pass(test));
            continue;
        }
        let Some(m) = mbox::topic_mbox(&check_tree.dir, series_dir, t)? else {
            continue;
        };
        let work = tree::b4_work(&ctx.build, t);
        let problems = mbox::b4_round_trip(&tc.b4, &check_tree, &work, t, &m);
        if problems.is_empty() {
            verdicts.record_pass(&verdict)?;
        }
        tests.push(report::check(test, problems));
    }
    Ok(tests)
}
