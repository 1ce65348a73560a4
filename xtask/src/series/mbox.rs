//! `series mbox`: each topic of `series/` as the threaded mail a reviewer receives, and the
//! check that `b4 am` turns that mail back into the topic branch.
//!
//! The mail is the exported patches with what sending adds: a Message-Id per message, the
//! patches threaded under the cover letter (In-Reply-To, References), and To/Cc from the tip's
//! `scripts/get_maintainer.pl` (maintainers and reviewers in To, lists in Cc; the cover letter
//! goes to everyone a patch goes to). Message-Ids are derived from the topic's content, so the
//! same series always gives the same mbox.

use crate::git::Git;
use crate::series::topics::Topic;
use crate::series::tree::ToolTree;
use crate::series::{parent_ref, read_topic_dir};
use crate::util::{self, sha256};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The Message-Id (without angle brackets) of message `n` (0: the cover letter) of topic `t`,
/// whose files digest to `digest`.
fn message_id(t: &Topic, digest: &str, n: usize) -> String {
    format!("nova-{}-{}-{n}@nova.localhost", t.dir, &digest[..12])
}

/// Addresses `get_maintainer.pl` (run in `tree`, the tip) gives for `patch`: (to, cc).
fn recipients(tree: &Path, patch: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let run = |roles: &[&str]| -> Result<Vec<String>> {
        let mut c = Command::new("perl");
        c.current_dir(tree)
            .args([
                "scripts/get_maintainer.pl",
                "--no-git",
                "--no-git-fallback",
                "--no-rolestats",
                "--no-tree",
            ])
            .args(roles)
            .arg(patch);
        let out = util::output(&mut c)?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| l.contains('@'))
            .map(str::to_string)
            .collect())
    };
    Ok((
        run(&["--m", "--r", "--no-l"])?,
        run(&["--no-m", "--no-r", "--l"])?,
    ))
}

/// Inserts `headers` at the end of the header block of one message.
fn add_headers(message: &str, headers: &[String]) -> Result<String> {
    let (head, body) = message
        .split_once("\n\n")
        .context("a patch without a header block")?;
    let mut out = String::from(head);
    for h in headers {
        out.push('\n');
        out.push_str(h);
    }
    out.push_str("\n\n");
    out.push_str(body);
    Ok(out)
}

/// Topic `t` of `series_dir` as one threaded mbox, addressed with the maintainers file of
/// `tree`; `None` for a topic without patches.
pub fn topic_mbox(tree: &Path, series_dir: &Path, t: &Topic) -> Result<Option<String>> {
    let files = read_topic_dir(series_dir, t)?;
    if files.is_empty() {
        return Ok(None);
    }
    if !files.contains_key("0000-cover-letter.patch") {
        bail!("series/{} has no cover letter", t.dir);
    }
    let mut all = String::new();
    for (name, data) in &files {
        all.push_str(name);
        all.push_str(&sha256(data));
    }
    let digest = sha256(all.as_bytes());
    let cover_id = message_id(t, &digest, 0);
    let (mut to_all, mut cc_all) = (BTreeSet::new(), BTreeSet::new());
    let mut patches = Vec::new();
    for (n, (name, data)) in files.iter().enumerate().skip(1) {
        let (to, cc) = recipients(tree, &series_dir.join(&t.dir).join(name))?;
        to_all.extend(to.iter().cloned());
        cc_all.extend(cc.iter().cloned());
        let text = String::from_utf8(data.clone())
            .with_context(|| format!("series/{}/{name} is not UTF-8", t.dir))?;
        let mut headers = vec![
            format!("Message-Id: <{}>", message_id(t, &digest, n)),
            format!("In-Reply-To: <{cover_id}>"),
            format!("References: <{cover_id}>"),
        ];
        if !to.is_empty() {
            headers.push(address_header("To", &to));
        }
        if !cc.is_empty() {
            headers.push(address_header("Cc", &cc));
        }
        patches.push(add_headers(&text, &headers)?);
    }
    let cover = String::from_utf8(files["0000-cover-letter.patch"].clone())
        .context("the cover letter is not UTF-8")?;
    let mut headers = vec![format!("Message-Id: <{cover_id}>")];
    let to_all: Vec<String> = to_all.into_iter().collect();
    let cc_all: Vec<String> = cc_all.into_iter().filter(|a| !to_all.contains(a)).collect();
    if !to_all.is_empty() {
        headers.push(address_header("To", &to_all));
    }
    if !cc_all.is_empty() {
        headers.push(address_header("Cc", &cc_all));
    }
    let mut mbox = add_headers(&cover, &headers)?;
    for p in patches {
        if !mbox.ends_with('\n') {
            mbox.push('\n');
        }
        mbox.push_str(&p);
    }
    Ok(Some(mbox))
}

/// The cover letter's Message-Id of an mbox made by [`topic_mbox`].
pub fn cover_id(mbox: &str) -> Option<&str> {
    mbox.lines()
        .find_map(|l| l.strip_prefix("Message-Id: <"))
        .and_then(|l| l.strip_suffix('>'))
}

/// What b4 complained about in its output (missing patches, an incomplete thread, ...).
fn b4_complaints(said: &str) -> Vec<String> {
    said.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("WARNING") || l.starts_with("ERROR") || l.contains("CRITICAL"))
        .map(|l| format!("b4: {l}"))
        .collect()
}

