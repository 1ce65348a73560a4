//! `cargo xtask test --junit FILE`: the results as JUnit XML, the form GitLab, Jenkins and
//! GitHub render (written with `quick-junit`, the nextest family's writer).
//!
//! One `<testsuite>` per suite (its duration when measured), one `<testcase>` per test with
//! the suite as its class name; a failure carries the first line of its detail as the message
//! and the whole detail as the text, a skip its reason; a test that came from a boot names the
//! boot's console in its `<system-out>`.

use crate::results::ktap::Outcome;
use crate::results::report::Report;
use anyhow::Result;
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;

/// The JUnit document for `report`.
pub fn document(report: &Report) -> Result<String> {
    let mut out = quick_junit::Report::new("nova-xtask");
    for s in &report.suites {
        let mut suite = TestSuite::new(s.name.as_str());
        if let Some(d) = s.duration {
            suite.set_time(d);
        }
        for t in &s.tests {
            let status = match t.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail => {
                    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    st.set_message(t.detail.lines().next().unwrap_or("failed"));
                    st.set_description(t.detail.as_str());
                    st
                }
                Outcome::Skip => {
                    let mut st = TestCaseStatus::skipped();
                    if !t.detail.is_empty() {
                        st.set_message(t.detail.as_str());
                    }
                    st
                }
            };
            let mut case = TestCase::new(t.name.as_str(), status);
            case.set_classname(s.name.as_str());
            if let Some(log) = &t.log {
                case.set_system_out(format!("console: {}", log.display()));
            }
            suite.add_test_case(case);
        }
        out.add_test_suite(suite);
    }
    Ok(out.to_string()?)
}

/// Writes the JUnit document for `report` to `path`.
pub fn write(report: &Report, path: &Path) -> Result<()> {
    crate::util::write_atomic(path, document(report)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::report::{SuiteResult, TestResult};

    #[test]
    fn suites_become_testsuites_with_failures_and_skips() {
        let mut s = SuiteResult::new("rust-pci");
        let mut boot = TestResult::pass("rust_doctests_kernel.a");
        boot.log = Some("/b/run/rust-pci/console.log".into());
        s.tests = vec![
            boot,
            TestResult::fail("rust-pci.codegen", "Rust has 9 instructions, C 7\nlisting"),
            TestResult::new("rust_pci_cycles.x", Outcome::Skip, "no device <edu>"),
        ];
        s.duration = Some(std::time::Duration::from_millis(1500));
        let xml = document(&Report { suites: vec![s] }).unwrap();
        for want in [
            r#"<testsuites name="nova-xtask" tests="3" skipped="1" failures="1" errors="0">"#,
            r#"<testsuite name="rust-pci" tests="3" skipped="1" errors="0" failures="1" time="1.500">"#,
            r#"<testcase name="rust-pci.codegen" classname="rust-pci">"#,
            "<failure message=\"Rust has 9 instructions, C 7\">Rust has 9 instructions, C 7\nlisting</failure>",
            r#"<skipped message="no device &lt;edu&gt;"/>"#,
            "<system-out>console: /b/run/rust-pci/console.log</system-out>",
        ] {
            assert!(xml.contains(want), "no {want} in:\n{xml}");
        }
    }
}
