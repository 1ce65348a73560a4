//! `drm_gem_bench`: how fast GEM objects are created and closed through the Rust DRM sample
//! driver (`rust_drm`) and through C's vgem, in one run; reports KTAP.
//!
//! ```text
//! drm_gem_bench [--iterations N] [--warmup N] [--rounds R] [--time-limit SECONDS]
//! ```
//! Defaults: 100000 iterations, 1000 warm-up iterations, 10 rounds, 120 s per driver. Both drivers must be
//! loaded (`vgem.ko`; `rust_driver_drm_device.ko` and `rust_driver_drm.ko`).
//!
//! One iteration makes a 4096-byte object and closes its handle (`DRM_IOCTL_GEM_CLOSE`):
//! - rust_drm: `RUST_DRM_GEM_CREATE` of 4096 bytes;
//! - vgem: `DRM_IOCTL_MODE_CREATE_DUMB` of 32x32 pixels at 32 bpp (4096 bytes).
//!
//! Both on the primary node: DRM core does not allow `MODE_CREATE_DUMB` on render nodes (its
//! table entry has no `DRM_RENDER_ALLOW`), so the sample runs there too for a fair comparison.
//! Each driver first runs the warm-up iterations untimed; then the timed iterations are split
//! into rounds, each round timing a share of every driver's iterations with `Instant`, the
//! drivers taking turns at going first (so that neither always runs on caches and slabs the
//! other warmed or filled); a driver's time is the sum of its rounds. At the time limit (of
//! either driver's total) the rounds stop and each driver reports the iterations it did. The results are KTAP diagnostic lines (`    # ` then the line):
//!
//! ```text
//! bench: rust_drm gem_create_close 100000 in 12.345 s = 8100.2/s
//! bench: vgem dumb_create_close 100000 in 10.000 s = 10000.0/s
//! bench: ratio rust_drm/vgem = 0.81
//! ```
//! The ratio is of the rates (rust_drm's per second over vgem's): above 1, the Rust driver is
//! faster. KTAP tests (suite `drm_gem_bench`): `rust_drm_gem_create_close` and
//! `vgem_dumb_create_close` (the loop ran without an error), `ratio` (both rates measured).

use drm_client::{errno_name, sample, Card, Errno, NodeKind};
use guest::args::{self, Flags};
use guest::Ktap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The KTAP suite name.
const SUITE: &str = "drm_gem_bench";

#[derive(Debug, PartialEq, Eq)]
struct Args {
    iterations: u64,
    warmup: u64,
    rounds: u64,
    time_limit: Duration,
}

fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut flags = Flags::new(argv);
    let mut a = Args {
        iterations: 100_000,
        warmup: 1000,
        rounds: 10,
        time_limit: Duration::from_secs(120),
    };
    let number = |v: String, f: &str| -> Result<u64, String> {
        v.parse().map_err(|_| format!("{f} wants a number"))
    };
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--iterations" => a.iterations = number(flags.value(&flag)?, &flag)?,
            "--warmup" => a.warmup = number(flags.value(&flag)?, &flag)?,
            "--rounds" => a.rounds = number(flags.value(&flag)?, &flag)?,
            "--time-limit" => {
                a.time_limit = Duration::from_secs(number(flags.value(&flag)?, &flag)?)
            }
            other => return Err(args::unknown(other)),
        }
    }
    if a.iterations == 0 {
        return Err("--iterations wants at least 1".into());
    }
    if a.rounds == 0 || a.rounds > a.iterations {
        return Err("--rounds wants at least 1 and at most --iterations".into());
    }
    Ok(a)
}

/// One driver's loop: its name, what one iteration does, and the iteration.
struct Case {
    driver: &'static str,
    what: &'static str,
    test: &'static str,
    iterate: fn(&Card) -> Result<(), (&'static str, Errno)>,
}

fn rust_drm_iteration(card: &Card) -> Result<(), (&'static str, Errno)> {
    let gem = sample::gem_create(card, 4096).map_err(|e| ("RUST_DRM_GEM_CREATE", e))?;
    card.gem_close(gem.handle).map_err(|e| ("GEM_CLOSE", e))
}

fn vgem_iteration(card: &Card) -> Result<(), (&'static str, Errno)> {
    let dumb = card
        .create_dumb(32, 32, 32)
        .map_err(|e| ("MODE_CREATE_DUMB", e))?;
    card.gem_close(dumb.handle).map_err(|e| ("GEM_CLOSE", e))
}

const CASES: [Case; 2] = [
    Case {
        driver: sample::DRIVER_NAME,
        what: "gem_create_close",
        test: "rust_drm_gem_create_close",
        iterate: rust_drm_iteration,
    },
    Case {
        driver: "vgem",
        what: "dumb_create_close",
        test: "vgem_dumb_create_close",
        iterate: vgem_iteration,
    },
];

/// A measurement: iterations done and the time they took.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    iterations: u64,
    seconds: f64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.iterations as f64 / self.seconds
    }
}

/// The result line of one driver.
fn result_line(driver: &str, what: &str, m: Measured) -> String {
    format!(
        "bench: {driver} {what} {} in {:.3} s = {:.1}/s",
        m.iterations,
        m.seconds,
        m.rate()
    )
}

/// The line comparing the two rates.
fn ratio_line(rust: Measured, vgem: Measured) -> String {
    format!(
        "bench: ratio rust_drm/vgem = {:.2}",
        rust.rate() / vgem.rate()
    )
}

/// The iterations of round `round` (of `rounds`) when `total` are split as evenly as they go.
fn round_share(total: u64, rounds: u64, round: u64) -> u64 {
    total / rounds + u64::from(round < total % rounds)
}

