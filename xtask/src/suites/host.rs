//! Suite `host`: the workspace's cargo tests, run as on a machine with no user configuration.

use super::suite;
use crate::ctx::Ctx;
use crate::ktap::Outcome;
use crate::report::{SuiteResult, TestResult};
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

/// `host`: the workspace's cargo tests, one result per test, run [`hermetic`]ally.
pub fn run(ctx: &Ctx) -> Result<SuiteResult> {
    util::announce("host: cargo test --workspace");
    let log = ctx.logs().join("host-tests.log");
    let _ = std::fs::remove_file(&log);
    let mut c = Command::new("cargo");
    c.current_dir(&ctx.repo)
        .args(["test", "--workspace", "--no-fail-fast", "--color", "never"]);
    let home = ctx.build.join("host-tests-home");
    hermetic(&mut c, &home)?;
    let ok = util::run_logged("cargo test", &mut c, &log).is_ok();
    let text = std::fs::read_to_string(&log).context("host test log")?;
    let mut tests = libtest::parse(&text, ok);
    if !ok && tests.iter().all(|t| t.outcome != Outcome::Fail) {
        tests.push(TestResult::fail(
            "host.cargo-test",
            format!("cargo test failed: {}", log.display()),
        ));
    }
    Ok(suite(
        "host",
        tests,
        vec![format!("log: {}", log.display())],
    ))
}
