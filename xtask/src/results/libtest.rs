//! Per-test results from the human output of `cargo test` (libtest's default, pretty format).
//!
//! Give [`parse`] cargo's stdout and stderr merged in one stream, in order (`2>&1` into one
//! pipe): cargo writes `Running ...` / `Doc-tests ...` and compiler errors to stderr and the test
//! binaries write to stdout. Run with `--no-fail-fast` so every binary reports, and without
//! `--quiet` / `--format terse`, which print no test names (that is reported as a failure).
//!
//! Test names are `TARGET::NAME`: TARGET is the test binary (crate or integration-test name,
//! hash removed) or, for doctests, the crate; NAME is libtest's, e.g. `gpu_model::tests::adds`,
//! `vfio::dma_map`, `gpu_model::src/lib.rs - add (line 3)`.

use crate::results::ktap::Outcome;
use crate::results::report::TestResult;

/// Most lines of cargo's own output kept in the detail of a run-level failure.
const MAX_ERROR_LINES: usize = 60;

/// Parses `cargo test` output into one result per test, plus failures for everything that went
/// wrong outside a test:
///
/// - `TARGET: test binary`, when a binary printed `running N tests` but no `test result:` line
///   (it crashed or was killed); the detail holds what it printed, e.g. cargo's signal message;
/// - `TARGET: summary`, when a `test result:` line's counts differ from the tests listed;
/// - `cargo test`, when there is no `test result:` line at all (a compile error, or nothing
///   ran), or when `exit_success` is false but no failure was found; the detail holds cargo's
///   `error` lines and what follows them.
pub fn parse(output: &str, exit_success: bool) -> Vec<TestResult> {
    let mut results: Vec<TestResult> = Vec::new();
    let mut target = String::new();
    let mut block: Option<Block> = None;
    let mut section: Option<(String, Vec<String>)> = None;
    let mut summaries = 0;
    let mut errors: Vec<String> = Vec::new();

    for line in output.lines().map(|l| l.trim_end_matches('\r')) {
        let trimmed = line.trim();
        if !errors.is_empty() || trimmed.starts_with("error") {
            errors.push(line.to_string());
        }
        if let Some((name, lines)) = &mut section {
            if trimmed == "failures:"
                || trimmed == "successes:"
                || section_header(line).is_some()
                || line.starts_with("test result: ")
            {
                attach(&mut results, block.as_ref(), name, lines);
                section = None;
            } else {
                lines.push(line.to_string());
                continue;
            }
        }
        if let Some(t) = trimmed.strip_prefix("Running ") {
            close_unfinished(&mut results, block.take());
            target = binary_name(t);
        } else if let Some(krate) = trimmed.strip_prefix("Doc-tests ") {
            close_unfinished(&mut results, block.take());
            target = krate.trim().to_string();
        } else if let Some(n) = line
            .strip_prefix("running ")
            .and_then(|r| r.split(' ').next())
        {
            close_unfinished(&mut results, block.take());
            block = Some(Block {
                target: target.clone(),
                expected: n.parse().unwrap_or(0),
                start: results.len(),
                other: Vec::new(),
            });
        } else if let Some(summary) = line.strip_prefix("test result: ") {
            summaries += 1;
            if let Some(b) = block.take() {
                check_summary(&mut results, &b, summary);
            }
        } else if let Some(name) = section_header(line) {
            section = Some((name.to_string(), Vec::new()));
        } else if let (Some(b), Some((name, outcome, detail))) = (&block, test_line(line)) {
            results.push(TestResult::new(
                format!("{}::{name}", b.target),
                outcome,
                detail,
            ));
        } else if let Some(b) = &mut block {
            if !trimmed.is_empty() {
                b.other.push(line.to_string());
            }
        }
    }
    if let Some((name, lines)) = &mut section {
        attach(&mut results, block.as_ref(), name, lines);
    }
    close_unfinished(&mut results, block);

    let failed = results.iter().any(|r| r.outcome == Outcome::Fail);
    let why = if summaries == 0 {
        Some("no `test result:` line: the tests did not run (compile error?)")
    } else if !exit_success && !failed {
        Some("cargo test failed, but no test failure was reported")
    } else {
        None
    };
    if let Some(why) = why {
        let mut detail = vec![why.to_string()];
        detail.extend(errors.into_iter().take(MAX_ERROR_LINES));
        results.push(TestResult::fail("cargo test", detail.join("\n")));
    }
    results
}

