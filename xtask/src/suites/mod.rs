//! The suites of `cargo xtask test`, one file each; [`SUITES`] lists them in the order they run.
//! Adding a suite is a file here and a line in [`SUITES`].

mod compile_fail;
pub(crate) mod debug;
mod driver_author;
mod gpu_model;
mod host;
mod mmio_codegen;
mod nova_stub;
mod rust_device;
pub(crate) mod rust_drm;
mod rust_pci;
mod series;

use crate::ctx::Ctx;
use crate::results::report::{Report, SuiteResult, TestResult};
use crate::setup::{self, Toolchain};
use crate::{results::junit, results::kcidb, util};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Instant;

/// A suite: its name (for `--suite` and `summary.json`), the kernel it tests (for reports that
/// link results to builds) and what runs it, with the toolchain of a completed setup.
struct Suite {
    name: &'static str,
    runs_on: RunsOn,
    run: fn(&Ctx, &Toolchain) -> Result<SuiteResult>,
}

/// The kernel a suite's results are about.
enum RunsOn {
    /// None: the tool's own tests.
    Nothing,
    /// Every commit of the series: each test names its topic (and commit).
    Series,
    /// The series' last topic's tip.
    Tip,
    /// This topic branch's tip.
    Topic(&'static str),
}

/// The suites of `cargo xtask test`, in the order they run.
const SUITES: &[Suite] = &[
    Suite {
        name: "host",
        runs_on: RunsOn::Nothing,
        run: host::run,
    },
    Suite {
        name: "series",
        runs_on: RunsOn::Series,
        run: series::run,
    },
    Suite {
        name: "gpu-model",
        runs_on: RunsOn::Tip,
        run: gpu_model::run,
    },
    Suite {
        name: "rust-device",
        runs_on: RunsOn::Topic("staging/rust-device"),
        run: rust_device::run,
    },
    Suite {
        name: "rust-pci",
        runs_on: RunsOn::Topic("staging/rust-pci"),
        run: rust_pci::run,
    },
    Suite {
        name: "rust-drm",
        runs_on: RunsOn::Topic("topic/rust-drm"),
        run: rust_drm::run,
    },
    Suite {
        name: "nova-stub",
        runs_on: RunsOn::Topic("nova/stub"),
        run: nova_stub::run,
    },
    Suite {
        name: "driver-author",
        runs_on: RunsOn::Topic("staging/dev"),
        run: driver_author::run,
    },
    Suite {
        name: "debug",
        runs_on: RunsOn::Tip,
        run: debug::run,
    },
];

/// A suite with the given tests and notes.
pub(crate) fn suite(name: &str, tests: Vec<TestResult>, notes: Vec<String>) -> SuiteResult {
    let mut s = SuiteResult::new(name);
    s.tests = tests;
    s.notes = notes;
    s
}

/// Where `cargo xtask test` writes its results besides `summary.json`.
#[derive(Debug, Default)]
pub struct Outputs {
    /// JUnit XML.
    pub junit: Option<PathBuf>,
    /// A KCIDB report.
    pub kcidb: Option<PathBuf>,
}

/// `cargo xtask test`: runs the selected suites (all when none is named).
pub fn test(ctx: &Ctx, names: &[String], outputs: &Outputs) -> Result<()> {
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
    let started = util::utc_now();
    let mut report = Report { suites: Vec::new() };
    let tc = setup::setup(ctx)?;
    for Suite { name: s, run, .. } in selected {
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
    if let Some(path) = &outputs.junit {
        junit::write(&report, path)?;
        println!("junit: {}", path.display());
    }
    if let Some(path) = &outputs.kcidb {
        let branches = SUITES
            .iter()
            .filter_map(|s| {
                let b = match s.runs_on {
                    RunsOn::Nothing => return None,
                    RunsOn::Series => None,
                    RunsOn::Tip => Some(ctx.series().ok()?.topics.tip().branch.clone()),
                    RunsOn::Topic(b) => Some(b.to_string()),
                };
                Some((s.name.to_string(), b))
            })
            .collect();
        let config = crate::builds::commits_fragments(ctx, &ctx.series()?.topics);
        let input = kcidb::collect(ctx, &tc, &report, &started, branches, &config)?;
        kcidb::write_validated(&tc.kcidb_python, &kcidb::document(&input), path)?;
        println!(
            "kcidb: {} (valid {})",
            path.display(),
            kcidb::SCHEMA_VERSION
        );
    }
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
