//! `module_ktap`: loads a kernel test module that reports its results in the kernel log, and
//! re-reports them as one KTAP suite on stdout.
//!
//! ```text
//! module_ktap --module PATH.ko --suite NAME [--timeout SECS]
//! ```
//! `--timeout` defaults to 60 s.
//!
//! The module runs its tests in its init function, which returns an error when a test failed
//! (so that `insmod` fails then), and prints, through `pr_info` (so that the text of each
//! record starts with the module name and `: `), in this order:
//! - `1..N`: the plan, N tests;
//! - for each test K from 1 to N, `ok K name` or `not ok K name # reason`;
//! - `done: P passed, F failed`.
//!
//! Lines starting with `# ` are diagnostics, passed on as KTAP diagnostics. Only records whose
//! text starts with `<module name>: ` count (the module name is the file name without `.ko`,
//! with `-` as `_`); other lines of the module are ignored.
//!
//! Steps: `/dev/kmsg` is opened at its end; `insmod PATH.ko` runs (a child process) while the
//! records are read, until the module's `done:` line has been read and `insmod` has returned,
//! or until the timeout; then the module is unloaded with `rmmod` if `insmod` succeeded or
//! `/proc/modules` lists it.
//!
//! KTAP tests (suite NAME), N + 2 of them:
//! 1. the N tests of the plan, in order, under the names the module gave them (`test_K` for a
//!    test that never reported, or reported without a name): each passes when the module
//!    reported `ok K`, and fails with the module's reason for `not ok K`. A result with a number
//!    other than the next expected one fails as out of order, a second result for a test fails
//!    it, and a test without a result before the `done:` line or the timeout fails with
//!    `no result before ...`.
//! 2. `module_load`: passes when `insmod` succeeded exactly when no test failed (according to
//!    the module: no `not ok` and `F` 0), and the log was complete and consistent: a plan came
//!    before the results, no result had a number outside the plan, the `done:` line came before
//!    the timeout and its counts match the results, and no `/dev/kmsg` overrun (`EPIPE`, records
//!    lost) or read error happened.
//! 3. `module_unload`: `rmmod` of a loaded module succeeds and `/proc/modules` no longer lists
//!    it (passes when there was nothing to unload).
//!
//! Everything is collected first, then printed (the KTAP plan needs N). The exit code is 0
//! only when every test passed; 2 for bad arguments or outside the test guest.

use guest::args::{self, Flags};
use guest::kmod;
use guest::kmsg::{self, record_text, Kmsg, ReadOutcome, RecordSource};
use guest::ktap::verdict;
use guest::Ktap;
use std::mem;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

/// The usage line.
const USAGE: &str = "usage: module_ktap --module PATH.ko --suite NAME [--timeout SECS]";

/// The timeout without `--timeout`, in seconds.
const DEFAULT_TIMEOUT_S: u64 = 60;

/// The pause between two polls of `/dev/kmsg`.
const POLL: Duration = Duration::from_millis(5);

/// One line of the module, without the module prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line<'a> {
    /// `1..N`.
    Plan(usize),
    /// `ok K name` or `not ok K name # reason`.
    Result(TestLine<'a>),
    /// `# text`: a diagnostic, the text after `# `.
    Diag(&'a str),
    /// `done: P passed, F failed`, with `(P, F)` when the counts parse.
    Done(Option<(usize, usize)>),
    /// Anything else (ignored).
    Other,
}

/// A result line of the module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TestLine<'a> {
    /// The whole line, for messages.
    line: &'a str,
    /// Whether it is `ok`.
    ok: bool,
    /// The test number K.
    number: usize,
    /// The test name (may be empty).
    name: &'a str,
    /// The text after ` # `, if any.
    reason: Option<&'a str>,
}

impl TestLine<'_> {
    /// The name to report the test under.
    fn name(&self) -> String {
        if self.name.is_empty() {
            unnamed(self.number)
        } else {
            self.name.to_string()
        }
    }

    /// The module's verdict: `Ok` for `ok`, else `Err` with its reason.
    fn verdict(&self) -> Result<(), String> {
        match (self.ok, self.reason) {
            (true, _) => Ok(()),
            (false, Some(reason)) => Err(reason.to_string()),
            (false, None) => Err("the module reported `not ok` without a reason".into()),
        }
    }
}

