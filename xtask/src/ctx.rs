//! Where things live: the repository, its build folder and the cache outside git.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Paths shared by every step.
pub struct Ctx {
    /// The repository root (the workspace holding `xtask/`).
    pub repo: PathBuf,
    /// Build output: kernel tree, per-branch build folders, results (`build/`, ignored by git).
    pub build: PathBuf,
    /// Downloads and tools that outlive checkouts: `$NOVA_CACHE`, else
    /// `$XDG_CACHE_HOME/nova-xtask`, else `~/.cache/nova-xtask`.
    pub cache: PathBuf,
}

impl Ctx {
    /// Finds the repository from the location of this crate and the cache from the environment.
    pub fn new() -> Result<Self> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask has no parent folder")?
            .to_path_buf();
        let cache = if let Some(c) = std::env::var_os("NOVA_CACHE") {
            PathBuf::from(c)
        } else if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
            PathBuf::from(x).join("nova-xtask")
        } else {
            let home = std::env::var_os("HOME").context("HOME is not set")?;
            PathBuf::from(home).join(".cache/nova-xtask")
        };
        Ok(Self {
            build: repo.join("build"),
            repo,
            cache,
        })
    }

    /// The materialised kernel git tree, where kernel code is edited.
    pub fn tree(&self) -> PathBuf {
        self.build.join("linux")
    }

    /// Logs of the steps.
    pub fn logs(&self) -> PathBuf {
        self.build.join("logs")
    }

    /// Results of the last test run.
    pub fn results(&self) -> PathBuf {
        self.build.join("results")
    }
}
