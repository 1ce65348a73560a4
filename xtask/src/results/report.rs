//! Results of the tool's test suites (`host`, `series`, `rust-pci`, ...): the summary table, the
//! closing `N passed, N failed[, N skipped]` line and `summary.json`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::results::ktap::{self, Outcome};

/// The result of one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    /// Unique within its suite, e.g. `rust_doctests_kernel.rust_doctest_kernel_str_rs_0`.
    pub name: String,
    /// Pass, fail or skip.
    pub outcome: Outcome,
    /// Why it failed or was skipped (may span lines); empty for a pass.
    pub detail: String,
    /// The log it came from, where it has one of its own (a boot's console).
    pub log: Option<PathBuf>,
}

impl TestResult {
    /// A passed test.
    pub fn pass(name: impl Into<String>) -> Self {
        Self::new(name, Outcome::Pass, "")
    }

    /// A failed test with the reason.
    pub fn fail(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(name, Outcome::Fail, detail)
    }

    /// A result with any outcome.
    pub fn new(name: impl Into<String>, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            outcome,
            detail: detail.into(),
            log: None,
        }
    }
}

/// A test that passes when `problems` is empty and fails listing them otherwise.
pub fn check(name: impl Into<String>, problems: Vec<String>) -> TestResult {
    if problems.is_empty() {
        TestResult::pass(name)
    } else {
        TestResult::fail(name, problems.join("\n"))
    }
}

/// The results of one suite of the tool (`host`, `series`, `rust-pci`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuiteResult {
    /// The suite's name; the key in `summary.json`.
    pub name: String,
    /// Its tests, in the order they ran.
    pub tests: Vec<TestResult>,
    /// Remarks for the reader (e.g. why the suite was cut short), printed under the table.
    pub notes: Vec<String>,
    /// How long the suite took, when measured.
    pub duration: Option<Duration>,
}

impl SuiteResult {
    /// An empty suite.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// A suite of the KTAP results and crash lines of a console log (see [`ktap_tests`]).
    pub fn from_console(name: impl Into<String>, log: &str) -> Self {
        Self {
            tests: ktap_tests(&ktap::parse(log), &ktap::find_crashes(log)),
            ..Self::new(name)
        }
    }

    /// The number of its tests with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.tests.iter().filter(|t| t.outcome == outcome).count()
    }
}

/// Turns parsed KTAP and console crash lines into tests, so that a broken boot can never look
/// green.
///
/// - every case becomes `suite.case` with its outcome and detail; a case that has a nested
///   subtest (a parameterised test) is represented by that subtest's cases instead, unless it
///   failed while none of them did;
/// - a suite whose status is fail but none of whose cases failed adds a failed test `suite`;
/// - each parse error adds a failed test `ktap-error-N`, each crash line `console-crash-N`.
pub fn ktap_tests(parsed: &ktap::Parsed, crashes: &[String]) -> Vec<TestResult> {
    let suites: HashSet<&str> = parsed.suites.iter().map(|s| s.name.as_str()).collect();
    let has_failure = |name: &str| {
        parsed
            .suites
            .iter()
            .any(|s| s.name == name && s.tests.iter().any(|c| c.outcome == Outcome::Fail))
    };
    let mut tests = Vec::new();
    for suite in &parsed.suites {
        for case in &suite.tests {
            let name = format!("{}.{}", suite.name, case.name);
            if suites.contains(name.as_str())
                && (case.outcome != Outcome::Fail || has_failure(&name))
            {
                continue;
            }
            tests.push(TestResult::new(name, case.outcome, case.detail.join("\n")));
        }
        if suite.status == Outcome::Fail && !suite.tests.iter().any(|c| c.outcome == Outcome::Fail)
        {
            tests.push(TestResult::fail(
                &suite.name,
                "the suite failed although none of its tests did (see the KTAP errors)",
            ));
        }
    }
    for (i, e) in parsed.errors.iter().enumerate() {
        tests.push(TestResult::fail(format!("ktap-error-{}", i + 1), e));
    }
    for (i, c) in crashes.iter().enumerate() {
        tests.push(TestResult::fail(format!("console-crash-{}", i + 1), c));
    }
    tests
}

