//! A thin wrapper around the `git` command for one repository.

use crate::util::{describe, output};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Identity of the commits the tool makes (merges, fixups, stashes, the imported base) and the
/// committer of the commits it applies with `git am`, so that they hash the same everywhere and
/// need no identity in the user's git configuration.
pub const TOOL_IDENT: (&str, &str) = ("Nova xtask", "nova-xtask@localhost");

/// Variables of the user's environment that would point git at another repository, index or
/// object store, or change the dates of new commits.
const REDIRECTING_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_DATE",
];

/// A `git` command that reads no configuration of the user or the system (only the repository's
/// own), ignores git variables of the environment, and commits as [`TOOL_IDENT`].
///
/// What the tool does with git (materialise, export, absorb, import the base) must not depend on
/// who runs it: a global `diff.noprefix` or `format.signoff` would change exported patches, a
/// missing `user.email` would fail commits.
pub fn command() -> Command {
    let mut c = Command::new("git");
    for v in REDIRECTING_VARS {
        c.env_remove(v);
    }
    c.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PAGER", "cat")
        .env("LC_ALL", "C")
        .env("GIT_AUTHOR_NAME", TOOL_IDENT.0)
        .env("GIT_AUTHOR_EMAIL", TOOL_IDENT.1)
        .env("GIT_COMMITTER_NAME", TOOL_IDENT.0)
        .env("GIT_COMMITTER_EMAIL", TOOL_IDENT.1);
    c
}

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

    /// A [`command`] running in the repository, with the repository's own configuration
    /// overridden where it would change results (hooks, signing, colour, rename detection).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = command();
        c.current_dir(&self.dir)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The tool's git reads no global configuration and needs no identity of the user's: a
    /// hostile `~/.gitconfig` (no identity allowed, prefix-less diffs) changes nothing.
    #[test]
    fn commands_ignore_the_users_configuration() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let hostile = "[user]\n\tuseConfigOnly = true\n[diff]\n\tnoprefix = true\n";
        std::fs::write(dir.join(".gitconfig"), hostile).unwrap();
        // A command as the tool runs it, for a user whose HOME holds that file.
        let g = Git::new(dir);
        let as_user = |args: &[&str]| {
            let mut c = g.cmd(args);
            c.env("HOME", dir).env("XDG_CONFIG_HOME", dir);
            Git::run_cmd(c)
        };
        // Sanity: a plain git of that user does read the file.
        let plain = Command::new("git")
            .env("HOME", dir)
            .env_remove("GIT_CONFIG_GLOBAL")
            .args(["config", "--global", "diff.noprefix"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&plain.stdout).trim(), "true");
        as_user(&["init", "-q", "-b", "main"]).unwrap();
        assert_eq!(as_user(&["config", "--global", "--list"]).unwrap(), "");
        std::fs::write(dir.join("f"), "x\n").unwrap();
        as_user(&["add", "f"]).unwrap();
        as_user(&["commit", "-q", "-m", "one"]).expect("commit without the user's identity");
        let ident = as_user(&["log", "-1", "--format=%an <%ae> %cn <%ce>"]).unwrap();
        assert_eq!(
            ident.trim(),
            "Nova xtask <nova-xtask@localhost> Nova xtask <nova-xtask@localhost>"
        );
        let diff = as_user(&["show", "--format=", "HEAD"]).unwrap();
        assert!(diff.contains("+++ b/f"), "{diff}");
    }
}
