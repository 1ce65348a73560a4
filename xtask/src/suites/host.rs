//! Suite `host`: the workspace's cargo tests, run as on a machine with no user configuration.

use super::suite;
use crate::ctx::Ctx;
use crate::ktap::Outcome;
use crate::report::{SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::{libtest, util};
use anyhow::{Context, Result};
use std::process::Command;

/// Runs `c` as on a machine with no configuration of its user: an empty HOME (`home`), no
/// global or system git configuration, the C locale. Cargo and rustup keep their own homes, so
/// the toolchain and the crate cache stay the ones in use.
fn hermetic(c: &mut Command, home: &std::path::Path) -> Result<()> {
    util::remove_dir(home)?;
    std::fs::create_dir_all(home)?;
    let user_home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let dir = std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .or_else(|| user_home.as_ref().map(|h| h.join(default)));
        if let Some(dir) = dir {
            c.env(var, dir);
        }
    }
    c.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C");
    Ok(())
}

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
    hermetic(&mut c, &home)?;
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

/// `host`: the workspace's cargo tests, one result per test, run [`hermetic`]ally; the ignored
/// ones too (they read the base tree, named in `NOVA_BASE_REPO`), except the QEMU test.
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
    let envs = [("NOVA_BASE_REPO", tc.base_repo.clone().into_os_string())];
    let tests = cargo_tests(ctx, &args, &envs, &log)?;
    Ok(suite(
        "host",
        tests,
        vec![format!("log: {}", log.display())],
    ))
}