/// The name of test `number` when the module gave none.
fn unnamed(number: usize) -> String {
    format!("test_{number}")
}

/// The line of module `module` in the text of a record: the text after `<module>: `, when it
/// starts with that.
fn module_line<'a>(module: &str, text: &'a str) -> Option<&'a str> {
    text.strip_prefix(module)?
        .strip_prefix(": ")
        .map(str::trim_end)
}

/// A count: ASCII digits only.
fn count(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `ok K name`, `not ok K name # reason` (the name and the reason may be missing).
fn parse_result(line: &str) -> Option<TestLine<'_>> {
    let (ok, rest) = match line.strip_prefix("not ok ") {
        Some(rest) => (false, rest),
        None => (true, line.strip_prefix("ok ")?),
    };
    let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let number = count(number)?;
    let (name, reason) = match rest.strip_prefix("# ") {
        Some(reason) => ("", Some(reason)),
        None => match rest.split_once(" # ") {
            Some((name, reason)) => (name, Some(reason)),
            None => (rest, None),
        },
    };
    Some(TestLine {
        line,
        ok,
        number,
        name: name.trim(),
        reason: reason.map(str::trim).filter(|r| !r.is_empty()),
    })
}

/// Parses the counts of a `done:` line (the text after `done:`).
fn parse_done(rest: &str) -> Option<(usize, usize)> {
    let (passed, failed) = rest.trim().split_once(" passed, ")?;
    Some((count(passed)?, count(failed.strip_suffix(" failed")?)?))
}

/// Parses one line of the module (without the module prefix).
fn parse_line(line: &str) -> Line<'_> {
    if let Some(n) = line.strip_prefix("1..").and_then(count) {
        Line::Plan(n)
    } else if let Some(rest) = line.strip_prefix("done:") {
        Line::Done(parse_done(rest))
    } else if let Some(text) = line.strip_prefix("# ") {
        Line::Diag(text)
    } else if let Some(r) = parse_result(line) {
        Line::Result(r)
    } else {
        Line::Other
    }
}

/// Whether the record text `text` is the `done:` line of module `module`.
fn is_done(module: &str, text: &str) -> bool {
    module_line(module, text).is_some_and(|l| matches!(parse_line(l), Line::Done(_)))
}

/// What was read from the kernel log while the module ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Capture {
    /// The texts of the records (every record, in log order).
    texts: Vec<String>,
    /// How many reads failed with `EPIPE` (records lost).
    overruns: u32,
    /// The error that stopped the reading, if any.
    error: Option<String>,
}

/// One KTAP test to report: the diagnostics printed before it, its name and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Case {
    name: String,
    diags: Vec<String>,
    result: Result<(), String>,
}

impl Case {
    /// A test `name` with result `result` and no diagnostics.
    fn new(name: impl Into<String>, result: Result<(), String>) -> Self {
        Self {
            name: name.into(),
            diags: Vec::new(),
            result,
        }
    }
}

