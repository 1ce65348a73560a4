//! The suites of `cargo xtask test`, one file each; [`SUITES`] lists them in the order they run.
//! Adding a suite is a file here and a line in [`SUITES`].

mod driver_author;
mod gpu_model;
mod host;
mod nova_stub;
mod rust_device;
pub(crate) mod rust_drm;
mod rust_pci;
mod series;

use crate::ctx::Ctx;
use crate::report::{Report, SuiteResult, TestResult};
use crate::setup::{self, Toolchain};
use anyhow::{bail, Result};
use std::time::Instant;

/// A suite: its name (for `--suite` and `summary.json`) and what runs it, with the toolchain
/// of a completed setup.
struct Suite {
    name: &'static str,
    run: fn(&Ctx, &Toolchain) -> Result<SuiteResult>,
}

/// The suites of `cargo xtask test`, in the order they run.
const SUITES: &[Suite] = &[
    Suite {
        name: "host",
        run: host::run,
    },
    Suite {
        name: "series",
        run: series::run,
    },
    Suite {
        name: "gpu-model",
        run: gpu_model::run,
    },
    Suite {
        name: "rust-device",
        run: rust_device::run,
    },
    Suite {
        name: "rust-pci",
        run: rust_pci::run,
    },
    Suite {
        name: "rust-drm",
        run: rust_drm::run,
    },
    Suite {
        name: "nova-stub",
        run: nova_stub::run,
    },
    Suite {
        name: "driver-author",
        run: driver_author::run,
    },
];

/// A suite with the given tests and notes.
pub(crate) fn suite(name: &str, tests: Vec<TestResult>, notes: Vec<String>) -> SuiteResult {
    let mut s = SuiteResult::new(name);
    s.tests = tests;
    s.notes = notes;
    s
}

/// `cargo xtask test`: runs the selected suites (all when none is named).
pub fn test(ctx: &Ctx, names: &[String]) -> Result<()> {
    for n in names {
        if !SUITES.iter().any(|s| s.name == n) {
            let all: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
            bail!("unknown suite `{n}` (suites: {})", all.join(", "));
        }
    }
    let selected = SUITES
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name));
    let start = Instant::now();
    let mut report = Report { suites: Vec::new() };
    let tc = setup::setup(ctx)?;
    for Suite { name: s, run } in selected {
        let t = Instant::now();
        let result = run(ctx, &tc);
        let mut result = result.unwrap_or_else(|e| {
            suite(
                s,
                vec![TestResult::fail(format!("{s}.run"), format!("{e:#}"))],
                vec![],
            )
        });
        result.duration = Some(t.elapsed());
        report.suites.push(result);
    }
    report.print_table();
    let json = ctx.results().join("summary.json");
    report.write_json(&json)?;
    println!(
        "results: {} ({:.0}s)",
        json.display(),
        start.elapsed().as_secs_f64()
    );
    println!("{}", report.final_line());
    if !report.success() {
        std::process::exit(1);
    }
    Ok(())
}
