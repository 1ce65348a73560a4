//! KTAP output on stdout: one suite per guest program.

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
}
