//! `cargo xtask test --kcidb FILE`: the results as a KernelCI report (the KCIDB I/O schema,
//! [`SCHEMA_VERSION`]), which a lab with real NVIDIA GPUs can submit to KernelCI's dashboard.
//!
//! - one checkout per topic: the base commit with the topic's patch set applied (its own
//!   patches after its ancestors'), `patchset_hash` as the schema defines it, the topic's
//!   branch, and the tip's commit in `misc`;
//! - one build per kernel: every commit of every topic in the per-commit configuration (status
//!   from the series suite's build test of that commit), and a topic without commits of its own
//!   (staging/dev) as the tip the driver-author suite boots;
//! - one test per result of every kernel suite (the host suite tests the tool, not a kernel, and
//!   is left out), on the build it ran on, with its boot's console as the log and the failure's
//!   detail as the excerpt. Test paths are the suite and the test's name, each dot-separated
//!   part reduced to the characters the schema allows; the name as printed is the comment.
//!
//! What it writes is validated with the pinned kcidb-io before the command succeeds.

use crate::ctx::Ctx;
use crate::results::ktap::Outcome;
use crate::results::report::{Report, SuiteResult, TestResult};
use crate::series::read_topic_dir;
use crate::series::topics::Topic;
use crate::series::tree::ToolTree;
use crate::setup::{Toolchain, BASE_TAG};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::setup::KCIDB_SCHEMA as SCHEMA_VERSION;
/// Validates the JSON file named by its first argument against the latest schema, exactly
/// (formats included); prints the validator's message and exits 1 when invalid.
const VALIDATE_SCRIPT: &str = "import json, sys, kcidb_io, jsonschema
data = json.load(open(sys.argv[1]))
try:
    kcidb_io.schema.LATEST.validate_exactly(data)
except jsonschema.exceptions.ValidationError as e:
    print(e.message, 'at', '/'.join(str(p) for p in e.absolute_path))
    sys.exit(1)";
/// The origin of every object: this project's CI.
const ORIGIN: &str = "nova";
/// The longest `log_excerpt` the schema takes.
const MAX_EXCERPT: usize = 16384;

/// One topic as a checkout.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// The topic's folder under `series/` (`rust-device`).
    pub topic: String,
    /// Its branch (`staging/rust-device`).
    pub branch: String,
    /// The base commit the patches apply to.
    pub base_commit: String,
    /// The base's tag (`v6.12.117-deb12u1`).
    pub base_name: String,
    /// The topic's tip commit in the tool's tree.
    pub tip_commit: String,
    /// The patches applied on the base, in order (ancestors' first), as `git format-patch`
    /// files: name and content.
    pub patches: Vec<(String, Vec<u8>)>,
    /// Its commits (in order) with their trees and subjects: the kernels built from it.
    pub commits: Vec<Commit>,
    /// The tree of its tip.
    pub tip_tree: String,
}

/// One commit of a topic.
#[derive(Clone, Debug)]
pub struct Commit {
    /// The commit hash.
    pub hash: String,
    /// Its tree.
    pub tree: String,
    /// Its subject.
    pub subject: String,
}

/// Everything a report is made of.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    /// Identifies this run among the origin's (the start time and the tip's tree, say).
    pub run_id: String,
    /// When the run started (RFC 3339).
    pub start_time: String,
    /// The topics, in the series' order.
    pub checkouts: Vec<Checkout>,
    /// The per-commit configuration's name (its fragments).
    pub config_name: String,
    /// The compilers, as the toolchain reports them.
    pub compiler: String,
    /// The suites' results.
    pub report: &'a Report,
    /// Which topic branch each kernel suite ran on; `None`: the series suite, whose tests name
    /// their topic (and commit) themselves; a suite not listed is left out.
    pub suite_branches: Vec<(String, Option<String>)>,
}

/// A test path part: the characters the schema allows (`[a-zA-Z0-9_-]`), others as `_`.
fn path_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The test path of `test` in `suite`: the suite's name, then the test's dot-separated parts
/// (the suite's name once, where the test's name starts with it), empty parts left out.
pub fn test_path(suite: &str, test: &str) -> String {
    let name = test
        .strip_prefix(suite)
        .and_then(|r| r.strip_prefix('.'))
        .unwrap_or(test);
    std::iter::once(suite)
        .chain(name.split('.'))
        .filter(|p| !p.is_empty())
        .map(path_part)
        .collect::<Vec<_>>()
        .join(".")
}