/// The order of the drivers in round `round`: they take turns at going first.
fn round_order(round: u64, drivers: usize) -> Vec<usize> {
    let first = (round as usize) % drivers;
    (0..drivers).map(|i| (first + i) % drivers).collect()
}

/// Runs every case: the warm-up of each, then the timed iterations in rounds (see the module
/// documentation). Gives each case's measurement and whether the time limit stopped it early.
fn measure_all(cases: &[Case], args: &Args) -> Vec<Result<(Measured, bool), String>> {
    let fail = |phase: &str, i: u64, (call, e): (&str, Errno)| {
        format!("{phase} iteration {i}: {call}: {}", errno_name(e))
    };
    let mut state: Vec<Result<(Card, Measured), String>> = cases
        .iter()
        .map(|case| {
            let card =
                Card::open_driver(case.driver, NodeKind::Primary).map_err(|e| e.to_string())?;
            for i in 0..args.warmup {
                (case.iterate)(&card).map_err(|e| fail("warm-up", i, e))?;
            }
            let zero = Measured {
                iterations: 0,
                seconds: 0.0,
            };
            Ok((card, zero))
        })
        .collect();
    let mut limited = false;
    'rounds: for round in 0..args.rounds {
        for c in round_order(round, cases.len()) {
            let Ok((card, m)) = &mut state[c] else {
                continue;
            };
            let share = round_share(args.iterations, args.rounds, round);
            let start = Instant::now();
            let mut done = 0;
            let mut err = None;
            while done < share {
                if let Err(e) = (cases[c].iterate)(card) {
                    err = Some(fail("timed", m.iterations + done, e));
                    break;
                }
                done += 1;
            }
            m.iterations += done;
            m.seconds += start.elapsed().as_secs_f64();
            if let Some(e) = err {
                state[c] = Err(e);
            } else if m.seconds > args.time_limit.as_secs_f64() {
                limited = true;
                break 'rounds;
            }
        }
    }
    state
        .into_iter()
        .map(|r| {
            r.map(|(_, m)| {
                let m = Measured {
                    iterations: m.iterations,
                    seconds: m.seconds.max(1e-9),
                };
                (m, limited && m.iterations < args.iterations)
            })
        })
        .collect()
}

fn main() -> ExitCode {
    let usage =
        "usage: drm_gem_bench [--iterations N] [--warmup N] [--rounds R] [--time-limit SECONDS]";
    let args = match guest::start(SUITE, Some(usage), parse) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut ktap = Ktap::start(SUITE, CASES.len() + 1);
    let mut measured = Vec::new();
    for (case, res) in CASES.iter().zip(measure_all(&CASES, &args)) {
        match res {
            Ok((m, stopped)) => {
                if stopped {
                    ktap.diag(&format!(
                        "{}: stopped at the time limit ({} s) after {} of {} iterations",
                        case.driver,
                        args.time_limit.as_secs(),
                        m.iterations,
                        args.iterations
                    ));
                }
                ktap.diag(&result_line(case.driver, case.what, m));
                ktap.result(case.test, Ok(()));
                measured.push(Some(m));
            }
            Err(e) => {
                ktap.result(case.test, Err(format!("{}: {e}", case.driver)));
                measured.push(None);
            }
        }
    }
    match measured[..] {
        [Some(rust), Some(vgem)] => {
            ktap.diag(&ratio_line(rust, vgem));
            ktap.result("ratio", Ok(()));
        }
        _ => ktap.result("ratio", Err("a driver was not measured".into())),
    }
    ExitCode::from(ktap.finish() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_as_the_harness_parses_them() {
        let rust = Measured {
            iterations: 100_000,
            seconds: 12.345,
        };
        let vgem = Measured {
            iterations: 100_000,
            seconds: 10.0,
        };
        assert_eq!(
            result_line("rust_drm", "gem_create_close", rust),
            "bench: rust_drm gem_create_close 100000 in 12.345 s = 8100.4/s"
        );
        assert_eq!(
            result_line("vgem", "dumb_create_close", vgem),
            "bench: vgem dumb_create_close 100000 in 10.000 s = 10000.0/s"
        );
        assert_eq!(ratio_line(rust, vgem), "bench: ratio rust_drm/vgem = 0.81");
    }

    #[test]
    fn rounds_share_the_iterations_and_take_turns() {
        let shares: Vec<u64> = (0..3).map(|r| round_share(10, 3, r)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!(
            (0..10).map(|r| round_share(100_000, 10, r)).sum::<u64>(),
            100_000
        );
        assert_eq!(round_order(0, 2), [0, 1]);
        assert_eq!(round_order(1, 2), [1, 0]);
        assert_eq!(round_order(2, 2), [0, 1]);
    }

    #[test]
    fn command_lines() {
        let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse(argv("")),
            Ok(Args {
                iterations: 100_000,
                warmup: 1000,
                rounds: 10,
                time_limit: Duration::from_secs(120)
            })
        );
        let a = parse(argv("--iterations 5 --warmup 0 --rounds 2 --time-limit 9")).unwrap();
        assert_eq!(
            (a.iterations, a.warmup, a.rounds, a.time_limit.as_secs()),
            (5, 0, 2, 9)
        );
        assert!(parse(argv("--rounds 0")).is_err());
        assert!(parse(argv("--iterations 3 --rounds 4")).is_err());
        assert!(parse(argv("--iterations 0")).is_err());
        assert!(parse(argv("--iterations x")).is_err());
        assert!(parse(argv("--x 1")).is_err());
    }

    #[test]
    fn the_cases_are_the_two_drivers() {
        let names: Vec<&str> = CASES.iter().map(|c| c.driver).collect();
        assert_eq!(names, ["rust_drm", "vgem"]);
    }
}
