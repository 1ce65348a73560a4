//! The human-written description of the topic branches: `series/topics.toml`.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The name a topic uses to say it stands directly on the base.
pub const BASE: &str = "base";

/// One topic branch of the series.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Folder under `series/` holding the topic's patches.
    pub dir: String,
    /// Branch name in the kernel tree, e.g. `staging/rust-pci`.
    pub branch: String,
    /// Branches (or `base`) the topic stands on; two or more make it a merge.
    pub parents: Vec<String>,
    /// Subject of the topic's cover letter.
    pub subject: String,
    /// Text of the topic's cover letter.
    pub cover: String,
    /// The version of the topic's patches as posted: 2 and up make the subjects
    /// `[PATCH vN ...]`; 1 (the default) leaves them `[PATCH ...]`.
    #[serde(default = "first_version")]
    pub version: u32,
}

fn first_version() -> u32 {
    1
}

impl Topic {
    /// The subject prefix of the topic's patches: `PATCH`, or `PATCH vN` from version 2 on.
    pub fn subject_prefix(&self) -> String {
        if self.version > 1 {
            format!("PATCH v{}", self.version)
        } else {
            "PATCH".to_string()
        }
    }
}

/// All topics in materialisation order (parents before children).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    /// The topics, in the order of the file.
    #[serde(rename = "topic")]
    pub topics: Vec<Topic>,
}

/// `series/` of a repository: its folder and its topics, read and validated together, once
/// per command ([`crate::ctx::Ctx::series`]).
#[derive(Debug)]
pub struct Series {
    /// The folder (`<repo>/series`), holding `topics.toml` and a folder per topic.
    pub dir: PathBuf,
    /// The topics of `topics.toml`, validated.
    pub topics: Topics,
}

impl Series {
    /// Reads and validates `series/topics.toml` of the repository at `repo`; the error names
    /// the file.
    pub fn load(repo: &Path) -> Result<Self> {
        let dir = repo.join("series");
        let topics = Topics::load(&dir)?;
        Ok(Self { dir, topics })
    }
}

impl Topics {
    /// Reads and validates `series/topics.toml`.
    fn load(series: &Path) -> Result<Self> {
        let path = series.join("topics.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and validates the description.
    pub fn parse(text: &str) -> Result<Self> {
        let t: Topics = toml::from_str(text)?;
        t.validate()?;
        Ok(t)
    }

    fn validate(&self) -> Result<()> {
        let mut seen = BTreeSet::new();
        let mut dirs = BTreeSet::new();
        for t in &self.topics {
            if t.branch == BASE || !seen.insert(t.branch.as_str()) {
                bail!(
                    "branch `{}` is named twice (or is the reserved name `base`)",
                    t.branch
                );
            }
            if t.dir.is_empty()
                || t.dir.contains('/')
                || t.dir.starts_with('.')
                || !dirs.insert(t.dir.as_str())
            {
                bail!(
                    "topic `{}`: folder `{}` is empty, nested or used twice",
                    t.branch,
                    t.dir
                );
            }
            if t.parents.is_empty() {
                bail!(
                    "topic `{}` has no parents (use `base` for the base)",
                    t.branch
                );
            }
            for p in &t.parents {
                if p != BASE && !seen.contains(p.as_str()) || p == &t.branch {
                    bail!(
                        "topic `{}`: parent `{p}` must be `base` or a topic listed before it",
                        t.branch
                    );
                }
            }
        }
        if self.topics.is_empty() {
            bail!("no topics");
        }
        Ok(())
    }

    /// The most complete topic: the last one, which must contain every other topic.
    pub fn tip(&self) -> &Topic {
        self.topics.last().expect("validated: at least one topic")
    }

    /// The topic owning `branch`.
    pub fn by_branch(&self, branch: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.branch == branch)
    }

    /// Topics that `t` stands on, directly or not.
    pub fn ancestors(&self, t: &Topic) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<&str> = t.parents.iter().map(String::as_str).collect();
        while let Some(p) = todo.pop() {
            if p != BASE && out.insert(p.to_string()) {
                if let Some(pt) = self.by_branch(p) {
                    todo.extend(pt.parents.iter().map(String::as_str));
                }
            }
        }
        out
    }
}

/// A folder name for a branch (`staging/dev` → `staging-dev`).
pub fn slug(branch: &str) -> String {
    branch.replace('/', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[topic]]
dir = "a"
branch = "staging/a"
parents = ["base"]
subject = "a"
cover = "a"

[[topic]]
dir = "b"
branch = "staging/b"
parents = ["staging/a"]
subject = "b"
cover = "b"

[[topic]]
dir = "c"
branch = "topic/c"
parents = ["staging/a"]
subject = "c"
cover = "c"

[[topic]]
dir = "dev"
branch = "staging/dev"
parents = ["staging/b", "topic/c"]
subject = "dev"
cover = "dev"
"#;

    #[test]
    fn order_and_ancestors() {
        let t = Topics::parse(GOOD).unwrap();
        assert_eq!(t.tip().branch, "staging/dev");
        let anc = t.ancestors(t.tip());
        assert_eq!(
            anc.into_iter().collect::<Vec<_>>(),
            ["staging/a", "staging/b", "topic/c"]
        );
        assert!(t.ancestors(&t.topics[0]).is_empty());
    }

    #[test]
    fn a_missing_or_invalid_description_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("series/topics.toml");
        let e = format!("{:#}", Series::load(tmp.path()).unwrap_err());
        assert!(
            e.starts_with(&format!("cannot read {}", file.display())),
            "{e}"
        );
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, GOOD.replace("staging/a\"]", "staging/x\"]")).unwrap();
        let e = format!("{:#}", Series::load(tmp.path()).unwrap_err());
        assert!(e.starts_with(&format!("in {}: ", file.display())), "{e}");
        assert!(e.contains("parent `staging/x`"), "{e}");
        std::fs::write(&file, GOOD).unwrap();
        let s = Series::load(tmp.path()).unwrap();
        assert_eq!(s.dir, tmp.path().join("series"));
        assert_eq!(s.topics.tip().branch, "staging/dev");
    }

    #[test]
    fn parent_after_child_is_rejected() {
        let bad = GOOD.replace(r#"parents = ["base"]"#, r#"parents = ["staging/b"]"#);
        let e = Topics::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("parent `staging/b`"), "{e}");
    }

    #[test]
    fn duplicate_and_unknown_fields_are_rejected() {
        let dup = GOOD.replace(r#"branch = "topic/c""#, r#"branch = "staging/b""#);
        assert!(Topics::parse(&dup).is_err());
        let unknown = GOOD.replacen("cover = \"a\"", "cover = \"a\"\ncolour = 1", 1);
        assert!(Topics::parse(&unknown).is_err());
        let nested = GOOD.replacen("dir = \"a\"", "dir = \"x/a\"", 1);
        assert!(Topics::parse(&nested).is_err());
    }
}