/// A `file://` URI for a local path (characters outside RFC 3986's unreserved set and `/`
/// percent-encoded).
pub fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The schema's patch set hash: sha256 over each patch's sha256 (hex, newline-terminated).
pub fn patchset_hash(patches: &[(String, Vec<u8>)]) -> String {
    if patches.is_empty() {
        return String::new();
    }
    let lines: String = patches
        .iter()
        .map(|(_, p)| format!("{}\n", crate::util::sha256(p)))
        .collect();
    crate::util::sha256(lines.as_bytes())
}

fn checkout_id(c: &Checkout) -> String {
    format!("{ORIGIN}:{}:{}", c.topic, c.tip_commit)
}

fn build_id(tree: &str, config: &str) -> String {
    format!(
        "{ORIGIN}:{tree}:{}",
        &crate::util::sha256(config.as_bytes())[..12]
    )
}

fn status(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Skip => "SKIP",
    }
}

/// The test of the series suite that says whether `commit` (number `n` of `topic`) built.
fn build_test<'r>(
    series: Option<&'r SuiteResult>,
    topic: &str,
    n: usize,
) -> Option<&'r TestResult> {
    let prefix = format!("series.builds.{topic}.{n:04} ");
    series?.tests.iter().find(|t| t.name.starts_with(&prefix))
}

/// The build a test of the series suite belongs to: the commit its name numbers, else its
/// topic's tip, else the series' tip.
fn series_test_build(input: &Input, name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split(['.', ' ']).collect();
    let topic = input
        .checkouts
        .iter()
        .find(|c| parts.contains(&c.topic.as_str()))
        .or_else(|| input.checkouts.last())?;
    let n = parts
        .iter()
        .skip_while(|p| **p != topic.topic)
        .nth(1)
        .and_then(|p| (p.len() == 4).then(|| p.parse::<usize>().ok()).flatten());
    let tree = match n {
        Some(n) if (1..=topic.commits.len()).contains(&n) => &topic.commits[n - 1].tree,
        _ => &topic.tip_tree,
    };
    Some(build_id(tree, &input.config_name))
}

