//! Loading and unloading kernel modules with busybox `insmod`/`rmmod`.

use std::path::Path;
use std::process::Command;

/// The name a module file loads as: the file name without `.ko`, with `-` as `_`.
///
/// `Err` when the file name does not end in `.ko` or is only `.ko`.
pub fn module_name(path: &Path) -> Result<String, String> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.strip_suffix(".ko") {
        Some(stem) if !stem.is_empty() => Ok(stem.replace('-', "_")),
        _ => Err(format!("'{}' is not a .ko file", path.display())),
    }
}

/// Loads the module file `path` (`insmod PATH`). `Err` holds the command and its output.
pub fn insmod(path: impl AsRef<Path>) -> Result<(), String> {
    run("insmod", path.as_ref())
}

/// Unloads a module, given by name or by file (`rmmod NAME`). `Err` holds the command and its
/// output.
pub fn rmmod(name_or_path: impl AsRef<Path>) -> Result<(), String> {
    run("rmmod", name_or_path.as_ref())
}

/// Whether the text of `/proc/modules` lists module `name`.
pub fn lists_module(proc_modules: &str, name: &str) -> bool {
    proc_modules
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// Whether `/proc/modules` lists module `name` (`false` when it cannot be read).
pub fn is_loaded(name: &str) -> bool {
    std::fs::read_to_string("/proc/modules").is_ok_and(|text| lists_module(&text, name))
}

/// `insmod PATH` started in the background, for callers that read the kernel log meanwhile.
///
/// A child process rather than a thread: the guest kernel may lack futexes, which the
/// standard library's threads need.
pub struct Insmod {
    child: std::process::Child,
    path: std::path::PathBuf,
}

impl Insmod {
    /// Starts `insmod PATH`.
    pub fn start(path: impl AsRef<Path>) -> Result<Self, String> {
        let path = path.as_ref().to_path_buf();
        let child = Command::new("insmod")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run insmod: {e}"))?;
        Ok(Self { child, path })
    }

    /// The outcome of `insmod` once it has exited (as [`insmod`] gives it), `None` before.
    pub fn poll(&mut self) -> Option<Result<(), String>> {
        match self.child.try_wait() {
            Ok(None) => None,
            Err(e) => Some(Err(format!("waiting for insmod: {e}"))),
            Ok(Some(_)) => {
                let mut out = Vec::new();
                let mut err = Vec::new();
                use std::io::Read;
                if let Some(mut o) = self.child.stdout.take() {
                    let _ = o.read_to_end(&mut out);
                }
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_end(&mut err);
                }
                let status = self.child.wait().map_err(|e| format!("insmod: {e}"));
                Some(status.and_then(|status| {
                    outcome(
                        "insmod",
                        &self.path,
                        std::process::Output {
                            status,
                            stdout: out,
                            stderr: err,
                        },
                    )
                }))
            }
        }
    }
}

/// Runs `cmd arg`; on failure, `Err` with the command, its exit status and its output
/// (stderr then stdout) on one line.
fn run(cmd: &str, arg: &Path) -> Result<(), String> {
    let out = Command::new(cmd)
        .arg(arg)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    outcome(cmd, arg, out)
}

/// The outcome of `cmd arg` from its output, as [`run`] gives it.
fn outcome(cmd: &str, arg: &Path, out: std::process::Output) -> Result<(), String> {
    if out.status.success() {
        return Ok(());
    }
    let mut msg = String::from_utf8_lossy(&out.stderr).into_owned();
    msg.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(format!(
        "{cmd} {} failed ({}): {}",
        arg.display(),
        out.status,
        msg.split_whitespace().collect::<Vec<_>>().join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_named_and_found() {
        assert_eq!(
            module_name(Path::new("/lib/modules/rust-driver_platform.ko")),
            Ok("rust_driver_platform".into())
        );
        assert!(module_name(Path::new(".ko")).is_err());
        assert!(module_name(Path::new("/lib/x.o")).is_err());
        assert!(module_name(Path::new("/")).is_err());
        let text = "rust_driver_platform 16384 0 - Live 0x0000000000000000\n\
                    rust_driver_platform2 16384 0 - Live 0x0000000000000000\n";
        assert!(lists_module(text, "rust_driver_platform"));
        assert!(!lists_module(text, "rust_driver"));
        assert!(!lists_module("", "rust_driver_platform"));
    }

    #[test]
    fn a_failing_command_gives_its_output() {
        // `sh FILE` on a missing file: fails with a message, changes nothing.
        let e = run("sh", Path::new("/nonexistent/guest-kmod-test")).unwrap_err();
        assert!(
            e.starts_with("sh /nonexistent/guest-kmod-test failed (exit status: "),
            "{e}"
        );
        assert!(e.contains("guest-kmod-test"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = run("/nonexistent/insmod", Path::new("x.ko")).unwrap_err();
        assert!(e.starts_with("cannot run /nonexistent/insmod: "), "{e}");
        assert_eq!(run("true", Path::new("x")), Ok(()));
    }
}