/// The verdicts on what module `module` printed (`cap`) and on the outcome of `insmod`: the
/// tests of the plan in order, then `module_load` (see the top of this file).
fn evaluate(module: &str, cap: &Capture, insmod: &Result<(), String>) -> Vec<Case> {
    let mut problems = Vec::new();
    let mut plan = None;
    let mut results: Vec<(TestLine<'_>, Vec<String>)> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut done = None;
    for line in cap.texts.iter().filter_map(|t| module_line(module, t)) {
        match parse_line(line) {
            Line::Plan(n) if plan.is_none() => {
                if !results.is_empty() {
                    problems.push(format!("the plan `1..{n}` came after the first result"));
                }
                plan = Some(n);
            }
            Line::Plan(n) => problems.push(format!("a second plan `1..{n}` (ignored)")),
            Line::Result(r) => results.push((r, mem::take(&mut pending))),
            Line::Diag(d) => pending.push(d.to_string()),
            Line::Done(counts) => {
                done = Some((line, counts));
                break;
            }
            Line::Other => {}
        }
    }
    let reported_ok = results.iter().filter(|(r, _)| r.ok).count();
    let reported_failed = results.len() - reported_ok;

    let planned = plan.unwrap_or(0);
    if plan.is_none() {
        problems.push(match results.len() {
            0 => "no plan line `1..N`".to_string(),
            n => format!("no plan line `1..N`: {n} result(s) ignored"),
        });
        results.clear();
    }
    let mut load_diags = Vec::new();
    let mut slots: Vec<Option<Case>> = vec![None; planned];
    let mut next = 1;
    for (r, diags) in results {
        let Some(slot) = r.number.checked_sub(1).and_then(|i| slots.get_mut(i)) else {
            problems.push(format!(
                "result `{}` is outside the plan 1..{planned}",
                r.line
            ));
            load_diags.extend(diags);
            continue;
        };
        if let Some(case) = slot {
            case.diags.extend(diags);
            case.result = Err(format!("reported more than once (again as `{}`)", r.line));
            continue;
        }
        let mut result = r.verdict();
        if r.number != next {
            let order = format!(
                "reported out of order: result {} came where {next} was expected",
                r.number
            );
            result = Err(match result {
                Ok(()) => order,
                Err(e) => format!("{order}; the module reported: {e}"),
            });
        }
        next = r.number + 1;
        *slot = Some(Case {
            name: r.name(),
            diags,
            result,
        });
    }
    load_diags.append(&mut pending);

    let missing = match (&done, &cap.error) {
        (Some(_), _) => "no result before the `done:` line".to_string(),
        (None, Some(e)) => format!("no result before reading /dev/kmsg failed ({e})"),
        (None, None) => "no result before the timeout".to_string(),
    };
    let mut cases: Vec<Case> = slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| slot.unwrap_or_else(|| Case::new(unnamed(i + 1), Err(missing.clone()))))
        .collect();

    let mut module_failed = reported_failed > 0;
    match done {
        None if cap.error.is_some() => problems.push("no `done:` line".into()),
        None => problems.push("no `done:` line before the timeout".into()),
        Some((line, None)) => problems.push(format!(
            "malformed `{line}`: expected `done: P passed, F failed`"
        )),
        Some((_, Some((passed, failed)))) => {
            module_failed |= failed > 0;
            if (passed, failed) != (reported_ok, reported_failed) {
                problems.push(format!(
                    "`done: {passed} passed, {failed} failed` does not match the results \
                     ({reported_ok} ok, {reported_failed} not ok)"
                ));
            }
        }
    }
    problems.extend(kmsg::read_problems(cap.overruns, cap.error.as_deref()));
    match (insmod, module_failed) {
        (Ok(()), true) => problems.insert(
            0,
            "insmod succeeded although a test failed (the module's init must then return an \
             error)"
                .into(),
        ),
        (Err(e), false) => {
            problems.insert(0, format!("insmod failed although no test failed: {e}"))
        }
        (Err(e), true) => load_diags.push(format!("insmod failed, as expected: {e}")),
        (Ok(()), false) => {}
    }
    cases.push(Case {
        name: "module_load".into(),
        diags: load_diags,
        result: verdict(problems),
    });
    cases
}

/// Reads records from `src` into a [`Capture`] until module `module`'s `done:` line has been
/// read and `insmod` has finished, until a read error (then waiting only for `insmod`), or
/// until `timeout`. `poll_insmod` returns the outcome of `insmod` once it has finished. Returns
/// the capture and the outcome of `insmod` (an error when it had not finished by the timeout).
fn collect(
    src: &mut impl RecordSource,
    module: &str,
    timeout: Duration,
    mut poll_insmod: impl FnMut() -> Option<Result<(), String>>,
) -> (Capture, Result<(), String>) {
    let deadline = Instant::now() + timeout;
    let mut cap = Capture::default();
    let mut done = false;
    let mut insmod = None;
    loop {
        while cap.error.is_none() {
            match src.next_record() {
                ReadOutcome::Record(r) => {
                    let text = record_text(&r);
                    done |= is_done(module, text);
                    cap.texts.push(text.to_string());
                }
                ReadOutcome::Empty => break,
                ReadOutcome::Overrun => cap.overruns += 1,
                ReadOutcome::Failed(e) => cap.error = Some(e),
            }
        }
        if insmod.is_none() {
            insmod = poll_insmod();
        }
        if (insmod.is_some() && (done || cap.error.is_some())) || Instant::now() >= deadline {
            break;
        }
        thread::sleep(POLL);
    }
    let insmod = insmod.unwrap_or_else(|| {
        Err(format!(
            "insmod still running after the timeout ({} s)",
            timeout.as_secs()
        ))
    });
    (cap, insmod)
}