/// Truncates `s` to at most `max` bytes, at a character boundary, keeping its end (where a
/// failure's reason usually is).
fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The report for `input`.
pub fn document(input: &Input) -> Value {
    let series = input.report.suites.iter().find(|s| s.name == "series");
    let mut checkouts = Vec::new();
    let mut builds = Vec::new();
    for c in &input.checkouts {
        checkouts.push(json!({
            "id": checkout_id(c),
            "origin": ORIGIN,
            "tree_name": "nova",
            "git_commit_hash": c.base_commit,
            "git_commit_name": c.base_name,
            "git_repository_branch": c.branch,
            "patchset_hash": patchset_hash(&c.patches),
            "start_time": input.start_time,
            "valid": true,
            "misc": {"tip_commit": c.tip_commit, "patches": c.patches.len()},
        }));
        let mut kernels: Vec<(&Commit, Option<Outcome>)> = c
            .commits
            .iter()
            .enumerate()
            .map(|(i, k)| (k, build_test(series, &c.topic, i + 1).map(|t| t.outcome)))
            .collect();
        let merge = Commit {
            hash: c.tip_commit.clone(),
            tree: c.tip_tree.clone(),
            subject: format!("{} (merge)", c.branch),
        };
        if c.commits.is_empty() {
            kernels.push((&merge, None));
        }
        for (k, outcome) in kernels {
            let mut b = json!({
                "id": build_id(&k.tree, &input.config_name),
                "checkout_id": checkout_id(c),
                "origin": ORIGIN,
                "comment": k.subject,
                "start_time": input.start_time,
                "architecture": "x86_64",
                "compiler": input.compiler,
                "config_name": input.config_name,
                "command": "make LLVM=-14 CLIPPY=1 bzImage modules",
                "misc": {"commit": k.hash, "tree": k.tree},
            });
            if let Some(o) = outcome {
                b["status"] = json!(status(o));
            }
            builds.push(b);
        }
    }
    let mut tests = Vec::new();
    for s in &input.report.suites {
        let Some((_, branch)) = input.suite_branches.iter().find(|(n, _)| *n == s.name) else {
            continue;
        };
        let suite_build = match branch {
            Some(b) => input
                .checkouts
                .iter()
                .find(|c| &c.branch == b)
                .map(|c| build_id(&c.tip_tree, &input.config_name)),
            None => None,
        };
        // A test the suite added after its boot has no console of its own: the suite's, if it
        // had one boot.
        let mut consoles: Vec<&PathBuf> = s.tests.iter().filter_map(|t| t.log.as_ref()).collect();
        consoles.dedup();
        let only_console = (consoles.len() == 1).then(|| consoles[0]);
        for (i, t) in s.tests.iter().enumerate() {
            let build = match branch {
                Some(_) => suite_build.clone(),
                None => series_test_build(input, &t.name),
            };
            let Some(build) = build else { continue };
            let mut v = json!({
                "id": format!("{ORIGIN}:{}:{}:{i}", input.run_id, s.name),
                "build_id": build,
                "origin": ORIGIN,
                "path": test_path(&s.name, &t.name),
                "comment": t.name,
                "status": status(t.outcome),
                "start_time": input.start_time,
                "misc": {"suite": s.name},
            });
            if let Some(log) = t.log.as_ref().or(only_console) {
                v["log_url"] = json!(file_uri(log));
            }
            if !t.detail.is_empty() {
                v["log_excerpt"] = json!(tail(&t.detail, MAX_EXCERPT));
            }
            tests.push(v);
        }
    }
    let (major, minor) = (5, 3);
    json!({
        "version": {"major": major, "minor": minor},
        "checkouts": checkouts,
        "builds": builds,
        "tests": tests,
    })
}