/// An address as a mail header carries it: a display name that is not ASCII is RFC 2047
/// encoded (`=?UTF-8?q?...?=`).
fn header_address(addr: &str) -> String {
    let Some((name, rest)) = addr.rsplit_once(" <") else {
        return addr.to_string();
    };
    if name.is_ascii() {
        return addr.to_string();
    }
    let name = name.trim_matches('"');
    let mut q = String::from("=?UTF-8?q?");
    for b in name.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => q.push(b as char),
            b' ' => q.push('_'),
            _ => q.push_str(&format!("={b:02X}")),
        }
    }
    q.push_str("?=");
    format!("{q} <{rest}")
}

/// A To or Cc header listing `addrs`, one per continuation line.
fn address_header(name: &str, addrs: &[String]) -> String {
    let list: Vec<String> = addrs.iter().map(|a| header_address(a)).collect();
    format!("{name}: {}", list.join(",\n    "))
}

/// Feeds `mbox` (topic `t`) to `b4 am` and applies what b4 produces with `git am` on the topic's
/// parents in a work tree of the check tree `check`; returns the problems: b4's complaints, a
/// failed apply, or a tree that differs from the topic branch's. `work`, the topic's folder
/// ([`crate::series::tree::b4_work`]), is emptied first.
pub fn b4_round_trip(
    b4: &Path,
    check: &ToolTree,
    work: &Path,
    t: &Topic,
    mbox: &str,
) -> Vec<String> {
    match b4_round_trip_inner(b4, check, work, t, mbox) {
        Ok(problems) => problems,
        Err(e) => vec![format!("{e:#}")],
    }
}

fn b4_round_trip_inner(
    b4: &Path,
    check: &ToolTree,
    work: &Path,
    t: &Topic,
    mbox: &str,
) -> Result<Vec<String>> {
    util::remove_dir(work)?;
    std::fs::create_dir_all(work)?;
    let input = work.join("thread.mbx");
    std::fs::write(&input, mbox)?;
    let id = cover_id(mbox).context("the mbox has no Message-Id")?;
    let mut c = Command::new(b4);
    // b4 reads git configuration and keeps caches in HOME: neither may be the user's.
    util::hermetic(&mut c, &work.join("home"))?;
    c.current_dir(&check.dir)
        .args(["--offline-mode", "am", "--no-cache", "-T", "-m"])
        .arg(&input)
        .arg("-o")
        .arg(work)
        .args(["-n", "am", id]);
    let out = c.output().context("cannot start b4")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(work.join("b4.log"), &said)?;
    let mut problems = b4_complaints(&said);
    if !out.status.success() {
        problems.push(format!("b4 am failed ({}):\n{}", out.status, said.trim()));
        return Ok(problems);
    }
    let am = work.join("am.mbx");
    if !am.exists() {
        problems.push(format!("b4 am wrote no am.mbx:\n{}", said.trim()));
        return Ok(problems);
    }
    // Apply on the topic's parents (a merge topic's other parents merged first, as materialise
    // does), in a work tree of its own.
    let wt = check.worktree(work, &parent_ref(&t.parents[0]))?;
    let tree = wt.git();
    let result = (|| -> Result<Vec<String>> {
        if t.parents.len() > 1 {
            let mut args = vec!["merge", "-q", "--no-ff", "--no-edit"];
            let others: Vec<String> = t.parents[1..].iter().map(|p| parent_ref(p)).collect();
            args.extend(others.iter().map(String::as_str));
            tree.run(&args)?;
        }
        let mut am_cmd = tree.cmd(&["am", "-q", "--no-3way"]);
        am_cmd.arg(&am);
        if let Err(e) = Git::run_cmd(am_cmd) {
            let _ = tree.run(&["am", "--abort"]);
            return Ok(vec![format!("git am of b4's output fails: {e}")]);
        }
        let got = tree.run(&["rev-parse", "HEAD^{tree}"])?;
        let want = check
            .git()
            .run(&["rev-parse", &format!("refs/heads/{}^{{tree}}", t.branch)])?;
        Ok(if got.trim() == want.trim() {
            Vec::new()
        } else {
            vec![format!(
                "b4 am + git am give tree {} but {} is {}",
                got.trim(),
                t.branch,
                want.trim()
            )]
        })
    })();
    drop(wt);
    problems.extend(result?);
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_go_at_the_end_of_the_header_block() {
        let m = "From 0 Mon\nFrom: A <a@x>\nSubject: s\n\nbody\n\nmore\n";
        let got = add_headers(m, &["Message-Id: <1@x>".into()]).unwrap();
        assert_eq!(
            got,
            "From 0 Mon\nFrom: A <a@x>\nSubject: s\nMessage-Id: <1@x>\n\nbody\n\nmore\n"
        );
        assert_eq!(cover_id(&got), Some("1@x"));
    }

    #[test]
    fn non_ascii_names_are_encoded() {
        assert_eq!(
            header_address("\"Björn Roy Baron\" <b@x>"),
            "=?UTF-8?q?Bj=C3=B6rn_Roy_Baron?= <b@x>"
        );
        assert_eq!(header_address("Miguel Ojeda <m@x>"), "Miguel Ojeda <m@x>");
        assert_eq!(header_address("list@x"), "list@x");
    }

    /// b4 0.16.0's own words on a thread that misses patch 3 of 10 (recorded).
    #[test]
    fn b4_complaints_are_found() {
        let said = "Running in OFFLINE mode\nAnalyzing 10 messages in the thread\n---\n  \
                    ERROR: missing [3/10]!\n---\nTotal patches: 9\n---\nWARNING: Thread \
                    incomplete!\nCover: /t/am.cover\n";
        assert_eq!(
            b4_complaints(said),
            [
                "b4: ERROR: missing [3/10]!",
                "b4: WARNING: Thread incomplete!"
            ]
        );
        assert!(b4_complaints("Total patches: 10\nCover: /t/am.cover\n").is_empty());
    }
}
