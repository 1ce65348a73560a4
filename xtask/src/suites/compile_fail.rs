//! Compile-fail cases: what a topic's types promise to refuse, checked by building code that
//! breaks the promise and expecting the build to fail with the right error (the kernel's doctest
//! runner has no `compile_fail`).
//!
//! Each case is a small out-of-tree module in `xtask/compile-fail/<topic dir>/<case>/` (a
//! `Kbuild` and the module's source) with a file `expect`: the fragments (one per line, an
//! error code such as `E0277` or a piece of the message) that the build's log must all show. It
//! is built with kbuild `M=` against the topic's tip in the per-commit slot; a case that builds,
//! or fails without every fragment, fails its test. A case whose `expect` is the one line
//! [`MUST_BUILD`] is the other way round: a promise that some code builds (without warnings).
//! A case whose `expect` starts with the line [`MUST_WARN`] must compile but be refused for
//! its warnings, each fragment that follows in their text: a lint the builds enforce.
//! A passed verdict is remembered by the tip's tree, the configuration, the toolchain and the
//! case's files.

use crate::builds::{topic_module, topic_module_key, COMMITS_SLOT};
use crate::cache::Verdicts;
use crate::ctx::Ctx;
use crate::results::report::TestResult;
use crate::setup::Toolchain;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Where the cases live, one folder per topic.
const CASES_DIR: &str = "xtask/compile-fail";

/// The `expect` of a case that must build.
const MUST_BUILD: &str = "builds";
/// The first line of the `expect` of a case that must compile but be refused for its warnings
/// (a lint the build enforces); the fragments of those warnings follow.
const MUST_WARN: &str = "warns";

/// The case folders of topic folder `topic` (sorted), none when it has no folder.
fn case_dirs(repo: &Path, topic: &str) -> Result<Vec<PathBuf>> {
    let dir = repo.join(CASES_DIR).join(topic);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut cases = crate::util::sorted_dir(&dir)?;
    cases.retain(|p| p.is_dir());
    Ok(cases)
}

/// The fragments a case's build log must show: the non-empty lines of its `expect`.
fn expected(case: &Path) -> Result<Vec<String>> {
    let file = case.join("expect");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("a compile-fail case needs {}", file.display()))?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        anyhow::bail!("{} names no error to expect", file.display());
    }
    Ok(lines)
}

/// The fragments of `expect` that `log` does not show.
fn missing<'a>(expect: &'a [String], log: &str) -> Vec<&'a str> {
    expect
        .iter()
        .filter(|f| !log.contains(f.as_str()))
        .map(String::as_str)
        .collect()
}

/// The verdict on a case whose build gave `built` (the `.ko` files, or the failure) with the
/// build log `log`.
fn verdict(
    name: String,
    expect: &[String],
    built: std::result::Result<(), String>,
    log: &str,
) -> TestResult {
    if expect == [MUST_BUILD] {
        return match built {
            Ok(()) => TestResult::pass(name),
            Err(e) => TestResult::fail(name, format!("it must build, but: {e}")),
        };
    }
    if expect.first().map(String::as_str) == Some(MUST_WARN) {
        return match built {
            Ok(()) => TestResult::fail(name, "it builds without warnings, but must warn"),
            Err(e) if e.contains("builds with warnings") => {
                let missing = missing(&expect[1..], log);
                if missing.is_empty() {
                    TestResult::pass(name)
                } else {
                    TestResult::fail(
                        name,
                        format!("it warns, but not with {}: {e}", missing.join(", ")),
                    )
                }
            }
            Err(e) => TestResult::fail(name, format!("it must compile with warnings, but: {e}")),
        };
    }
    match built {
        Ok(()) => TestResult::fail(name, "it builds, but must not"),
        // `author::module` refuses a module that compiles with warnings: it still compiled.
        Err(e) if e.contains("builds with warnings") => TestResult::fail(
            name,
            format!("it builds (with warnings), but must not: {e}"),
        ),
        Err(e) => {
            let missing = missing(expect, log);
            if missing.is_empty() {
                TestResult::pass(name)
            } else {
                let errors: Vec<&str> = log
                    .lines()
                    .filter(|l| l.starts_with("error"))
                    .take(5)
                    .collect();
                TestResult::fail(
                    name,
                    format!(
                        "it fails, but not with {} ({e}); its errors: {}",
                        missing.join(", "),
                        errors.join(" | ")
                    ),
                )
            }
        }
    }
}