/// Loads the module at `path` in a child process while reading `/dev/kmsg` (see [`collect`]).
fn load_and_collect(
    kmsg: &mut Kmsg,
    path: &Path,
    module: &str,
    timeout: Duration,
) -> (Capture, Result<(), String>) {
    let mut insmod = match kmod::Insmod::start(path) {
        Ok(i) => Some(i),
        Err(e) => return (Capture::default(), Err(e)),
    };
    collect(kmsg, module, timeout, || {
        let outcome = insmod.as_mut()?.poll()?;
        insmod = None;
        Some(outcome)
    })
}

/// Unloads module `module` when it is loaded (`insmod` succeeded, or `/proc/modules` lists
/// it): the `module_unload` test.
fn unload(module: &str, insmod_ok: bool) -> Case {
    if !insmod_ok && !kmod::is_loaded(module) {
        let mut case = Case::new("module_unload", Ok(()));
        case.diags
            .push("module not loaded: nothing to unload".into());
        return case;
    }
    let result = kmod::rmmod(module).and_then(|()| {
        if kmod::is_loaded(module) {
            Err("/proc/modules still lists the module after rmmod".into())
        } else {
            Ok(())
        }
    });
    Case::new("module_unload", result)
}

/// Prints `cases` as KTAP suite `suite`; returns the exit code.
fn report(suite: &str, cases: &[Case]) -> i32 {
    let mut k = Ktap::start(suite, cases.len());
    for case in cases {
        for d in &case.diags {
            k.diag(d);
        }
        k.result(&case.name, case.result.clone());
    }
    k.finish()
}

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    module: PathBuf,
    /// The name the module loads as.
    name: String,
    suite: String,
    timeout: Duration,
}

/// Parses the arguments (without the program name).
fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let (mut module, mut suite) = (None, None);
    let mut timeout = DEFAULT_TIMEOUT_S;
    let mut flags = Flags::new(argv);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--module" => module = Some(PathBuf::from(flags.value(&flag)?)),
            "--suite" => suite = Some(flags.value(&flag)?),
            "--timeout" => {
                let v = flags.value(&flag)?;
                timeout = match v.parse() {
                    Ok(s) if s > 0 => s,
                    _ => return Err(format!("'{v}' is not a timeout in seconds")),
                };
            }
            other => return Err(args::unknown(other)),
        }
    }
    let module = args::required(module, "--module")?;
    let name = kmod::module_name(&module)?;
    let suite = args::required(suite, "--suite")?;
    if suite.is_empty() || suite.contains(char::is_whitespace) {
        return Err(format!("'{suite}' is not a suite name"));
    }
    Ok(Args {
        module,
        name,
        suite,
        timeout: Duration::from_secs(timeout),
    })
}

