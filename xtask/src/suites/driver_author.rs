//! Suite `driver-author`: the tools for driver authors, on staging/dev as series/ has it (built
//! in the per-commit builds' slot and configuration, through clippy): the
//! rustdoc index lists the modules the series adds, `rust-project.json` names the kernel crate,
//! and the example out-of-tree module builds, loads and unloads in a boot.

use crate::builds::author;
use crate::builds::{keep_in_commits_slot, topic_images, topic_key, topic_module, Kept};
use crate::cache::Verdicts;
use crate::ctx::Ctx;
use crate::git::Git;
use crate::results::ktap::Outcome;
use crate::results::report::{check, SuiteResult, TestResult};
use crate::series::tree::ToolTree;
use crate::setup::{Toolchain, BASE_TAG};
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;

/// The branch driver authors build on.
const BRANCH: &str = "staging/dev";
/// The example module and what it prints when loaded and unloaded.
const EXAMPLE: &str = "examples/rust_hello";
const EXAMPLE_SAYS: &[(&str, &str)] = &[
    (
        "loaded",
        "dmesg: rust_hello: hello from an out-of-tree module",
    ),
    ("unloaded", "dmesg: rust_hello: goodbye, numbers [2, 3, 5]"),
];

/// The kernel crate's top-level modules that `branch` adds to the base (`rust/kernel/<m>.rs`
/// or `rust/kernel/<m>/`).
fn added_modules(check_git: &Git, branch: &str) -> Result<BTreeSet<String>> {
    let added = check_git.run(&[
        "diff",
        "--name-only",
        "--diff-filter=A",
        &format!("refs/tags/{BASE_TAG}"),
        &format!("refs/heads/{branch}"),
        "--",
        "rust/kernel/",
    ])?;
    Ok(added
        .lines()
        .filter_map(|p| p.strip_prefix("rust/kernel/"))
        .filter_map(|p| p.split('/').next())
        .map(|m| m.trim_end_matches(".rs").to_string())
        .collect())
}

/// `driver-author`: doc, rust-analyzer and an out-of-tree module on [`BRANCH`].
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    let mut suite = SuiteResult::new("driver-author");
    // Applies series/ in the check tree too.
    let images = topic_images(ctx, tc, BRANCH)?;
    let check_git = ToolTree::check(&ctx.build).git();
    let modules = added_modules(&check_git, BRANCH)?;
    // The doc and rust-analyzer checks are remembered like the series' (same tree, fragments
    // and toolchain: same verdict); the module is taken from the cache when nothing it depends
    // on changed, and booted every time.
    let verdict = topic_key(ctx, tc, BRANCH, "driver-author doc rust-analyzer", &[])?;
    let verdicts = Verdicts::new(ctx);
    if verdicts.passed(&verdict) {
        suite.tests.push(TestResult::pass("doc.index"));
        for m in &modules {
            suite.tests.push(TestResult::pass(format!("doc.lists.{m}")));
        }
        suite
            .tests
            .push(TestResult::pass("rust-analyzer.names-kernel-crate"));
    } else {
        // The per-commit builds' slot: no kernel of its own to build from nothing.
        let k = keep_in_commits_slot(ctx, tc, BRANCH)?;
        doc_checks(ctx, tc, &k, &modules, &mut suite)?;
        if suite.tests.iter().all(|t| t.outcome == Outcome::Pass) {
            verdicts.record_pass(&verdict)?;
        }
    }
    module_checks(ctx, tc, &images.kernel, &mut suite)?;
    Ok(suite)
}

/// `make rustdoc` (its index links every module in `modules`) and `make rust-analyzer`.
fn doc_checks(
    ctx: &Ctx,
    tc: &Toolchain,
    k: &Kept,
    modules: &BTreeSet<String>,
    suite: &mut SuiteResult,
) -> Result<()> {
    match author::doc(ctx, tc, k) {
        Err(e) => suite
            .tests
            .push(TestResult::fail("doc.index", format!("{e:#}"))),
        Ok((index, warnings)) => {
            suite.tests.push(check("doc.index", warnings));
            let html = std::fs::read_to_string(&index)?;
            for m in modules {
                let page = author::rustdoc_root(k).join(format!("kernel/{m}/index.html"));
                let mut problems = Vec::new();
                if !html.contains(&format!("{m}/index.html")) {
                    problems.push(format!("{} does not link module {m}", index.display()));
                }
                if !page.is_file() {
                    problems.push(format!("no {}", page.display()));
                }
                suite.tests.push(check(format!("doc.lists.{m}"), problems));
            }
            suite.notes.push(format!("rustdoc: {}", index.display()));
        }
    }
    let ra_dir = ctx.build.join("driver-author");
    std::fs::create_dir_all(&ra_dir)?;
    let ra = author::rust_analyzer(ctx, tc, k, &ra_dir).map(|_| Vec::new());
    suite.tests.push(check(
        "rust-analyzer.names-kernel-crate",
        ra.unwrap_or_else(|e| vec![format!("{e:#}")]),
    ));
    Ok(())
}

/// The example module builds, loads and unloads, saying what it must.
fn module_checks(ctx: &Ctx, tc: &Toolchain, kernel: &Path, suite: &mut SuiteResult) -> Result<()> {
    match topic_module(ctx, tc, BRANCH, &ctx.repo.join(EXAMPLE))? {
        Err(e) => suite.tests.push(TestResult::fail("module.builds", e)),
        Ok(kos) => {
            suite.tests.push(TestResult::pass("module.builds"));
            let (boot, res) =
                crate::boot::boot_modules(ctx, tc, kernel, "driver-author", &kos, &[], false)?;
            for (what, line) in EXAMPLE_SAYS {
                let seen = res.console.lines().any(|l| l.trim_end() == *line);
                let problems = if seen {
                    vec![]
                } else {
                    vec![format!("the console has no line `{line}`")]
                };
                suite.tests.push(check(format!("module.{what}"), problems));
            }
            for mut t in boot.tests {
                t.name = format!("module-boot:{}", t.name);
                suite.tests.push(t);
            }
        }
    }
    Ok(())
}