/// Every case of topic folder `topic`, built against `branch`'s tip: one test each, named
/// `<suite>.compile-fail.<case>`.
pub(crate) fn run(
    ctx: &Ctx,
    tc: &Toolchain,
    suite: &str,
    topic: &str,
    branch: &str,
) -> Result<Vec<TestResult>> {
    let verdicts = Verdicts::new(ctx);
    let mut tests = Vec::new();
    for case in case_dirs(&ctx.repo, topic)? {
        let case_name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let name = format!("{suite}.compile-fail.{case_name}");
        let expect = match expected(&case) {
            Ok(e) => e,
            Err(e) => {
                tests.push(TestResult::fail(name, format!("{e:#}")));
                continue;
            }
        };
        let key = topic_module_key(ctx, tc, branch, &case)?;
        if verdicts.passed(&key) {
            tests.push(TestResult::pass(name));
            continue;
        }
        let built = topic_module(ctx, tc, branch, &case)?.map(drop);
        // kbuild::make_module's log for this case in the per-commit slot.
        let log_path = ctx
            .logs()
            .join(format!("module-{case_name}-{COMMITS_SLOT}.log"));
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let t = verdict(name, &expect, built, &log);
        if t.outcome == crate::results::ktap::Outcome::Pass {
            verdicts.record_pass(&key)?;
        }
        tests.push(t);
    }
    Ok(tests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ktap::Outcome;

    #[test]
    fn a_case_passes_only_when_it_fails_with_every_fragment() {
        let expect = vec!["E0277".to_string(), "cannot be sent".to_string()];
        let log = "error[E0277]: `*mut u8` cannot be sent between threads safely\n";
        let v = |built, log| verdict("c".into(), &expect, built, log);
        assert_eq!(v(Err("make failed".into()), log).outcome, Outcome::Pass);
        let built = v(Ok(()), log);
        assert_eq!(built.outcome, Outcome::Fail);
        assert!(built.detail.contains("builds, but must not"));
        let other = v(
            Err("make failed".into()),
            "error[E0433]: failed to resolve\n",
        );
        assert_eq!(other.outcome, Outcome::Fail);
        assert!(
            other.detail.contains("not with E0277, cannot be sent"),
            "{}",
            other.detail
        );
        assert!(other.detail.contains("error[E0433]"), "{}", other.detail);
        let must_build = vec![MUST_BUILD.to_string()];
        let mb = |built| verdict("c".into(), &must_build, built, "");
        assert_eq!(mb(Ok(())).outcome, Outcome::Pass);
        let failed = mb(Err("make failed".into()));
        assert_eq!(failed.outcome, Outcome::Fail);
        assert!(
            failed.detail.starts_with("it must build"),
            "{}",
            failed.detail
        );
        let warned = v(
            Err("the module c builds with warnings:\nwarning: x".into()),
            "",
        );
        assert_eq!(warned.outcome, Outcome::Fail);
        assert!(
            warned.detail.starts_with("it builds (with warnings)"),
            "{}",
            warned.detail
        );
    }

    #[test]
    fn a_lint_case_passes_only_when_refused_for_its_warnings() {
        let expect: Vec<String> = [MUST_WARN, "missing a safety comment"]
            .map(String::from)
            .to_vec();
        let v = |built, log| verdict("c".into(), &expect, built, log);
        let warned = || Err("the module c builds with warnings:\nwarning: x".to_string());
        let log = "warning: unsafe block missing a safety comment\n";
        assert_eq!(v(warned(), log).outcome, Outcome::Pass);
        let other = v(warned(), "warning: unused variable: `x`\n");
        assert_eq!(other.outcome, Outcome::Fail);
        assert!(other.detail.contains("not with missing a safety comment"));
        let clean = v(Ok(()), "");
        assert!(
            clean.detail.contains("without warnings"),
            "{}",
            clean.detail
        );
        let broken = v(Err("make failed".into()), "error[E0425]\n");
        assert!(broken.detail.contains("must compile with warnings"));
    }

    #[test]
    fn every_case_in_the_repository_names_what_it_expects() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut n = 0;
        for topic in std::fs::read_dir(repo.join(CASES_DIR)).unwrap() {
            let topic = topic.unwrap().file_name().to_string_lossy().into_owned();
            for case in case_dirs(repo, &topic).unwrap() {
                let name = case.file_name().unwrap().to_string_lossy().into_owned();
                assert!(!expected(&case).unwrap().is_empty());
                let kbuild = std::fs::read_to_string(case.join("Kbuild")).unwrap();
                assert!(
                    kbuild.contains(&format!("obj-m += {name}.o")),
                    "{name}: {kbuild}"
                );
                assert!(case.join(format!("{name}.rs")).is_file(), "{name}");
                n += 1;
            }
        }
        assert!(n >= 5, "{n} cases");
    }
}
