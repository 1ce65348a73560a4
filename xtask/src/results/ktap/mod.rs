//! KTAP / KUnit results from a Linux serial console log.
//!
//! The input is a whole console log as QEMU's serial port records it: lines may carry a printk
//! timestamp (`[    1.234567] `, optionally followed by a `[    T1]` caller id), may end in
//! `\r\n`, and may be interleaved with unrelated kernel messages. The log may hold several KTAP
//! documents: the boot-time KUnit run and any later documents printed by guest test programs.
//!
//! Structure is recognised by indentation, as KUnit prints it in Linux 6.12:
//!
//! ```text
//! KTAP version 1                      <- document (column 0)
//! 1..2                                <- plan of the document: number of suites
//!     KTAP version 1                  <- suite (4 spaces)
//!     # Subtest: rust_doctests_kernel
//!     1..2
//!     ok 1 rust_doctest_kernel_alloc_kbox_rs_0
//!         KTAP version 1              <- parameterised test (8 spaces), plan optional
//!         # Subtest: example_params_test
//!         ok 1 example value 1
//!     ok 2 example_params_test
//! ok 1 rust_doctests_kernel
//! ```
//!
//! Tabs indent one level each (older KUnit, and kunit.py's test data); a document whose header
//! line is indented outside any document has that indentation removed from all its lines.
//!
//! Every subtest becomes a [`Suite`]; nested subtests are flattened with `parent.child` names
//! (the parameterised test above is suite `rust_doctests_kernel.example_params_test`, and it is
//! also case `example_params_test` of its parent). Result lines at column 0 without a subtest
//! (a flat document) become cases of a suite named `documentN` (N counts documents from 1).
//!
//! Failure details follow the KUnit convention: the lines printed before a `not ok` line since the
//! previous result (`# test: EXPECTATION FAILED at ...` and its continuation lines) belong to it;
//! lines printed after it belong to it when they start with `# NAME:` (`NAME.` or `NAME `), or
//! when they end the suite. KUnit's summary and attribute lines (`# Totals:`, `# suite: pass:..`,
//! `# speed:`, `# module:`) are dropped.
//!
//! Nothing incomplete is reported as passing: a plan that is missing (required for documents and
//! suites, optional for parameterised tests), a plan whose count is not met, a subtest without a
//! result line, a document cut short by `Kernel panic - not syncing`, by a new document or by the
//! end of the log all produce entries in [`Parsed::errors`]; the tests that never reported are
//! added as failed cases named `#N (no result)` and their suite fails. A document or subtest
//! that ran no tests is an error too, as kunit.py has it (`NO_TESTS`).
//!
//! The parser agrees with kunit.py on the kernel's own test data (`tools/testing/kunit/
//! test_data/`, checked by a host test) except where it is stricter on purpose: a missing plan
//! is an error here, since a console cut between two suites would otherwise pass.

mod lines;
mod parser;
#[cfg(test)]
mod tests;

use lines::strip_console_prefix;
use parser::Parser;

/// The outcome of one test case (or the status of a suite).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// `ok` without a SKIP directive.
    Pass,
    /// `not ok`, or a test that never reported a result.
    Fail,
    /// A result line with a `# SKIP` directive.
    Skip,
}

impl Outcome {
    /// The lower-case name used in reports: `pass`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
        }
    }
}

/// One test case of a suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The test name as printed on its result line (SKIP directive removed).
    pub name: String,
    /// Pass, fail or skip.
    pub outcome: Outcome,
    /// For a failure: its diagnostic lines (indentation of the suite removed). For a skip: the
    /// reason, if one was given. Empty for a pass.
    pub detail: Vec<String>,
}

/// One KTAP subtest (a KUnit suite, or a parameterised test flattened into `parent.child`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suite {
    /// Full name: `suite`, or `suite.test` for a nested subtest.
    pub name: String,
    /// The suite's own result, made `Fail` when it is incomplete, inconsistent or has a failure.
    pub status: Outcome,
    /// Its cases in the order printed, followed by failed `#N (no result)` cases for the tests
    /// the plan promised but that never reported.
    pub tests: Vec<Case>,
    /// The count of its `1..N` plan line, if it had one.
    pub plan: Option<usize>,
}

