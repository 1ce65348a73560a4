//! Shared helpers for the guest test programs: KTAP output on stdout.
//!
//! Every guest program reports as one KTAP suite so that the harness parses guest results
//! with the same parser as the kernel's own KUnit output.

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

/// The file the harness's init reads its command lines from: it exists only in the test guest.
const GUEST_MARKER: &str = "/etc/nova/run";

/// Refuses to go on outside the test guest.
///
/// The guest programs unbind drivers, load modules and enable PCI devices through sysfs: run on
/// a host by mistake, they would do that to the host. Returns `Err` with a message when
/// `/etc/nova/run` (written by the harness into the initramfs) is missing.
pub fn require_test_guest(program: &str) -> Result<(), String> {
    if std::path::Path::new(GUEST_MARKER).exists() {
        Ok(())
    } else {
        Err(format!(
            "{program}: refusing to run outside the test guest ({GUEST_MARKER} is missing): it \
             changes driver bindings and devices through sysfs"
        ))
    }
}