/// What a report of `report` is made of, from the series as the check tree has it (applied
/// again if needed) and the toolchain; `started`: when the run began (RFC 3339);
/// `suite_branches`: see [`Input::suite_branches`]; `config`: the per-commit configuration's
/// fragments.
pub fn collect<'a>(
    ctx: &Ctx,
    tc: &Toolchain,
    report: &'a Report,
    started: &str,
    suite_branches: Vec<(String, Option<String>)>,
    config: &[PathBuf],
) -> Result<Input<'a>> {
    let series = ctx.series()?;
    let topics = &series.topics;
    let check_tree = ToolTree::check(&ctx.build);
    check_tree.apply(series, &tc.base_repo)?;
    let git = check_tree.git();
    let base_commit = git
        .rev(&format!("refs/tags/{BASE_TAG}"))
        .context("the check tree has no base tag")?;
    let tree_of = |rev: &str| -> Result<String> {
        Ok(git
            .run(&["rev-parse", &format!("{rev}^{{tree}}")])?
            .trim()
            .to_string())
    };
    let own_patches = |t: &Topic| -> Result<Vec<(String, Vec<u8>)>> {
        Ok(read_topic_dir(&series.dir, t)?
            .into_iter()
            .filter(|(n, _)| n.ends_with(".patch") && !n.starts_with("0000-"))
            .collect())
    };
    let mut checkouts = Vec::new();
    for t in &topics.topics {
        let ancestors = topics.ancestors(t);
        let mut patches = Vec::new();
        for a in topics
            .topics
            .iter()
            .filter(|a| ancestors.contains(&a.branch))
        {
            patches.extend(own_patches(a)?);
        }
        patches.extend(own_patches(t)?);
        let mut commits = Vec::new();
        for hash in crate::series::own_commits(&git, t)? {
            commits.push(Commit {
                tree: tree_of(&hash)?,
                subject: git
                    .run(&["log", "-1", "--format=%s", &hash])?
                    .trim()
                    .to_string(),
                hash,
            });
        }
        let tip = format!("refs/heads/{}", t.branch);
        checkouts.push(Checkout {
            topic: t.dir.clone(),
            branch: t.branch.clone(),
            base_commit: base_commit.clone(),
            base_name: BASE_TAG.to_string(),
            tip_commit: git
                .rev(&tip)
                .with_context(|| format!("no branch {}", t.branch))?,
            tip_tree: tree_of(&tip)?,
            patches,
            commits,
        });
    }
    let stems: Vec<String> = config
        .iter()
        .map(|f| {
            f.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let version_of = |tool: &str| {
        tc.versions
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{tool}: ")))
            .unwrap_or("unknown")
            .to_string()
    };
    let compact: String = started
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let tip_tree = checkouts
        .last()
        .map(|c| c.tip_tree.clone())
        .unwrap_or_default();
    Ok(Input {
        run_id: format!("{compact}-{}", &tip_tree[..tip_tree.len().min(12)]),
        start_time: started.to_string(),
        checkouts,
        config_name: format!("tinyconfig+{}", stems.join("+")),
        compiler: format!("{}, {}", version_of("rustc"), version_of("clang-14")),
        report,
        suite_branches,
    })
}

/// Writes `doc` to `path` and validates it with kcidb-io (`python`: the venv's).
pub fn write_validated(python: &Path, doc: &Value, path: &Path) -> Result<()> {
    crate::util::write_atomic(path, serde_json::to_string_pretty(doc)?.as_bytes())?;
    validate(python, path)
        .with_context(|| format!("{} is not a valid KCIDB report", path.display()))
}

/// Validates the KCIDB file `path` with kcidb-io; the validator's message on failure.
pub fn validate(python: &Path, path: &Path) -> Result<()> {
    let out = Command::new(python)
        .args(["-c", VALIDATE_SCRIPT])
        .arg(path)
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "kcidb-io: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report with every kind of result and suite the writer maps: a series test per
    /// commit, a topic-level one, a kernel suite with a console and a failure, and the host
    /// suite (left out).
    pub(crate) fn sample_report() -> Report {
        let mut series = SuiteResult::new("series");
        series.tests = vec![
            TestResult::pass("series.builds.rust-device.0001 rust: device: add a thing"),
            TestResult::fail(
                "series.builds.rust-device.0002 rust: more",
                "error[E0308]: \u{2192} mismatched types",
            ),
            TestResult::pass("series.b4.rust-device"),
            TestResult::pass("series.topics-toml"),
        ];
        let mut boot = SuiteResult::new("rust-device");
        let mut t = TestResult::new(
            "rust_doctests_kernel.rust_doctest_kernel_str_rs_0",
            Outcome::Skip,
            "",
        );
        t.log = Some(PathBuf::from("/b/run/rust device/console.log"));
        boot.tests = vec![
            t,
            TestResult::fail("rust-device.sample.probe", "x".repeat(20000)),
        ];
        let mut host = SuiteResult::new("host");
        host.tests = vec![TestResult::pass("tool::works")];
        Report {
            suites: vec![host, series, boot],
        }
    }

    pub(crate) fn sample_input(report: &Report) -> Input<'_> {
        let commits = vec![
            Commit {
                hash: "1".repeat(40),
                tree: "a".repeat(40),
                subject: "rust: device: add a thing".into(),
            },
            Commit {
                hash: "2".repeat(40),
                tree: "b".repeat(40),
                subject: "rust: more".into(),
            },
        ];
        let device = Checkout {
            topic: "rust-device".into(),
            branch: "staging/rust-device".into(),
            base_commit: "0".repeat(40),
            base_name: "v6.12.117-deb12u1".into(),
            tip_commit: "2".repeat(40),
            patches: vec![
                ("0001-a.patch".into(), b"a".to_vec()),
                ("0002-b.patch".into(), b"b".to_vec()),
            ],
            tip_tree: "b".repeat(40),
            commits,
        };
        let dev = Checkout {
            topic: "dev".into(),
            branch: "staging/dev".into(),
            tip_commit: "3".repeat(40),
            tip_tree: "c".repeat(40),
            commits: vec![],
            ..device.clone()
        };
        Input {
            run_id: "20261206T155000Z".into(),
            start_time: "2026-12-06T15:50:00+00:00".into(),
            checkouts: vec![device, dev],
            config_name: "tinyconfig+base+rust-device".into(),
            compiler: "rustc 1.95.0; clang 14".into(),
            report,
            suite_branches: vec![
                ("series".into(), None),
                ("rust-device".into(), Some("staging/rust-device".into())),
            ],
        }
    }

    #[test]
    fn test_paths_take_only_what_the_schema_allows() {
        assert_eq!(
            test_path("series", "series.builds.rust-device.0001 rust: add"),
            "series.builds.rust-device.0001_rust__add"
        );
        assert_eq!(
            test_path("rust-pci", "rust_doctests_kernel.a_b"),
            "rust-pci.rust_doctests_kernel.a_b"
        );
        assert_eq!(test_path("x", "a..b."), "x.a.b");
        assert_eq!(file_uri(Path::new("/a b/c.log")), "file:///a%20b/c.log");
    }

    #[test]
    fn the_patchset_hash_is_the_schema_s() {
        // `printf a > 1.patch; printf b > 2.patch; sha256sum *.patch | cut -c-64 | sha256sum`
        let p = vec![
            ("1.patch".to_string(), b"a".to_vec()),
            ("2.patch".to_string(), b"b".to_vec()),
        ];
        let per: String = ["a", "b"]
            .iter()
            .map(|x| format!("{}\n", crate::util::sha256(x.as_bytes())))
            .collect();
        assert_eq!(patchset_hash(&p), crate::util::sha256(per.as_bytes()));
        assert_eq!(patchset_hash(&[]), "");
    }

    #[test]
    fn results_map_to_checkouts_builds_and_tests() {
        let report = sample_report();
        let doc = document(&sample_input(&report));
        assert_eq!(doc["version"], json!({"major": 5, "minor": 3}));
        let checkouts = doc["checkouts"].as_array().unwrap();
        assert_eq!(checkouts.len(), 2);
        assert_eq!(checkouts[0]["git_repository_branch"], "staging/rust-device");
        let builds = doc["builds"].as_array().unwrap();
        // Two commits of rust-device, one kernel for the merge without commits.
        assert_eq!(builds.len(), 3);
        assert_eq!(builds[0]["status"], "PASS");
        assert_eq!(builds[1]["status"], "FAIL");
        assert!(builds[2].get("status").is_none());
        let tests = doc["tests"].as_array().unwrap();
        // The host suite is left out.
        assert_eq!(tests.len(), 6);
        assert!(tests.iter().all(|t| t["misc"]["suite"] != "host"));
        // A per-commit test is on its commit's build, a topic test on the topic's tip.
        assert_eq!(tests[1]["build_id"], builds[1]["id"]);
        assert_eq!(tests[0]["build_id"], builds[0]["id"]);
        assert_eq!(tests[2]["build_id"], builds[1]["id"]);
        assert_eq!(tests[3]["build_id"], builds[2]["id"]);
        // The boot's console is the log of every test of a one-boot suite.
        assert_eq!(
            tests[4]["log_url"],
            "file:///b/run/rust%20device/console.log"
        );
        assert_eq!(tests[5]["log_url"], tests[4]["log_url"]);
        assert_eq!(tests[4]["status"], "SKIP");
        assert_eq!(tests[5]["log_excerpt"].as_str().unwrap().len(), MAX_EXCERPT);
    }

    /// The sample report, and a broken one, through the pinned kcidb-io (needs its venv: the
    /// host suite names its Python in `NOVA_KCIDB_PYTHON`).
    #[test]
    #[ignore = "needs the kcidb-io venv of setup (NOVA_KCIDB_PYTHON)"]
    fn kcidb_io_accepts_the_report_and_refuses_a_broken_one() {
        let python = PathBuf::from(
            std::env::var_os("NOVA_KCIDB_PYTHON")
                .expect("NOVA_KCIDB_PYTHON names kcidb-io's python"),
        );
        let dir = tempfile::tempdir().unwrap();
        let report = sample_report();
        let mut doc = document(&sample_input(&report));
        write_validated(&python, &doc, &dir.path().join("ok.json")).unwrap();
        doc["tests"][0]["status"] = json!("BROKEN");
        let e = write_validated(&python, &doc, &dir.path().join("bad.json")).unwrap_err();
        assert!(format!("{e:#}").contains("BROKEN"), "{e:#}");
    }
}