/// Everything [`parse`] found in a console log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// All suites of all documents, in the order they started.
    pub suites: Vec<Suite>,
    /// Structural problems (missing plan, count mismatch, crash, no KTAP at all), one line each,
    /// prefixed with the console line number where they were noticed.
    pub errors: Vec<String>,
}

/// Substrings that mark a console line as a kernel crash or warning (see [`find_crashes`]).
///
/// The brief's list (`Oops`, `BUG:`, `WARNING:`, `KASAN`, `kmemleak`, `Kernel panic`,
/// `general protection fault`, `Call Trace:`) plus three that are always kernel bugs and would
/// otherwise slip through: `kernel BUG at` (BUG_ON), `UBSAN:` and `Unable to handle kernel`
/// (arm64 faults). RCU stalls and hung-task reports are left out on purpose: under TCG they
/// depend on host load.
pub const CRASH_PATTERNS: &[&str] = &[
    "Oops",
    "BUG:",
    "WARNING:",
    "KASAN",
    "kmemleak",
    "Kernel panic",
    "general protection fault",
    "Call Trace:",
    "kernel BUG at",
    "UBSAN:",
    "Unable to handle kernel",
];

/// kmemleak lines that report nothing: printed on every boot with `CONFIG_DEBUG_KMEMLEAK`, and
/// when fault injection fails one of its own allocations for a scan area (it then scans the
/// whole object, missing nothing).
const BENIGN_KMEMLEAK: &[&str] = &[
    "Kernel memory leak detector initialized",
    "Automatic memory scanning thread started",
    "Cannot allocate a scan area, scanning the full object",
];

/// The first lines of the kernel's report of a failed allocation (`warn_alloc()`), which ends
/// with the stack dump's `</TASK>`: the kernel working as meant when an allocation fails (as
/// fault injection makes them), not a bug.
const ALLOCATION_FAILURE: &[&str] = &[
    ": vmalloc error: size ",
    ": page allocation failure: order:",
];

/// Returns every console line that reports a kernel crash or warning, in order, with `\r` and
/// surrounding whitespace removed (the printk timestamp is kept).
///
/// A line counts when it contains one of [`CRASH_PATTERNS`]. Three kinds of line are exempt
/// because they appear in healthy boots: the `Command line:` / `Kernel command line:` echoes
/// (they may say `kmemleak=on`), kmemleak's messages that report nothing ([`BENIGN_KMEMLEAK`]),
/// and the report of a failed allocation, from its first line ([`ALLOCATION_FAILURE`]) to the
/// end of its stack dump.
pub fn find_crashes(log: &str) -> Vec<String> {
    let mut in_allocation_failure = false;
    log.lines()
        .filter(|raw| {
            let msg = strip_console_prefix(raw).trim_start();
            if ALLOCATION_FAILURE.iter().any(|a| msg.contains(a)) {
                in_allocation_failure = true;
            }
            if in_allocation_failure {
                in_allocation_failure = msg != "</TASK>";
                return false;
            }
            if msg.starts_with("Kernel command line:") || msg.starts_with("Command line:") {
                return false;
            }
            CRASH_PATTERNS.iter().any(|p| {
                msg.contains(p)
                    && !(*p == "kmemleak" && BENIGN_KMEMLEAK.iter().any(|b| msg.contains(b)))
            })
        })
        .map(|raw| raw.trim().to_string())
        .collect()
}

/// Parses every KTAP document in a console log. See the module docs for the rules.
///
/// A log with no `KTAP version` line at all yields an error, so a boot that died before KUnit
/// ran cannot look like an empty success.
pub fn parse(log: &str) -> Parsed {
    Parser::run(log)
}