/// The test binary now running.
struct Block {
    target: String,
    expected: usize,
    /// Index of its first result.
    start: usize,
    /// Lines it printed that are not test lines.
    other: Vec<String>,
}

/// `gpu_model` from `unittests src/lib.rs (target/debug/deps/gpu_model-3470ab827079fb0e)`.
fn binary_name(running: &str) -> String {
    let path = match (running.rfind('('), running.rfind(')')) {
        (Some(a), Some(b)) if a < b => &running[a + 1..b],
        _ => running.split_whitespace().last().unwrap_or(running),
    };
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let file = file.strip_suffix(".exe").unwrap_or(file);
    match file.rsplit_once('-') {
        Some((stem, hash)) if !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            stem.to_string()
        }
        _ => file.to_string(),
    }
}

/// `NAME` from `---- NAME stdout ----`.
fn section_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("---- ")?;
    rest.strip_suffix(" stdout ----")
        .or_else(|| rest.strip_suffix(" stderr ----"))
}

/// (name, outcome, detail) from `test NAME ... ok|FAILED|ignored[, reason]|bench: ...`.
fn test_line(line: &str) -> Option<(&str, Outcome, &str)> {
    let (name, result) = line.strip_prefix("test ")?.rsplit_once(" ... ")?;
    let result = result.trim();
    let (outcome, detail) = match result {
        "ok" => (Outcome::Pass, ""),
        "FAILED" => (Outcome::Fail, ""),
        "ignored" => (Outcome::Skip, ""),
        r if r.starts_with("ignored, ") => (Outcome::Skip, &r["ignored, ".len()..]),
        r if r.starts_with("bench:") => (Outcome::Pass, r),
        _ => return None,
    };
    Some((name, outcome, detail))
}

/// Adds a failure section's text to the test it names (or as a new failure if none matches).
fn attach(results: &mut Vec<TestResult>, block: Option<&Block>, name: &str, lines: &[String]) {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(start, |e| e + 1);
    let text = lines[start..end].join("\n");
    let target = block.map_or("", |b| b.target.as_str());
    let full = format!("{target}::{name}");
    let from = block.map_or(0, |b| b.start);
    match results[from..].iter_mut().rev().find(|r| r.name == full) {
        Some(r) => r.detail = text,
        None => results.push(TestResult::fail(full, text)),
    }
}

/// Reports a binary that printed `running N tests` but never its `test result:` line.
fn close_unfinished(results: &mut Vec<TestResult>, block: Option<Block>) {
    let Some(b) = block else { return };
    let mut detail = vec![format!(
        "the test binary ended without a `test result:` line ({} of {} tests reported)",
        results.len() - b.start,
        b.expected
    )];
    detail.extend(b.other);
    results.push(TestResult::fail(
        format!("{}: test binary", b.target),
        detail.join("\n"),
    ));
}