/// All suites of one run of the tool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The suites in the order they ran.
    pub suites: Vec<SuiteResult>,
}

/// Most detail lines shown per failure in the table (the JSON has them all).
const MAX_DETAIL_LINES: usize = 30;

impl Report {
    /// The number of tests with `outcome` over all suites.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.suites.iter().map(|s| s.count(outcome)).sum()
    }

    /// Whether no test failed.
    pub fn success(&self) -> bool {
        self.count(Outcome::Fail) == 0
    }

    /// `N passed, N failed`, followed by `, N skipped` when any test was skipped.
    pub fn final_line(&self) -> String {
        let mut line = format!(
            "{} passed, {} failed",
            self.count(Outcome::Pass),
            self.count(Outcome::Fail)
        );
        match self.count(Outcome::Skip) {
            0 => {}
            n => write!(line, ", {n} skipped").expect("writing to a String"),
        }
        line
    }

    /// The summary table (one row per suite, a total row), then each failed test with its
    /// detail, then the suites' notes.
    pub fn render_table(&self) -> String {
        let timed = self.suites.iter().any(|s| s.duration.is_some());
        let width = self
            .suites
            .iter()
            .map(|s| s.name.len())
            .chain(["suite".len(), "total".len()])
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        let mut row = |name: &str, counts: [usize; 3], time: Option<Duration>| {
            let [p, f, s] = counts;
            let _ = write!(out, "{name:<width$}  {p:>6}  {f:>6}  {s:>7}");
            if let Some(t) = time {
                let _ = write!(out, "  {:>8.1}s", t.as_secs_f64());
            }
            out.push('\n');
        };
        let mut header = format!("{:<width$}  passed  failed  skipped", "suite");
        if timed {
            header.push_str("       time");
        }
        let mut text = header;
        text.push('\n');
        for s in &self.suites {
            let counts = [Outcome::Pass, Outcome::Fail, Outcome::Skip].map(|o| s.count(o));
            row(&s.name, counts, s.duration);
        }
        let total_time = timed.then(|| self.suites.iter().filter_map(|s| s.duration).sum());
        let counts = [Outcome::Pass, Outcome::Fail, Outcome::Skip].map(|o| self.count(o));
        row("total", counts, total_time);
        text.push_str(&out);
        let failed = self
            .suites
            .iter()
            .flat_map(|s| s.tests.iter().map(move |t| (s, t)))
            .filter(|(_, t)| t.outcome == Outcome::Fail);
        for (i, (s, t)) in failed.enumerate() {
            if i == 0 {
                text.push_str("\nfailed:\n");
            }
            let _ = writeln!(text, "  {}: {}", s.name, t.name);
            let lines: Vec<&str> = t.detail.lines().collect();
            for l in lines.iter().take(MAX_DETAIL_LINES) {
                let _ = writeln!(text, "      {l}");
            }
            if lines.len() > MAX_DETAIL_LINES {
                let more = lines.len() - MAX_DETAIL_LINES;
                let _ = writeln!(text, "      ... {more} more lines in summary.json");
            }
        }
        let notes = self
            .suites
            .iter()
            .flat_map(|s| s.notes.iter().map(move |n| (s, n)));
        for (i, (s, n)) in notes.enumerate() {
            if i == 0 {
                text.push_str("\nnotes:\n");
            }
            let _ = writeln!(text, "  {}: {n}", s.name);
        }
        text
    }

    /// Prints [`Report::render_table`] to stdout.
    pub fn print_table(&self) {
        print!("{}", self.render_table());
    }

    /// The summary as pretty JSON with a final newline:
    /// `{"suites": {NAME: {"passed", "failed", "skipped", ["duration_s",] "notes", "tests":
    /// [{"name", "outcome", "detail"}]}}}`. Suites keep their run order and keys their listed
    /// order, so equal reports give equal bytes. A repeated suite name gets ` (2)`, ` (3)`, ...
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(&Summary {
            suites: Suites(&self.suites),
        })
        .expect("summary serialises");
        json.push('\n');
        json
    }

    /// Writes [`Report::to_json`] to `path`, creating its parent directories.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_json())
    }
}

