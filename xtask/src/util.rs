//! Running commands with logs and progress, and small file helpers shared by the steps.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lines of a failed step's log shown to the user.
const TAIL_LINES: usize = 30;

/// Prints the start of a named step.
pub fn announce(step: &str) {
    println!("==> {step}");
}

/// Runs `f` as a named step and prints how long it took.
pub fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    announce(name);
    let t = Instant::now();
    let r = f().with_context(|| format!("step '{name}' failed"))?;
    println!("    {name}: done in {:.1}s", t.elapsed().as_secs_f64());
    Ok(r)
}

/// Describes a command for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command, capturing its output; fails with its stderr when it exits non-zero.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(_) => return String::new(),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a long command with stdout and stderr appended to `log`.
///
/// While it runs, a status line shows the elapsed time and the log's last line (on a terminal),
/// or a line every 30 s otherwise. On failure the error carries the log's tail and path.
pub fn run_logged(label: &str, cmd: &mut Command, log: &Path) -> Result<()> {
    run_logged_progress(label, cmd, log, None)
}

/// Counts the newlines a growing file gained since `offset`, advancing `offset`.
fn count_new_lines(path: &Path, offset: &mut u64) -> usize {
    let Ok(mut f) = fs::File::open(path) else {
        return 0;
    };
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    *offset += buf.len() as u64;
    buf.iter().filter(|b| **b == b'\n').count()
}

/// [`run_logged`] with a progress percentage when the number of log lines a complete run
/// writes is known (`expected_lines`, e.g. from the previous full build).
pub fn run_logged_progress(
    label: &str,
    cmd: &mut Command,
    log: &Path,
    expected_lines: Option<usize>,
) -> Result<()> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut file = fs::OpenOptions::new().create(true).append(true).open(log)?;
    writeln!(file, "$ {}", describe(cmd))?;
    let mut offset = file.metadata()?.len();
    let err = file.try_clone()?;
    die_with_parent(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    let tty = std::io::stdout().is_terminal();
    let t = Instant::now();
    let mut last_report = 0;
    let mut lines = 0;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(250));
        lines += count_new_lines(log, &mut offset);
        let secs = t.elapsed().as_secs();
        let pct = expected_lines
            .filter(|n| *n > 0)
            .map(|n| format!(" {:>3}%", (lines * 100 / n).min(99)))
            .unwrap_or_default();
        if tty {
            let last = tail(log, 1);
            let mut line = format!("    [{secs:>4}s{pct}] {label}: {}", last.trim());
            // At a character boundary: the log's last line may hold any UTF-8.
            let mut end = line.len().min(100);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        } else if secs >= last_report + 30 {
            last_report = secs;
            if secs > 0 {
                println!("    [{secs:>4}s{pct}] {label} ...");
            }
        }
    };
    if tty {
        print!("\r\x1b[2K");
        let _ = std::io::stdout().flush();
    }
    if !status.success() {
        bail!(
            "{label} failed ({status}); last lines of {}:\n{}\n(full log: {})",
            log.display(),
            tail(log, TAIL_LINES),
            log.display()
        );
    }
    Ok(())
}

