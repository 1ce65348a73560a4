//! Command-line behaviour of the `gpu-model` binary: listing, bad input, socket paths,
//! shutdown by signal.

mod common;

use common::{run, temp_dir, Model};
use gpu_model::profile::PROFILES;
use std::os::unix::process::ExitStatusExt;

/// Bad input must give exactly one `gpu-model: error:` line and no panic.
fn assert_one_line_error(stderr: &[String], needle: &str) {
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(stderr[0].starts_with("gpu-model: error: "), "{stderr:?}");
    assert!(stderr[0].contains(needle), "{stderr:?} lacks {needle:?}");
}

#[test]
fn list_profiles_names_every_profile() {
    let (st, out, err) = run(&["--list-profiles"]);
    assert!(st.success());
    assert!(err.is_empty(), "{err:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        PROFILES.len() + 1,
        "header + one line per profile"
    );
    for p in PROFILES {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(p.name));
        let line = line.unwrap_or_else(|| panic!("{} missing", p.name));
        assert!(
            line.contains(&format!("10de:{:04x}", p.device_id)),
            "{line}"
        );
    }
    assert!(
        out.contains("gh100  10de:2330 030200   180000a1    128G"),
        "{out}"
    );
}

#[test]
fn unknown_profile_is_refused() {
    let dir = temp_dir("unknown-profile");
    let sock = dir.join("gpu.sock");
    let (st, _, err) = run(&["--profile", "gk104", "--socket", sock.to_str().unwrap()]);
    assert_eq!(st.code(), Some(2));
    assert_one_line_error(&err, "unknown profile 'gk104'");
    assert!(!sock.exists());
}

#[test]
fn malformed_sizes_are_refused() {
    let dir = temp_dir("bad-size");
    let sock = dir.join("gpu.sock");
    let s = sock.to_str().unwrap();
    for (size, needle) in [
        ("12Q", "malformed size"),
        ("", "malformed size"),
        ("300M", "not a power of two"),
        ("4K", "outside"),
        ("99999999999999999999", "malformed size"),
    ] {
        let (st, _, err) = run(&["--profile", "gh100", "--socket", s, "--bar1-size", size]);
        assert_eq!(st.code(), Some(2), "{size}");
        assert_one_line_error(&err, needle);
    }
    let (st, _, err) = run(&[
        "--profile",
        "gh100",
        "--socket",
        s,
        "--log-accesses",
        "many",
    ]);
    assert_eq!(st.code(), Some(2));
    assert_one_line_error(&err, "not a count");
}

#[test]
fn malformed_identity_overrides_are_refused() {
    let dir = temp_dir("bad-override");
    let sock = dir.join("gpu.sock");
    let s = sock.to_str().unwrap();
    for (option, value, needle) in [
        ("--boot0", "0x100000000", "does not fit in 32 bits"),
        ("--boot0", "xyz", "is not hex"),
        ("--boot42", "1ffffffff", "does not fit in 32 bits"),
        ("--boot42", "", "is not hex"),
        ("--device-id", "0x10000", "does not fit in 16 bits"),
        ("--device-id", "+2b85", "is not hex"),
        ("--class", "1000000", "does not fit in 24 bits"),
        ("--class", "vga", "is not hex"),
    ] {
        let (st, _, err) = run(&["--profile", "gb202", "--socket", s, option, value]);
        assert_eq!(st.code(), Some(2), "{option} {value}");
        assert_one_line_error(&err, needle);
        assert_one_line_error(&err, &format!("for '{option} <HEX>'"));
        assert!(!sock.exists());
    }
    // The dead profile reads all-ones: a BOOT override would be silently lost.
    for option in ["--boot0", "--boot42"] {
        let (st, _, err) = run(&["--profile", "dead", "--socket", s, option, "0x180000a1"]);
        assert_eq!(st.code(), Some(2), "{option}");
        assert_one_line_error(
            &err,
            &format!("{option} cannot be used with the dead profile"),
        );
        assert!(!sock.exists());
    }
}

#[test]
fn dead_takes_pci_id_overrides() {
    let dir = temp_dir("dead-ids");
    let mut m = Model::start(
        &dir,
        "dead",
        false,
        &["--device-id", "2331", "--class", "0x030000"],
    );
    let ready = m.stderr.last().unwrap().clone();
    assert!(
        ready.contains("10de:2331, class 030000, BOOT0 ffffffff, BOOT42 ffffffff"),
        "{ready}"
    );
    m.signal(libc::SIGTERM);
    assert!(m.wait_exit().success());
}

