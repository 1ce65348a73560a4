//! A thin wrapper around the `git` command for one repository.

use crate::util::{describe, output};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A git repository (work tree or bare) the tool operates on.
pub struct Git {
    /// The folder git runs in.
    pub dir: PathBuf,
}

impl Git {
    /// The repository at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// A `git` command running in the repository, isolated from the user's git configuration
    /// where it would change results (hooks, signing, pagers, colour, rename detection).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.current_dir(&self.dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_PAGER", "cat")
            .env("LC_ALL", "C")
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "commit.gpgSign=false",
            ])
            .args([
                "-c",
                "color.ui=false",
                "-c",
                "diff.renames=false",
                "-c",
                "gc.auto=0",
            ])
            .args(["-c", "core.abbrev=12", "-c", "advice.detachedHead=false"])
            .args(args);
        c
    }

    /// Runs git and returns its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        output(&mut self.cmd(args))
    }

    /// Runs git and returns whether it succeeded (output discarded).
    pub fn ok(&self, args: &[&str]) -> bool {
        self.cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Runs a prepared git command; on failure returns git's own message.
    pub fn run_cmd(mut cmd: Command) -> Result<String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| describe(&cmd))?;
        if !out.status.success() {
            let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if msg.is_empty() {
                msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            bail!("{msg}");
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The commit a ref points to, if it exists.
    pub fn rev(&self, r: &str) -> Option<String> {
        self.run(&["rev-parse", "--verify", "-q", &format!("{r}^{{commit}}")])
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Whether the work tree or index has changes (untracked files included).
    pub fn dirty(&self) -> Result<bool> {
        Ok(!self.run(&["status", "--porcelain"])?.trim().is_empty())
    }

    /// Whether `dir` holds a git repository.
    pub fn exists(dir: &Path) -> bool {
        dir.join(".git").exists() || dir.join("HEAD").exists()
    }
}
