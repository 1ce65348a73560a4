//! Where things live: the repository, its build folder and the cache outside git; and the
//! repository's series, read once per command.

use crate::series::topics::Series;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The developer's kernel tree (`build/linux` of build folder `build`), where kernel code is
/// edited.
pub fn kernel_tree(build: &Path) -> PathBuf {
    build.join("linux")
}

/// Paths shared by every step, and the series they work on.
pub struct Ctx {
    /// The repository root (the workspace holding `xtask/`).
    pub repo: PathBuf,
    /// Build output: kernel tree, per-branch build folders, results (`build/`, ignored by git).
    pub build: PathBuf,
    /// Downloads and tools that outlive checkouts: `$NOVA_CACHE`, else
    /// `$XDG_CACHE_HOME/nova-xtask`, else `~/.cache/nova-xtask`.
    pub cache: PathBuf,
    /// `series/` of `repo`, once read ([`Ctx::series`]).
    series: OnceLock<Series>,
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
        let build = repo.join("build");
        Ok(Self::at(repo, build, cache))
    }

    /// The repository `repo` with its build folder and cache where given.
    pub fn at(repo: PathBuf, build: PathBuf, cache: PathBuf) -> Self {
        Self {
            repo,
            build,
            cache,
            series: OnceLock::new(),
        }
    }

    /// `series/` of the repository: read and validated on first use, then the same for the
    /// rest of the command. A missing or invalid `topics.toml` is an error naming the file (not
    /// kept: the next call reads the file again).
    pub fn series(&self) -> Result<&Series> {
        if let Some(s) = self.series.get() {
            return Ok(s);
        }
        let s = Series::load(&self.repo)?;
        Ok(self.series.get_or_init(|| s))
    }

    /// The materialised kernel git tree, where kernel code is edited.
    pub fn tree(&self) -> PathBuf {
        kernel_tree(&self.build)
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