#[test]
fn missing_and_unknown_arguments_are_refused() {
    let (st, _, err) = run(&["--profile", "gh100"]);
    assert_eq!(st.code(), Some(2));
    assert_one_line_error(&err, "--socket is required");
    let (st, _, err) = run(&["--socket", "/tmp/x.sock"]);
    assert_eq!(st.code(), Some(2));
    assert_one_line_error(&err, "--profile is required");
    let (st, _, err) = run(&["--profile"]);
    assert_eq!(st.code(), Some(2));
    assert_one_line_error(&err, "a value is required for '--profile <NAME>'");
    let (st, _, err) = run(&["--frobnicate"]);
    assert_eq!(st.code(), Some(2));
    assert_one_line_error(&err, "unexpected argument '--frobnicate'");
    let (st, out, _) = run(&["--help"]);
    assert!(st.success());
    assert!(out.contains("Usage: gpu-model"), "{out}");
    assert!(out.contains("--profile <NAME>"), "{out}");
}

#[test]
fn unusable_socket_paths_are_refused() {
    let dir = temp_dir("bad-path");
    let missing = dir.join("no/such/folder/gpu.sock");
    let (st, _, err) = run(&["--profile", "tu102", "--socket", missing.to_str().unwrap()]);
    assert_eq!(st.code(), Some(1));
    assert_one_line_error(&err, "cannot listen on");

    let file = dir.join("regular-file");
    std::fs::write(&file, b"not a socket").unwrap();
    let (st, _, err) = run(&["--profile", "tu102", "--socket", file.to_str().unwrap()]);
    assert_eq!(st.code(), Some(1));
    assert_one_line_error(&err, "is not a socket");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not a socket",
        "left untouched"
    );

    // The control socket path is checked too, and the vfio-user socket is not left behind.
    let sock = dir.join("gpu.sock");
    let (st, _, err) = run(&[
        "--profile",
        "tu102",
        "--socket",
        sock.to_str().unwrap(),
        "--control",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(st.code(), Some(1));
    assert_one_line_error(&err, "cannot listen on");
    assert!(!sock.exists());
}

#[test]
fn a_socket_in_use_is_refused_and_a_stale_one_replaced() {
    let dir = temp_dir("in-use");
    let first = Model::start(&dir, "gh100", false, &[]);
    let (st, _, err) = run(&[
        "--profile",
        "gh100",
        "--socket",
        first.socket.to_str().unwrap(),
    ]);
    assert_eq!(st.code(), Some(1));
    assert_one_line_error(&err, "in use by another server");
    drop(first); // SIGKILL: leaves a stale socket file behind
    assert!(dir.join("gpu.sock").exists());
    let mut second = Model::start(&dir, "gh100", false, &[]);
    second.signal(libc::SIGTERM);
    assert!(second.wait_exit().success());
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let dir = temp_dir(&format!("signal-{sig}"));
        let mut m = Model::start(&dir, "ad102", true, &[]);
        assert!(m.socket.exists());
        m.signal(sig);
        let st = m.wait_exit();
        assert_eq!(st.code(), Some(0), "{:?} {:?}", st.signal(), m.stderr);
        assert!(!m.socket.exists(), "socket removed");
        assert!(
            !m.control.as_ref().unwrap().exists(),
            "control socket removed"
        );
        let summary = m
            .stderr
            .iter()
            .find(|l| l.starts_with("gpu-model: summary: "));
        let summary = summary.unwrap_or_else(|| panic!("no summary: {:?}", m.stderr));
        assert!(
            summary.contains("profile=ad102 off_bus=0 sessions=0"),
            "{summary}"
        );
        assert!(summary.contains(&format!("(signal {sig})")), "{summary}");
        assert!(
            !m.stderr.iter().any(|l| l.contains("panicked")),
            "{:?}",
            m.stderr
        );
    }
}

/// Once whoever read the model's stderr is gone (the harness was killed), writing there fails
/// with EPIPE: the model must still shut down cleanly instead of panicking.
#[test]
fn a_closed_stderr_does_not_make_the_model_panic() {
    use std::io::BufRead;
    let dir = temp_dir("closed-stderr");
    let sock = dir.join("gpu.sock");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-model"))
        .args(["--profile", "gh100", "--socket", sock.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("gpu-model: ready") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no ready line");
    }
    drop(stderr);
    // SAFETY: kill(2) on the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "{st:?}");
    assert!(!sock.exists(), "socket removed");
}
