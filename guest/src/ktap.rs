//! KTAP output on stdout: one suite per guest program ([`Ktap`]), optionally with its tests
//! named up front ([`Planned`]), and the result of a test from what its checks found
//! ([`verdict`]).

use std::io::Write;

/// A KTAP reporter for one suite of a guest program.
pub struct Ktap {
    suite: String,
    planned: usize,
    next: usize,
    failed: usize,
}

impl Ktap {
    /// Starts a suite named `suite` with `planned` test cases.
    pub fn start(suite: &str, planned: usize) -> Self {
        println!("KTAP version 1");
        println!("1..1");
        println!("    KTAP version 1");
        println!("    # Subtest: {suite}");
        println!("    1..{planned}");
        let _ = std::io::stdout().flush();
        Self {
            suite: suite.to_string(),
            planned,
            next: 1,
            failed: 0,
        }
    }

    /// Prints a diagnostic line that belongs to the current test.
    pub fn diag(&self, msg: &str) {
        println!("    # {msg}");
    }

    /// Reports one test case: `Ok(())` is a pass, `Err(reason)` a failure with its reason.
    pub fn result(&mut self, name: &str, res: Result<(), String>) {
        match res {
            Ok(()) => println!("    ok {} {name}", self.next),
            Err(e) => {
                self.failed += 1;
                println!("    # {name}: {e}");
                println!("    not ok {} {name}", self.next);
            }
        }
        self.next += 1;
        let _ = std::io::stdout().flush();
    }

    /// Reports a skipped test case with its reason.
    pub fn skip(&mut self, name: &str, why: &str) {
        println!("    ok {} {name} # SKIP {why}", self.next);
        self.next += 1;
    }

    /// Ends the suite; returns the process exit code (0 when everything passed).
    pub fn finish(self) -> i32 {
        let ran = self.next - 1;
        let ok = ran == self.planned && self.failed == 0;
        if ran != self.planned {
            println!(
                "    # {}: planned {} tests, ran {ran}",
                self.suite, self.planned
            );
        }
        println!("{} 1 {}", if ok { "ok" } else { "not ok" }, self.suite);
        let _ = std::io::stdout().flush();
        i32::from(!ok)
    }
}

/// The result of a test whose checks found `problems`: `Ok` without any, else all of them on
/// one line.
pub fn verdict(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A [`Ktap`] suite whose tests are named up front, in the order they are reported: the plan
/// gives the suite's test count, and reporting a test out of that order panics (a bug in the
/// program, not a test failure).
pub struct Planned {
    ktap: Ktap,
    plan: Vec<String>,
    next: usize,
}

impl Planned {
    /// Starts suite `suite` ([`Ktap::start`]) with the tests `plan`, in order.
    pub fn start(suite: &str, plan: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let plan: Vec<String> = plan.into_iter().map(Into::into).collect();
        Self {
            ktap: Ktap::start(suite, plan.len()),
            plan,
            next: 0,
        }
    }

    /// Checks that `name` is the next test of the plan.
    fn name(&mut self, name: &str) {
        assert_eq!(
            self.plan.get(self.next).map(String::as_str),
            Some(name),
            "tests out of order"
        );
        self.next += 1;
    }

    /// Reports the next test, `name`, as [`Ktap::result`] does.
    pub fn result(&mut self, name: &str, res: Result<(), String>) {
        self.name(name);
        self.ktap.result(name, res);
    }

    /// Reports the next test, `name`, as skipped ([`Ktap::skip`]).
    pub fn skip(&mut self, name: &str, why: &str) {
        self.name(name);
        self.ktap.skip(name, why);
    }

    /// Prints a diagnostic line ([`Ktap::diag`]).
    pub fn diag(&self, msg: &str) {
        self.ktap.diag(msg);
    }

    /// Ends the suite ([`Ktap::finish`]): the process exit code, 0 when every planned test ran
    /// and passed.
    pub fn finish(self) -> i32 {
        self.ktap.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_passes_only_a_complete_suite_without_failures() {
        let mut k = Ktap::start("s", 2);
        k.result("a", Ok(()));
        k.skip("b", "why");
        assert_eq!(k.finish(), 0);
        let mut k = Ktap::start("s", 2);
        k.result("a", Ok(()));
        k.result("b", Err("broken".into()));
        assert_eq!(k.finish(), 1);
        let mut k = Ktap::start("s", 2);
        k.result("a", Ok(()));
        assert_eq!(k.finish(), 1, "fewer tests than planned");
    }

    #[test]
    fn a_verdict_joins_the_problems() {
        assert_eq!(verdict(Vec::new()), Ok(()));
        assert_eq!(
            verdict(vec!["a".into(), "b".into()]),
            Err("a; b".to_string())
        );
    }

    #[test]
    fn a_planned_suite_runs_its_tests_in_order() {
        let mut k = Planned::start("s", ["a", "b"]);
        k.result("a", Ok(()));
        k.skip("b", "why");
        assert_eq!(k.finish(), 0);
        let mut k = Planned::start("s", vec!["a".to_string(), "b".to_string()]);
        k.result("a", Err("broken".into()));
        assert_eq!(k.finish(), 1);
    }

    #[test]
    #[should_panic(expected = "tests out of order")]
    fn a_test_out_of_the_plans_order_is_a_bug() {
        let mut k = Planned::start("s", ["a", "b"]);
        k.result("b", Ok(()));
    }
}