/// Checks `ok. 3 passed; 0 failed; 2 ignored; 0 measured; ...` against the listed tests.
fn check_summary(results: &mut Vec<TestResult>, b: &Block, summary: &str) {
    let mut said = [0usize; 4];
    let counts = summary.split_once(". ").map_or("", |(_, c)| c);
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        if let (Some(n), Some(word)) = (words.next(), words.next()) {
            let slot = ["passed", "failed", "ignored", "measured"]
                .iter()
                .position(|w| *w == word);
            if let (Some(i), Ok(n)) = (slot, n.parse::<usize>()) {
                said[i] = n;
            }
        }
    }
    let listed = &results[b.start..];
    let seen = [Outcome::Pass, Outcome::Fail, Outcome::Skip]
        .map(|o| listed.iter().filter(|r| r.outcome == o).count());
    if seen != [said[0] + said[3], said[1], said[2]] || summary.split_once(". ").is_none() {
        results.push(TestResult::fail(
            format!("{}: summary", b.target),
            format!(
                "`test result: {summary}` does not match the tests listed \
                 ({} passed, {} failed, {} ignored); was it run with --quiet?",
                seen[0], seen[1], seen[2]
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(results: &[TestResult]) -> Vec<(&str, Outcome)> {
        results
            .iter()
            .map(|r| (r.name.as_str(), r.outcome))
            .collect()
    }

    #[test]
    fn passing_run() {
        let r = parse(include_str!("../../tests/data/libtest/passing.txt"), true);
        assert_eq!(
            summary(&r),
            [
                ("gpu_model::tests::adds", Outcome::Pass),
                ("gpu_model::tests::on_hw", Outcome::Skip),
                ("gpu_model::tests::panics - should panic", Outcome::Pass),
                ("gpu_model::tests::slow", Outcome::Skip),
                ("gpu_model::tests::boot_regs", Outcome::Pass),
                ("vfio::dma_map", Outcome::Pass),
                ("vfio::region_info", Outcome::Pass),
                ("gpu_model::src/lib.rs - add (line 3)", Outcome::Pass),
                ("gpu_model::src/lib.rs - add (line 7)", Outcome::Pass),
            ]
        );
        assert_eq!(r[1].detail, "needs a GPU");
        assert_eq!(r[3].detail, "");
    }

    #[test]
    fn failures_carry_their_output() {
        let r = parse(include_str!("../../tests/data/libtest/failing.txt"), false);
        let failed: Vec<&str> = r
            .iter()
            .filter(|t| t.outcome == Outcome::Fail)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "gpu_model::tests::boot_regs",
                "vfio::dma_map",
                "gpu_model::src/lib.rs - add (line 7)"
            ]
        );
        assert_eq!(r.len(), 9);
        assert_eq!(r.iter().filter(|t| t.outcome == Outcome::Pass).count(), 4);
        let boot = r
            .iter()
            .find(|t| t.name == "gpu_model::tests::boot_regs")
            .unwrap();
        let lines: Vec<&str> = boot.detail.lines().collect();
        assert_eq!(lines[0], "reading PMC_BOOT_0");
        assert_eq!(lines[3], "assertion `left == right` failed: boot0 mismatch");
        assert_eq!(
            *lines.last().unwrap(),
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
        );
        let doc = r.iter().find(|t| t.name.ends_with("(line 7)")).unwrap();
        assert!(doc
            .detail
            .starts_with("Test executable failed (exit status: 101)."));
        assert!(doc.detail.contains(" right: 3"));
    }

    #[test]
    fn compile_error_is_a_failure() {
        let r = parse(
            include_str!("../../tests/data/libtest/compile_error.txt"),
            false,
        );
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].name.as_str(), r[0].outcome),
            ("cargo test", Outcome::Fail)
        );
        let lines: Vec<&str> = r[0].detail.lines().collect();
        assert_eq!(
            lines[0],
            "no `test result:` line: the tests did not run (compile error?)"
        );
        assert_eq!(lines[1], "error[E0308]: mismatched types");
        assert!(r[0]
            .detail
            .contains("error: could not compile `gpu_model` (lib test)"));
        // Even an exit status of 0 cannot make output without results green.
        assert_eq!(parse("", true).len(), 1);
        assert_eq!(parse("", true)[0].outcome, Outcome::Fail);
    }

    #[test]
    fn crashed_binary_is_a_failure() {
        let r = parse(
            include_str!("../../tests/data/libtest/crashed_binary.txt"),
            false,
        );
        assert_eq!(r.len(), 5);
        assert_eq!(
            (r[0].name.as_str(), r[0].outcome),
            ("gpu_model: test binary", Outcome::Fail)
        );
        assert!(r[0].detail.starts_with(
            "the test binary ended without a `test result:` line (0 of 5 tests reported)"
        ));
        assert!(r[0].detail.contains("SIGABRT"));
        assert!(r[1..].iter().all(|t| t.outcome == Outcome::Pass));
    }

    #[test]
    fn quiet_output_and_bad_exit_are_failures() {
        let quiet = "running 3 tests\n..F\nfailures:\n\n---- a::b stdout ----\nboom\n\nfailures:\n    a::b\n\n\
                     test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let r = parse(quiet, false);
        assert_eq!(
            summary(&r),
            [("::a::b", Outcome::Fail), (": summary", Outcome::Fail)]
        );
        assert_eq!(r[0].detail, "boom");
        let ok_but_failed = "running 1 test\ntest a ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\nerror: something else\n";
        let r = parse(ok_but_failed, false);
        assert_eq!(
            summary(&r),
            [("::a", Outcome::Pass), ("cargo test", Outcome::Fail)]
        );
        assert!(r[1].detail.ends_with("error: something else"));
    }

    #[test]
    fn binary_names() {
        assert_eq!(
            binary_name("unittests src/main.rs (target/debug/deps/xtask-0123456789abcdef)"),
            "xtask"
        );
        assert_eq!(
            binary_name("tests/round-trip.rs (target/debug/deps/round_trip-00ff)"),
            "round_trip"
        );
        assert_eq!(
            binary_name("target/debug/deps/gpu_model-3470ab827079fb0e"),
            "gpu_model"
        );
    }
}