fn main() -> ExitCode {
    let args = match guest::start("module_ktap", Some(USAGE), parse_args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let module = args.name.as_str();
    let cases = match Kmsg::open(true) {
        Ok(mut kmsg) => {
            let (cap, insmod) = load_and_collect(&mut kmsg, &args.module, module, args.timeout);
            let mut cases = evaluate(module, &cap, &insmod);
            cases.push(unload(module, insmod.is_ok()));
            cases
        }
        Err(e) => vec![
            Case::new("module_load", Err(format!("not loaded: {e}"))),
            Case::new("module_unload", Err(format!("not loaded: {e}"))),
        ],
    };
    let status = report(&args.suite, &cases);
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    const MODULE: &str = "my_test_mod";

    /// A capture of the module's lines, each prefixed as `pr_info` does.
    fn capture(lines: &[&str]) -> Capture {
        Capture {
            texts: lines.iter().map(|l| format!("{MODULE}: {l}")).collect(),
            ..Capture::default()
        }
    }

    /// The names and results of `cases`.
    fn outcomes(cases: &[Case]) -> Vec<(&str, Result<(), String>)> {
        cases
            .iter()
            .map(|c| (c.name.as_str(), c.result.clone()))
            .collect()
    }

    fn failed() -> Result<(), String> {
        Err("insmod my_test_mod.ko failed (exit status: 1): insmod: can't insert: Invalid".into())
    }

    /// The reason of the failed case `name`.
    fn reason<'a>(cases: &'a [Case], name: &str) -> &'a str {
        let case = cases.iter().find(|c| c.name == name).expect(name);
        case.result.as_ref().expect_err(name)
    }

    const ALL_PASS: [&str; 5] = [
        "1..3",
        "ok 1 alloc",
        "ok 2 free",
        "ok 3 refcount",
        "done: 3 passed, 0 failed",
    ];

    #[test]
    fn all_pass() {
        let cases = evaluate(MODULE, &capture(&ALL_PASS), &Ok(()));
        assert_eq!(
            outcomes(&cases),
            [
                ("alloc", Ok(())),
                ("free", Ok(())),
                ("refcount", Ok(())),
                ("module_load", Ok(())),
            ]
        );
        assert!(cases.iter().all(|c| c.diags.is_empty()));
    }

    #[test]
    fn a_failed_test_gives_its_reason_and_insmod_fails_as_expected() {
        let lines = [
            "1..3",
            "ok 1 alloc",
            "not ok 2 free # double free of slot 4",
            "ok 3 refcount",
            "done: 2 passed, 1 failed",
        ];
        let cases = evaluate(MODULE, &capture(&lines), &failed());
        assert_eq!(
            outcomes(&cases),
            [
                ("alloc", Ok(())),
                ("free", Err("double free of slot 4".into())),
                ("refcount", Ok(())),
                ("module_load", Ok(())),
            ]
        );
        let load = &cases[3].diags;
        assert_eq!(load.len(), 1);
        assert!(
            load[0].starts_with("insmod failed, as expected: insmod "),
            "{load:?}"
        );
        // Without a reason.
        let lines = ["1..1", "not ok 1 alloc", "done: 0 passed, 1 failed"];
        let cases = evaluate(MODULE, &capture(&lines), &failed());
        assert!(reason(&cases, "alloc").contains("without a reason"));
    }

    #[test]
    fn insmod_failing_although_every_test_passed_fails_module_load() {
        let cases = evaluate(MODULE, &capture(&ALL_PASS), &failed());
        assert!(cases[..3].iter().all(|c| c.result.is_ok()));
        let e = reason(&cases, "module_load");
        assert!(
            e.starts_with("insmod failed although no test failed: insmod my_test_mod.ko failed"),
            "{e}"
        );
    }

    #[test]
    fn insmod_succeeding_although_a_test_failed_fails_module_load() {
        let lines = [
            "1..2",
            "not ok 1 alloc # got NULL",
            "ok 2 free",
            "done: 1 passed, 1 failed",
        ];
        let cases = evaluate(MODULE, &capture(&lines), &Ok(()));
        assert_eq!(reason(&cases, "alloc"), "got NULL");
        assert!(
            reason(&cases, "module_load").starts_with("insmod succeeded although a test failed")
        );
        // The `done:` counts alone tell that a test failed.
        let lines = ["1..1", "ok 1 alloc", "done: 0 passed, 1 failed"];
        let e = evaluate(MODULE, &capture(&lines), &Ok(())).remove(1).result;
        let e = e.unwrap_err();
        assert!(e.starts_with("insmod succeeded although"), "{e}");
        assert!(
            e.contains("does not match the results (1 ok, 0 not ok)"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_done_line_fails_module_load() {
        let cases = evaluate(MODULE, &capture(&ALL_PASS[..4]), &Ok(()));
        assert!(cases[..3].iter().all(|c| c.result.is_ok()));
        assert_eq!(
            reason(&cases, "module_load"),
            "no `done:` line before the timeout"
        );
        // Nothing at all from the module.
        let cases = evaluate(MODULE, &Capture::default(), &Ok(()));
        assert_eq!(
            outcomes(&cases),
            [(
                "module_load",
                Err("no plan line `1..N`; no `done:` line before the timeout".into())
            )]
        );
        // A malformed `done:` line still ends the results.
        let mut lines = ALL_PASS.to_vec();
        lines[4] = "done: all good";
        let e = evaluate(MODULE, &capture(&lines), &Ok(())).remove(3).result;
        assert_eq!(
            e,
            Err("malformed `done: all good`: expected `done: P passed, F failed`".into())
        );
    }

    #[test]
    fn tests_without_a_result_fail() {
        let lines = [
            "1..4",
            "ok 1 alloc",
            "ok 2 free",
            "done: 2 passed, 0 failed",
        ];
        let cases = evaluate(MODULE, &capture(&lines), &Ok(()));
        assert_eq!(
            outcomes(&cases),
            [
                ("alloc", Ok(())),
                ("free", Ok(())),
                ("test_3", Err("no result before the `done:` line".into())),
                ("test_4", Err("no result before the `done:` line".into())),
                ("module_load", Ok(())),
            ]
        );
        // Before the timeout.
        let cases = evaluate(MODULE, &capture(&lines[..3]), &Ok(()));
        assert_eq!(reason(&cases, "test_3"), "no result before the timeout");
        // Results after the `done:` line do not count.
        let lines = [
            "1..2",
            "ok 1 alloc",
            "done: 1 passed, 0 failed",
            "ok 2 free",
        ];
        let cases = evaluate(MODULE, &capture(&lines), &Ok(()));
        assert_eq!(
            reason(&cases, "test_2"),
            "no result before the `done:` line"
        );
    }

    #[test]
    fn wrong_numbers_fail() {
        // Out of order: 3 before 2.
        let lines = [
            "1..3",
            "ok 1 a",
            "ok 3 c",
            "not ok 2 b # oops",
            "done: 2 passed, 1 failed",
        ];
        let cases = evaluate(MODULE, &capture(&lines), &failed());
        assert_eq!(cases[0].result, Ok(()));
        assert_eq!(
            reason(&cases, "b"),
            "reported out of order: result 2 came where 4 was expected; the module reported: oops"
        );
        assert_eq!(
            reason(&cases, "c"),
            "reported out of order: result 3 came where 2 was expected"
        );
        assert_eq!(cases[3].result, Ok(()), "module_load");
        // Counted from 0: 0 is outside the plan, 3 never reported.
        let lines = [
            "1..3",
            "ok 0 a",
            "ok 1 b",
            "ok 2 c",
            "done: 3 passed, 0 failed",
        ];
        let cases = evaluate(MODULE, &capture(&lines), &Ok(()));
        assert_eq!(
            outcomes(&cases)[..3],
            [
                ("b", Ok(())),
                ("c", Ok(())),
                ("test_3", Err("no result before the `done:` line".into())),
            ]
        );
        let e = reason(&cases, "module_load");
        assert!(
            e.contains("result `ok 0 a` is outside the plan 1..3"),
            "{e}"
        );
        // A number past the plan, and a test reported twice.
        let lines = [
            "1..2",
            "ok 1 a",
            "ok 1 a",
            "ok 2 b",
            "ok 3 c",
            "done: 4 passed, 0 failed",
        ];
        let cases = evaluate(MODULE, &capture(&lines), &Ok(()));
        assert_eq!(
            reason(&cases, "a"),
            "reported more than once (again as `ok 1 a`)"
        );
        assert_eq!(cases[1].result, Ok(()));
        assert!(reason(&cases, "module_load").contains("`ok 3 c` is outside the plan 1..2"));
    }

    #[test]
    fn a_missing_or_late_plan_fails_module_load() {
        let lines = ["ok 1 a", "done: 1 passed, 0 failed"];
        let cases = evaluate(MODULE, &capture(&lines), &Ok(()));
        assert_eq!(
            outcomes(&cases),
            [(
                "module_load",
                Err("no plan line `1..N`: 1 result(s) ignored".into())
            )]
        );
        let lines = ["ok 1 a", "1..1", "done: 1 passed, 0 failed"];
        let cases = evaluate(MODULE, &capture(&lines), &Ok(()));
        assert_eq!(cases[0].result, Ok(()));
        assert_eq!(
            reason(&cases, "module_load"),
            "the plan `1..1` came after the first result"
        );
    }

    #[test]
    fn records_of_other_modules_are_ignored() {
        let texts = [
            "other_mod: 1..1",
            "other_mod: not ok 1 alloc # broken",
            "my_test_mod: 1..2",
            "my_test_mod_2: ok 1 x",
            "my_test_mod: ok 1 alloc",
            "random: crng init done",
            "xmy_test_mod: not ok 2 free",
            "my_test_mod ok 2 free",
            "my_test_mod: hello from init",
            "my_test_mod: ok 2 free",
            "other_mod: done: 0 passed, 1 failed",
            "my_test_mod: done: 2 passed, 0 failed",
        ];
        let cap = Capture {
            texts: texts.iter().map(ToString::to_string).collect(),
            ..Capture::default()
        };
        let cases = evaluate(MODULE, &cap, &Ok(()));
        assert_eq!(
            outcomes(&cases),
            [("alloc", Ok(())), ("free", Ok(())), ("module_load", Ok(()))]
        );
    }

    #[test]
    fn diagnostics_go_before_the_next_result() {
        let lines = [
            "# starting",
            "1..2",
            "# alloc: 16 objects",
            "ok 1 alloc",
            "#no space: not a diagnostic",
            "# free: slot 3",
            "not ok 2 free # slot 3 freed twice",
            "# cleanup",
            "done: 1 passed, 1 failed",
        ];
        let cases = evaluate(MODULE, &capture(&lines), &failed());
        assert_eq!(cases[0].diags, ["starting", "alloc: 16 objects"]);
        assert_eq!(cases[1].diags, ["free: slot 3"]);
        assert_eq!(cases[2].diags[0], "cleanup");
        assert!(cases[2].diags[1].starts_with("insmod failed, as expected"));
        assert!(cases.iter().all(|c| c.name != "#no"));
        assert_eq!(cases[2].result, Ok(()));
    }

    #[test]
    fn an_overrun_or_a_read_error_fails_module_load() {
        let mut cap = capture(&ALL_PASS);
        cap.overruns = 2;
        let cases = evaluate(MODULE, &cap, &Ok(()));
        assert_eq!(
            reason(&cases, "module_load"),
            "/dev/kmsg overrun (EPIPE) 2 time(s): records were lost"
        );
        let mut cap = capture(&ALL_PASS[..2]);
        cap.error = Some("Invalid argument".into());
        let cases = evaluate(MODULE, &cap, &Ok(()));
        assert_eq!(
            reason(&cases, "test_2"),
            "no result before reading /dev/kmsg failed (Invalid argument)"
        );
        assert_eq!(
            reason(&cases, "module_load"),
            "no `done:` line; reading /dev/kmsg: Invalid argument"
        );
    }

    #[test]
    fn lines_parse() {
        assert_eq!(parse_line("1..12"), Line::Plan(12));
        assert_eq!(parse_line("1..0"), Line::Plan(0));
        assert_eq!(parse_line("1..x"), Line::Other);
        assert_eq!(parse_line("1..+3"), Line::Other);
        assert_eq!(
            parse_line("done: 3 passed, 1 failed"),
            Line::Done(Some((3, 1)))
        );
        assert_eq!(
            parse_line("done:3 passed, 1 failed"),
            Line::Done(Some((3, 1)))
        );
        assert_eq!(parse_line("done: 3 passed"), Line::Done(None));
        assert_eq!(parse_line("# hi # there"), Line::Diag("hi # there"));
        let r = |line| match parse_line(line) {
            Line::Result(r) => Some((r.ok, r.number, r.name, r.reason)),
            _ => None,
        };
        assert_eq!(r("ok 1 a b"), Some((true, 1, "a b", None)));
        assert_eq!(
            r("not ok 2 b # why # more"),
            Some((false, 2, "b", Some("why # more")))
        );
        assert_eq!(r("not ok 3 # why"), Some((false, 3, "", Some("why"))));
        assert_eq!(r("not ok 4 c # "), Some((false, 4, "c", None)));
        assert_eq!(r("ok 5"), Some((true, 5, "", None)));
        assert_eq!(r("ok x a"), None);
        assert_eq!(r("ok -1 a"), None);
        assert_eq!(r("okay 1 a"), None);
        assert_eq!(module_line(MODULE, "my_test_mod: ok 1 a  "), Some("ok 1 a"));
        assert_eq!(module_line(MODULE, "my_test_mod:ok 1 a"), None);
        // An unnamed test reports as `test_K`.
        let lines = ["1..1", "ok 1", "done: 1 passed, 0 failed"];
        let cases = evaluate(MODULE, &capture(&lines), &Ok(()));
        assert_eq!(cases[0].name, "test_1");
    }

    /// A `/dev/kmsg` record of `text`.
    fn rec(seq: u64, text: &str) -> ReadOutcome {
        ReadOutcome::Record(format!("6,{seq},{},-;{text}\n", seq * 1000))
    }

    #[test]
    fn collecting_stops_at_done_once_insmod_returned() {
        let mut src = VecDeque::from([
            rec(1, "my_test_mod: 1..1"),
            ReadOutcome::Overrun,
            rec(2, "my_test_mod: ok 1 a"),
            rec(3, "my_test_mod: done: 1 passed, 0 failed"),
            rec(4, "my_test_mod: after done"),
        ]);
        let mut polls = 0;
        let (cap, insmod) = collect(&mut src, MODULE, Duration::from_secs(10), || {
            polls += 1;
            (polls >= 3).then_some(Ok(()))
        });
        assert_eq!(insmod, Ok(()));
        assert_eq!(polls, 3, "waits for insmod after the done line");
        assert_eq!(cap.overruns, 1);
        assert_eq!(cap.texts.len(), 4);
        assert_eq!(cap.texts[1], "my_test_mod: ok 1 a");
        assert!(src.is_empty());
    }

    #[test]
    fn collecting_stops_at_the_timeout_or_an_error() {
        let mut src = VecDeque::from([rec(1, "my_test_mod: 1..1")]);
        let t0 = Instant::now();
        let (cap, insmod) = collect(&mut src, MODULE, Duration::from_millis(50), || None);
        assert!(t0.elapsed() >= Duration::from_millis(50));
        assert_eq!(cap.texts, ["my_test_mod: 1..1"]);
        assert_eq!(
            insmod,
            Err("insmod still running after the timeout (0 s)".into())
        );
        // A read error stops the reading; insmod is still waited for.
        let mut src = VecDeque::from([
            ReadOutcome::Failed("Invalid argument".into()),
            rec(1, "my_test_mod: 1..1"),
        ]);
        let mut polls = 0;
        let (cap, insmod) = collect(&mut src, MODULE, Duration::from_secs(10), || {
            polls += 1;
            (polls >= 2).then(failed)
        });
        assert_eq!(cap.error.as_deref(), Some("Invalid argument"));
        assert!(cap.texts.is_empty());
        assert_eq!(insmod, failed());
        assert_eq!(src.len(), 1);
    }

    #[test]
    fn arguments_parse() {
        let parse = |v: &[&str]| parse_args(v.iter().map(ToString::to_string));
        let a = parse(&["--module", "/lib/my-test_mod.ko", "--suite", "s"]).unwrap();
        assert_eq!(
            (a.module, a.name.as_str(), a.suite.as_str(), a.timeout),
            (
                PathBuf::from("/lib/my-test_mod.ko"),
                "my_test_mod",
                "s",
                Duration::from_secs(60)
            )
        );
        let a = parse(&["--suite", "s", "--timeout", "5", "--module", "m.ko"]).unwrap();
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert!(parse(&["--suite", "s"]).is_err());
        assert!(parse(&["--module", "m.ko"]).is_err());
        assert!(parse(&["--module", "m.o", "--suite", "s"]).is_err());
        assert!(parse(&["--module", "m.ko", "--suite", ""]).is_err());
        assert!(parse(&["--module", "m.ko", "--suite", "s", "--timeout", "0"]).is_err());
        assert!(parse(&["--module", "m.ko", "--suite", "s", "--timeout", "x"]).is_err());
        assert!(parse(&["--module", "m.ko", "--suite"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn the_suite_has_the_planned_tests_and_two_more() {
        let mut cases = evaluate(MODULE, &capture(&ALL_PASS), &Ok(()));
        cases.push(Case::new("module_unload", Ok(())));
        assert_eq!(cases.len(), 3 + 2);
        assert_eq!(report("s", &cases), 0);
        cases[4].result = Err("rmmod my_test_mod failed".into());
        assert_eq!(report("s", &cases), 1);
    }
}