#[derive(Serialize)]
struct Summary<'a> {
    suites: Suites<'a>,
}

/// The suites as a JSON object in run order.
struct Suites<'a>(&'a [SuiteResult]);

impl Serialize for Suites<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        let mut seen = HashSet::new();
        for s in self.0 {
            let mut key = s.name.clone();
            let mut n = 1;
            while !seen.insert(key.clone()) {
                n += 1;
                key = format!("{} ({n})", s.name);
            }
            map.serialize_entry(
                &key,
                &SuiteJson {
                    passed: s.count(Outcome::Pass),
                    failed: s.count(Outcome::Fail),
                    skipped: s.count(Outcome::Skip),
                    duration_s: s.duration.map(|d| d.as_millis() as f64 / 1000.0),
                    notes: &s.notes,
                    tests: s
                        .tests
                        .iter()
                        .map(|t| TestJson {
                            name: &t.name,
                            outcome: t.outcome.as_str(),
                            detail: &t.detail,
                        })
                        .collect(),
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct SuiteJson<'a> {
    passed: usize,
    failed: usize,
    skipped: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_s: Option<f64>,
    notes: &'a [String],
    tests: Vec<TestJson<'a>>,
}

#[derive(Serialize)]
struct TestJson<'a> {
    name: &'a str,
    outcome: &'static str,
    detail: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut host = SuiteResult::new("host");
        host.tests = vec![
            TestResult::pass("xtask::a"),
            TestResult::fail("xtask::b", "left: 1\nright: 2"),
            TestResult::new("xtask::c", Outcome::Skip, "needs kvm"),
        ];
        host.duration = Some(Duration::from_millis(12_345));
        let mut series = SuiteResult::new("series");
        series.tests = vec![TestResult::pass("applies")];
        series.notes = vec!["checkpatch not installed".to_string()];
        Report {
            suites: vec![host, series],
        }
    }

    #[test]
    fn final_line() {
        let mut r = sample();
        assert_eq!(r.final_line(), "2 passed, 1 failed, 1 skipped");
        assert!(!r.success());
        r.suites[0].tests.truncate(1);
        assert_eq!(r.final_line(), "2 passed, 0 failed");
        assert!(r.success());
        assert_eq!(Report::default().final_line(), "0 passed, 0 failed");
    }

    #[test]
    fn json_shape_and_order() {
        let json = sample().to_json();
        let expected = r#"{
  "suites": {
    "host": {
      "passed": 1,
      "failed": 1,
      "skipped": 1,
      "duration_s": 12.345,
      "notes": [],
      "tests": [
        {
          "name": "xtask::a",
          "outcome": "pass",
          "detail": ""
        },
        {
          "name": "xtask::b",
          "outcome": "fail",
          "detail": "left: 1\nright: 2"
        },
        {
          "name": "xtask::c",
          "outcome": "skip",
          "detail": "needs kvm"
        }
      ]
    },
    "series": {
      "passed": 1,
      "failed": 0,
      "skipped": 0,
      "notes": [
        "checkpatch not installed"
      ],
      "tests": [
        {
          "name": "applies",
          "outcome": "pass",
          "detail": ""
        }
      ]
    }
  }
}
"#;
        assert_eq!(json, expected);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["suites"]["host"]["tests"][1]["outcome"], "fail");
    }

    #[test]
    fn repeated_suite_names_stay_apart() {
        let r = Report {
            suites: vec![SuiteResult::new("boot"), SuiteResult::new("boot")],
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let keys: Vec<&String> = v["suites"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["boot", "boot (2)"]);
    }

    #[test]
    fn write_json_creates_dirs() {
        let dir = std::env::temp_dir().join(format!("nova-report-{}", std::process::id()));
        let path = dir.join("results/summary.json");
        sample().write_json(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), sample().to_json());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn table_lists_failures_and_notes() {
        let t = sample().render_table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "suite   passed  failed  skipped       time");
        assert_eq!(lines[1], "host         1       1        1      12.3s");
        assert_eq!(lines[2], "series       1       0        0");
        assert_eq!(lines[3], "total        2       1        1      12.3s");
        assert!(t.contains("\nfailed:\n  host: xtask::b\n      left: 1\n      right: 2\n"));
        assert!(t.contains("\nnotes:\n  series: checkpatch not installed\n"));
    }

    fn counts(s: &SuiteResult) -> [usize; 3] {
        [Outcome::Pass, Outcome::Fail, Outcome::Skip].map(|o| s.count(o))
    }

    #[test]
    fn ktap_all_pass_is_green() {
        let s = SuiteResult::from_console(
            "boot-base",
            include_str!("../../tests/data/ktap/all_pass.log"),
        );
        assert_eq!(counts(&s), [8, 0, 0]);
        assert_eq!(
            s.tests[0].name,
            "rust_doctests_kernel.rust_doctest_kernel_alloc_kbox_rs_0"
        );
        assert_eq!(
            s.tests[7].name,
            "kunit_executor_test.filter_suites_to_empty_test"
        );
    }

    #[test]
    fn ktap_parameterised_counts_leaves() {
        let s = SuiteResult::from_console("boot", include_str!("../../tests/data/ktap/params.log"));
        assert_eq!(counts(&s), [7, 1, 2]);
        let failed: Vec<&str> = s
            .tests
            .iter()
            .filter(|t| t.outcome == Outcome::Fail)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(
            failed,
            ["drm_rect.drm_test_rect_intersect.top-right x bottom-left"]
        );
        assert!(s
            .tests
            .iter()
            .all(|t| t.name != "example.example_params_test"));
    }

    #[test]
    fn ktap_crash_is_never_green() {
        let s = SuiteResult::from_console("boot", include_str!("../../tests/data/ktap/crash.log"));
        // 3 passes; 2 unreported tests, 2 parse errors and 5 crash lines fail.
        assert_eq!(counts(&s), [3, 9, 0]);
        let names: Vec<&str> = s.tests[3..].iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rust_doctests_kernel.#4 (no result)",
                "rust_doctests_kernel.#5 (no result)",
                "ktap-error-1",
                "ktap-error-2",
                "console-crash-1",
                "console-crash-2",
                "console-crash-3",
                "console-crash-4",
                "console-crash-5",
            ]
        );
        assert_eq!(
            s.tests[7].detail,
            "[    0.904400] BUG: kernel NULL pointer dereference, address: 0000000000000008"
        );
    }

    #[test]
    fn ktap_warning_fails_an_otherwise_green_log() {
        let s = SuiteResult::from_console(
            "boot",
            include_str!("../../tests/data/ktap/interleaved.log"),
        );
        assert_eq!(counts(&s), [2, 3, 0]);
        let empty = SuiteResult::from_console("boot", "");
        assert_eq!(counts(&empty), [0, 1, 0]);
        assert_eq!(
            empty.tests[0].detail,
            "no KTAP document found in the console log"
        );
    }

    #[test]
    fn ktap_suite_failing_without_failed_cases() {
        let s = SuiteResult::from_console(
            "guest",
            include_str!("../../tests/data/ktap/missing_plan.log"),
        );
        // 3 passes; suite nova_uapi (no plan) fails, plus the two missing-plan errors.
        assert_eq!(counts(&s), [3, 3, 0]);
        assert_eq!(s.tests[2].name, "nova_uapi");
    }
}