/// Makes the child of `cmd` receive SIGTERM when this process dies, so that a killed tool
/// leaves no make (or compiler) running in a build folder it no longer has locked.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes the child of `cmd` inherit descriptor `fd` (which this process opened close-on-exec),
/// and with it whatever `flock` lock `fd` holds: the lock is released only when this process
/// and every process that inherited the descriptor have closed it.
pub fn inherit_fd(cmd: &mut Command, fd: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls fcntl(2),
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A child process that is killed and reaped when the guard is dropped: on every way out of the
/// code that owns it (`?`, a panic, the normal end). With [`die_with_parent`] on its command it
/// also dies when this process is killed.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Writes `contents` to `path` atomically (a temporary file of its own in the same folder, then
/// a rename), creating parent folders. Two runs writing the same path (the shared cache) never
/// share a temporary file, and a write that fails removes its own.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().context("path without parent")?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            path.file_name().unwrap_or_default().to_string_lossy()
        ))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot make a temporary file in {}", dir.display()))?;
    tmp.write_all(contents)
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The current time in UTC as RFC 3339 (`2026-12-06T15:49:41+00:00`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// `secs` after the Unix epoch as RFC 3339 in UTC (civil date from days: Howard Hinnant's
/// algorithm).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The entries of folder `dir`, sorted by path.
pub fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// A "done" marker: a step's output is valid only when its stamp exists and records the same key.
///
/// Stamps are written last, after the output is complete, so an interrupted step is redone.
pub struct Stamp(PathBuf);

impl Stamp {
    /// The stamp at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self(path)
    }

    /// Whether the stamp records exactly `key`.
    pub fn is_done(&self, key: &str) -> bool {
        fs::read_to_string(&self.0)
            .map(|s| s == key)
            .unwrap_or(false)
    }

    /// Records `key` as done.
    pub fn mark(&self, key: &str) -> Result<()> {
        write_atomic(&self.0, key.as_bytes())
    }

    /// Forgets the stamp (before redoing the step).
    pub fn clear(&self) -> Result<()> {
        match fs::remove_file(&self.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Runs `c` as on a machine with no configuration of its user: an empty HOME (`home`, made
/// afresh, the XDG folders inside it), no global or system git configuration, the C locale. Cargo and rustup keep their own homes, so
/// the toolchain and the crate cache stay the ones in use.
pub fn hermetic(c: &mut Command, home: &Path) -> Result<()> {
    remove_dir(home)?;
    std::fs::create_dir_all(home)?;
    let user_home = std::env::var_os("HOME").map(PathBuf::from);
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let dir = std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| user_home.as_ref().map(|h| h.join(default)));
        if let Some(dir) = dir {
            c.env(var, dir);
        }
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C");
    Ok(())
}

/// Hex SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Removes a folder tree if it exists.
pub fn remove_dir(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// A path for a unix socket named `name` that belongs in `dir`: inside `dir` when the path fits
/// the kernel's 108-byte limit, else in a per-folder directory under the system's temp folder.
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    if p.as_os_str().len() < 100 {
        return p;
    }
    let short = sha256(dir.as_os_str().as_encoded_bytes());
    let d = std::env::temp_dir().join(format!("nova-xtask-{}", &short[..12]));
    let _ = fs::create_dir_all(&d);
    d.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        // `date -u -d @1796572181 +%FT%T`
        assert_eq!(rfc3339(1_796_572_181), "2026-12-06T15:49:41+00:00");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00+00:00");
    }

    /// Not a test on its own: the stand-in for the tool in `children_die_with_the_tool`. It
    /// starts one child with [`die_with_parent`] and one without, prints their pids, and waits
    /// to be killed.
    #[test]
    // The helper is killed with its children unreaped on purpose: that is the case under test.
    #[allow(clippy::zombie_processes)]
    fn orphan_helper() {
        if std::env::var_os("XTASK_ORPHAN_HELPER").is_none() {
            return;
        }
        let mut guarded = Command::new("sleep");
        guarded.arg("60");
        die_with_parent(&mut guarded);
        let guarded = guarded.spawn().unwrap();
        let plain = Command::new("sleep").arg("60").spawn().unwrap();
        println!("pids {} {}", guarded.id(), plain.id());
        std::thread::sleep(Duration::from_secs(60));
    }

    fn alive(pid: u32) -> bool {
        // A process that is gone, or a zombie waiting for its new parent to reap it.
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
            .unwrap_or(false)
    }

    /// SIGKILL of the tool leaves no child of [`die_with_parent`] behind (QEMU, gpu-model, make),
    /// while a child started without it survives (so the test can tell).
    #[test]
    fn children_die_with_the_tool() {
        let mut tool = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "util::tests::orphan_helper", "--nocapture"])
            .env("XTASK_ORPHAN_HELPER", "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(tool.stdout.take().unwrap());
        let line = std::io::BufRead::lines(out)
            .map_while(|l| l.ok())
            .find(|l| l.starts_with("pids "))
            .unwrap();
        let pids: Vec<u32> = line[5..].split(' ').map(|p| p.parse().unwrap()).collect();
        assert!(alive(pids[0]) && alive(pids[1]));
        tool.kill().unwrap();
        tool.wait().unwrap();
        let t = Instant::now();
        while alive(pids[0]) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (guarded_survived, plain_survived) = (alive(pids[0]), alive(pids[1]));
        for pid in pids {
            // SAFETY: kill(2) has no memory-safety requirements; the pids are the helper's
            // children, which nobody else reaps or reuses while they are alive.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        assert!(!guarded_survived, "the guarded child outlived the tool");
        assert!(
            plain_survived,
            "the control child died too: the test proves nothing"
        );
    }

    #[test]
    fn socket_paths_stay_short() {
        assert_eq!(
            socket_path(Path::new("/r"), "q.sock"),
            Path::new("/r/q.sock")
        );
        let long = Path::new("/x").join("y".repeat(120));
        let p = socket_path(&long, "gpu-control.sock");
        assert!(p.as_os_str().len() < 108, "{}", p.display());
        assert_eq!(
            p,
            socket_path(&long, "gpu-control.sock"),
            "stable per folder"
        );
    }
}
