//! Suite `host`: the workspace's cargo tests, run as on a machine with no user configuration.

use super::suite;
use crate::ctx::Ctx;
use crate::results::ktap::Outcome;
use crate::results::report::{SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::{results::libtest, util};
use anyhow::{Context, Result};
use std::process::Command;

/// The ignored test that needs QEMU: suite `gpu-model` runs it.
pub const QEMU_TEST: &str = "qemu_sees_the_gpu_and_reads_bar0";

/// Runs `cargo ARGS` in the workspace (with `envs`) and turns libtest's output into one result
/// per test; `log` keeps the output.
pub fn cargo_tests(
    ctx: &Ctx,
    args: &[&str],
    envs: &[(&str, std::ffi::OsString)],
    log: &std::path::Path,
) -> Result<Vec<TestResult>> {
    let _ = std::fs::remove_file(log);
    let mut c = Command::new("cargo");
    c.current_dir(&ctx.repo).args(args);
    let home = ctx.build.join("host-tests-home");
    util::hermetic(&mut c, &home)?;
    for (k, v) in envs {
        c.env(k, v);
    }
    let ok = util::run_logged("cargo test", &mut c, log).is_ok();
    let text = std::fs::read_to_string(log).context("test log")?;
    let mut tests = libtest::parse(&text, ok);
    if !ok && tests.iter().all(|t| t.outcome != Outcome::Fail) {
        tests.push(TestResult::fail(
            "host.cargo-test",
            format!("cargo test failed: {}", log.display()),
        ));
    }
    Ok(tests)
}

/// `host`: the workspace's cargo tests, one result per test, run [`util::hermetic`]ally; the ignored
/// ones too (they read the base tree, named in `NOVA_BASE_REPO`, or run the pinned kcidb-io,
/// whose Python is `NOVA_KCIDB_PYTHON`), except the QEMU test.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    util::announce("host: cargo test --workspace");
    let log = ctx.logs().join("host-tests.log");
    let args = [
        "test",
        "--workspace",
        "--no-fail-fast",
        "--color",
        "never",
        "--",
        "--include-ignored",
        "--skip",
        QEMU_TEST,
    ];
    let envs = [
        ("NOVA_BASE_REPO", tc.base_repo.clone().into_os_string()),
        (
            "NOVA_KCIDB_PYTHON",
            tc.kcidb_python.clone().into_os_string(),
        ),
    ];
    let tests = cargo_tests(ctx, &args, &envs, &log)?;
    Ok(suite(
        "host",
        tests,
        vec![format!("log: {}", log.display())],
    ))
}
