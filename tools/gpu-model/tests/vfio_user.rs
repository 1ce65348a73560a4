//! End to end over the vfio-user protocol: the built `gpu-model` binary against the
//! `vfio_user::Client` of the same crate QEMU's protocol is implemented by, as QEMU would
//! drive it (version handshake, device/region/irq info, region reads and writes, reset,
//! reconnect), plus the control socket.

mod common;

use common::{temp_dir, Model};
use gpu_model::bar0::UNWRITTEN;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use vfio_user::Client;

const CONFIG: u32 = 7;

fn read32(c: &mut Client, region: u32, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    c.region_read(region, offset, &mut b).expect("region_read");
    u32::from_le_bytes(b)
}

fn write32(c: &mut Client, region: u32, offset: u64, v: u32) {
    c.region_write(region, offset, &v.to_le_bytes())
        .expect("region_write");
}

fn connect(m: &Model) -> Client {
    Client::new(&m.socket).expect("vfio-user handshake")
}

/// A vfio-user message header: message id, command, message size, flags, error.
fn header(id: u16, cmd: u16, size: u32, flags: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&id.to_le_bytes());
    h.extend_from_slice(&cmd.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

/// Reads what the server sends on `s` until it ends the connection (EOF or reset) and
/// returns it; fails if the connection is still open after `timeout`.
fn read_until_closed(s: &mut UnixStream, timeout: Duration, what: &str) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut got = vec![];
    let mut buf = [0u8; 256];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .unwrap_or_else(|| panic!("{what}: connection still open, got {got:02x?}"));
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!("{what}: still open after {timeout:?} (the server reads on), got {got:02x?}")
            }
            Err(e) => panic!("{what}: reading: {e}"),
        }
    }
}

fn control(m: &Model, cmd: &str) -> String {
    let s = UnixStream::connect(m.control.as_ref().expect("control socket")).unwrap();
    let mut w = s.try_clone().unwrap();
    writeln!(w, "{cmd}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

#[test]
fn identity_registers_and_regions() {
    let dir = temp_dir("identity");
    let m = Model::start(&dir, "gh100", false, &[]);
    let mut c = connect(&m);
    assert_eq!(c.region(0).map(|r| r.size), Some(16 << 20));
    assert_eq!(c.region(1).map(|r| r.size), Some(128 << 30));
    assert_eq!(c.region(3).map(|r| r.size), Some(32 << 20));
    assert_eq!(c.region(CONFIG).map(|r| r.size), Some(4096));
    assert_eq!(c.region(2).map(|r| r.size), Some(0));
    assert_eq!(c.get_irq_info(3).unwrap().count, 1, "ERR irq");
    assert_eq!(c.get_irq_info(1).unwrap().count, 1, "MSI");

    assert_eq!(read32(&mut c, CONFIG, 0), 0x2330_10de);
    assert_eq!(read32(&mut c, CONFIG, 8), 0x0302_00a1);
    assert_eq!(read32(&mut c, 0, 0), 0x1800_00a1, "BOOT0");
    assert_eq!(read32(&mut c, 0, 0xa00), 0x180a_1000, "BOOT42");
    assert_eq!(read32(&mut c, 0, 0x88000), 0x2330_10de, "config mirror");
    assert_eq!(read32(&mut c, 0, 0x1234), UNWRITTEN);
    write32(&mut c, 0, 0x1234, 0xcafe_f00d);
    assert_eq!(read32(&mut c, 0, 0x1234), 0xcafe_f00d);
    write32(&mut c, 0, 0, 0);
    assert_eq!(read32(&mut c, 0, 0), 0x1800_00a1, "BOOT0 is read-only");
}

/// `--boot0`, `--boot42`, `--device-id` and `--class` reach the guest: BAR0, config space
/// and the config mirror; the ready line names the effective IDs.
#[test]
fn identity_overrides_from_the_command_line() {
    let dir = temp_dir("overrides");
    let m = Model::start(
        &dir,
        "gb202",
        false,
        &[
            "--boot0",
            "0x1c2000b1",
            "--boot42",
            "1c2b1000",
            "--device-id",
            "0x3001",
            "--class",
            "030200",
        ],
    );
    let ready = m.stderr.last().unwrap();
    assert!(
        ready.contains("10de:3001, class 030200, BOOT0 1c2000b1, BOOT42 1c2b1000"),
        "{ready}"
    );
    let mut c = connect(&m);
    assert_eq!(read32(&mut c, 0, 0), 0x1c20_00b1, "BOOT0");
    assert_eq!(read32(&mut c, 0, 0xa00), 0x1c2b_1000, "BOOT42");
    assert_eq!(read32(&mut c, CONFIG, 0), 0x3001_10de);
    assert_eq!(
        read32(&mut c, CONFIG, 8),
        0x0302_00a1,
        "class, revision kept"
    );
    assert_eq!(read32(&mut c, 0, 0x88000), 0x3001_10de, "config mirror");
    assert_eq!(c.region(1).map(|r| r.size), Some(256 << 20), "gb202's BAR1");
}

#[test]
fn bar_sizing_through_the_config_region() {
    let dir = temp_dir("sizing");
    let m = Model::start(&dir, "tu102", false, &["--bar1-size", "8G"]);
    let mut c = connect(&m);
    for (off, want) in [
        (0x10, 0xff00_0000),
        (0x14, 0x0000_000c),
        (0x18, 0xffff_fffe),
        (0x1c, 0xfe00_000c),
        (0x20, 0xffff_ffff),
    ] {
        write32(&mut c, CONFIG, off, 0xffff_ffff);
        assert_eq!(read32(&mut c, CONFIG, off), want, "BAR register {off:#x}");
    }
    write32(&mut c, CONFIG, 0x04, 0xffff);
    assert_eq!(
        read32(&mut c, CONFIG, 0x04) & 0xffff,
        0x0546,
        "command register mask"
    );
}

#[test]
fn bar1_is_a_shared_mapping() {
    let dir = temp_dir("mmap");
    let m = Model::start(&dir, "ad104", false, &[]);
    let mut c = connect(&m);
    let (fd, start, areas) = {
        let r = c.region(1).expect("BAR1");
        let fo = r.file_offset.as_ref().expect("BAR1 comes with an fd");
        (
            fo.file().try_clone().unwrap(),
            fo.start(),
            r.sparse_areas.clone(),
        )
    };
    assert_eq!(areas.len(), 1);
    assert_eq!((areas[0].offset, areas[0].size), (0, 32 << 30));
    let len = 1 << 20;
    // SAFETY: maps 1 MiB of the region's memfd, shared; unmapped below before `fd` drops.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            start as libc::off_t,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    // SAFETY: `p` is a valid, writable mapping of `len` bytes; offset 0x800 is inside it.
    unsafe { std::ptr::write_volatile(p.cast::<u8>().add(0x800).cast::<u32>(), 0x5151_5151) };
    assert_eq!(
        read32(&mut c, 1, 0x800),
        0x5151_5151,
        "socket path sees the mapping"
    );
    write32(&mut c, 1, 0x804, 0x4242_4242);
    // SAFETY: as above.
    let v = unsafe { std::ptr::read_volatile(p.cast::<u8>().add(0x804).cast::<u32>()) };
    assert_eq!(v, 0x4242_4242, "mapping sees the socket path");
    c.reset().unwrap();
    // SAFETY: as above.
    let v = unsafe { std::ptr::read_volatile(p.cast::<u8>().add(0x800).cast::<u32>()) };
    assert_eq!(
        v, 0,
        "reset returns the aperture to zero, mapping stays valid"
    );
    // SAFETY: unmapping the mapping made above.
    assert_eq!(unsafe { libc::munmap(p, len) }, 0);
}

#[test]
fn reset_and_reconnect_restore_power_on_state() {
    let dir = temp_dir("reconnect");
    let m = Model::start(&dir, "gb202", true, &[]);
    let mut c = connect(&m);
    write32(&mut c, 0, 0x4000, 1);
    write32(&mut c, CONFIG, 0x04, 0x6);
    c.reset().unwrap();
    assert_eq!(read32(&mut c, 0, 0x4000), UNWRITTEN);
    assert_eq!(read32(&mut c, CONFIG, 0x04) & 0xffff, 0);
    write32(&mut c, 0, 0x4000, 2);
    c.shutdown().unwrap();
    drop(c);
    // Unplug / re-plug: the server takes the next client and the card is fresh.
    for round in 0..3 {
        let mut c = connect(&m);
        assert_eq!(read32(&mut c, 0, 0), 0x1b20_00a1, "round {round}");
        assert_eq!(read32(&mut c, 0, 0x4000), UNWRITTEN, "round {round}");
        write32(&mut c, 0, 0x4000, 3);
    }
    let stats = control(&m, "stats");
    assert!(stats.contains(" resets=1 "), "{stats}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !control(&m, "stats").contains("sessions=4") {
        assert!(Instant::now() < deadline, "{}", control(&m, "stats"));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn fault_injection_on_a_live_connection() {
    let dir = temp_dir("faults");
    let mut m = Model::start(&dir, "tu117", true, &["--log-accesses", "2"]);
    let mut c = connect(&m);
    assert_eq!(read32(&mut c, 0, 0), 0x1670_00a1);
    assert!(m
        .wait_line(
            "read  bar0+0x000000 len 4 = 0x167000a1",
            Duration::from_secs(5)
        )
        .is_some());
    assert_eq!(control(&m, "ping"), "ok pong");
    assert_eq!(control(&m, "fall-off-bus"), "ok off-bus");
    assert_eq!(read32(&mut c, 0, 0), 0xffff_ffff);
    assert_eq!(read32(&mut c, CONFIG, 0), 0xffff_ffff);
    write32(&mut c, 0, 0x100, 7);
    assert_eq!(control(&m, "recover"), "ok on-bus");
    assert_eq!(
        read32(&mut c, 0, 0x100),
        UNWRITTEN,
        "write while off the bus was dropped"
    );
    assert_eq!(read32(&mut c, CONFIG, 0), 0x1f82_10de);
    let stats = control(&m, "stats");
    assert!(
        stats.starts_with("ok profile=tu117 off_bus=0 sessions=0 "),
        "{stats}"
    );
    assert!(stats.contains(" while_off_bus=3 "), "{stats}");
    assert!(control(&m, "frobnicate").starts_with("error: unknown command"));
    assert_eq!(control(&m, "exit 3"), "ok exiting");
    let st = m.wait_exit();
    assert_eq!(st.code(), Some(3), "{:?}", m.stderr);
    assert!(!m.socket.exists());
    assert!(
        m.stderr
            .iter()
            .any(|l| l.starts_with("gpu-model: summary: profile=tu117")),
        "{:?}",
        m.stderr
    );
    // Only two accesses were logged.
    assert_eq!(
        m.stderr
            .iter()
            .filter(|l| l.contains(" bar0+") || l.contains(" config+"))
            .count(),
        2,
        "{:?}",
        m.stderr
    );
    // The client sees the server gone.
    let mut b = [0u8; 4];
    assert!(c.region_read(0, 0, &mut b).is_err());
}

#[test]
fn malformed_messages_end_only_that_connection() {
    let dir = temp_dir("garbage");
    let mut m = Model::start(&dir, "ga100", true, &[]);
    for (cmd, size) in [(0xffff, 16), (1, 0), (9, 16), (1, 0xffff_ffff)] {
        let mut s = UnixStream::connect(&m.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(&header(1, cmd, size, 0));
        let _ = s.write_all(&[0xa5; 64]);
        drop(s);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !control(&m, "stats").contains("sessions=4") {
        assert!(Instant::now() < deadline, "{}", control(&m, "stats"));
        std::thread::sleep(Duration::from_millis(10));
    }
    // Still serving, still the same process.
    let mut c = connect(&m);
    assert_eq!(read32(&mut c, 0, 0), 0x1700_00a1);
    assert!(m.child.try_wait().unwrap().is_none());
    drop(c);
    assert_eq!(control(&m, "exit"), "ok exiting");
    assert!(m.wait_exit().success());
    // The vfio-user crate's own error reports reach stderr (through the model's logger).
    assert!(
        m.stderr
            .iter()
            .any(|l| l.starts_with("gpu-model: vfio-user error: ")),
        "{:?}",
        m.stderr
    );
}

/// A message the server cannot handle ends the connection (after one error reply) even
/// though the client keeps it open, rather than the server reading on from a stream that is
/// now out of step with the message framing; the next connection is served as usual.
#[test]
fn a_protocol_error_closes_the_connection() {
    const DEVICE_GET_INFO: u16 = 4;
    const REGION_READ: u16 = 9;
    const REGION_WRITE: u16 = 10;
    const NO_REPLY: u32 = 1 << 4;
    const REPLY_ERROR: u32 = 1 | 1 << 5;
    let dir = temp_dir("protocol-error");
    let mut m = Model::start(&dir, "gh100", true, &[]);
    // The payload of a region access: offset, region, count.
    let access = |offset: u64, region: u32, count: u32| {
        let mut v = offset.to_le_bytes().to_vec();
        v.extend_from_slice(&region.to_le_bytes());
        v.extend_from_slice(&count.to_le_bytes());
        v
    };
    // What follows each bad message: the start of a valid DEVICE_GET_INFO request (header
    // and argsz; the rest is never sent). A server that reads on waits for the rest.
    let mut next = header(2, DEVICE_GET_INFO, 32, 0);
    next.extend_from_slice(&32u32.to_le_bytes());
    let cases: [(&str, Vec<u8>, u16, u32); 3] = [
        ("unknown command", header(1, 0xffff, 16, 0), 0xffff, 0),
        (
            "REGION_READ with no-reply set (payload left unread)",
            [header(1, REGION_READ, 32, NO_REPLY), access(0, 0, 4)].concat(),
            REGION_READ,
            0,
        ),
        (
            "REGION_WRITE to no such region (data left unread)",
            [
                header(1, REGION_WRITE, 36, 0),
                access(0, 99, 4),
                vec![0xa5; 4],
            ]
            .concat(),
            REGION_WRITE,
            libc::EINVAL as u32,
        ),
    ];
    for (i, (what, bad, cmd, errno)) in cases.iter().enumerate() {
        let mut s = UnixStream::connect(&m.socket).unwrap();
        // One write: all of it is queued before the server reads the first header.
        s.write_all(&[&bad[..], &next[..]].concat()).unwrap();
        // This side keeps the connection open: only the server can end it.
        let got = read_until_closed(&mut s, Duration::from_secs(5), what);
        let mut reply = header(1, *cmd, 16, REPLY_ERROR);
        reply[12..].copy_from_slice(&errno.to_le_bytes());
        assert_eq!(got, reply, "{what}: exactly one error reply, then the end");
        let report = format!(
            "gpu-model: connection {}: protocol error: message id 1, ",
            i + 1
        );
        let line = m.wait_line(&report, Duration::from_secs(5));
        assert!(line.is_some(), "{what}: no '{report}' line: {:?}", m.stderr);
        drop(s);
    }
    // A new connection: VERSION negotiation, region info and reads work.
    let mut c = connect(&m);
    assert_eq!(c.region(0).map(|r| r.size), Some(16 << 20));
    assert_eq!(read32(&mut c, CONFIG, 0), 0x2330_10de);
    assert_eq!(read32(&mut c, 0, 0), 0x1800_00a1, "BOOT0");
    c.shutdown().unwrap();
    drop(c);
    assert!(m
        .wait_line("client disconnected", Duration::from_secs(5))
        .is_some());
    let stats = control(&m, "stats");
    assert!(stats.contains(" sessions=4 "), "{stats}");
    // Each protocol error is reported once by the model (the crate's own log line aside).
    assert_eq!(
        m.stderr
            .iter()
            .filter(|l| l.contains(": protocol error: "))
            .count(),
        cases.len(),
        "{:?}",
        m.stderr
    );
}

#[test]
fn dead_profile_answers_all_ones() {
    let dir = temp_dir("dead");
    let m = Model::start(&dir, "dead", false, &[]);
    let mut c = connect(&m);
    assert_eq!(read32(&mut c, CONFIG, 0), 0x2330_10de, "still enumerates");
    for off in [0, 0xa00, 0x88000, 0x1000] {
        assert_eq!(read32(&mut c, 0, off), 0xffff_ffff, "{off:#x}");
    }
    write32(&mut c, 0, 0x1000, 5);
    assert_eq!(read32(&mut c, 0, 0x1000), 0xffff_ffff);
}

#[test]
fn pre_gsp_profile_reports_volta() {
    let dir = temp_dir("gv100");
    let m = Model::start(&dir, "gv100", false, &[]);
    let mut c = connect(&m);
    assert_eq!(read32(&mut c, CONFIG, 0), 0x1d81_10de);
    assert_eq!(read32(&mut c, CONFIG, 8), 0x0300_00a1);
    assert_eq!(read32(&mut c, 0, 0), 0x1400_00a1);
}

/// Numbers for the report: start time to ready, and BAR0 reads/s over the socket on the
/// host (no QEMU in between). Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn measure_start_time_and_read_rate() {
    let dir = temp_dir("measure");
    let mut starts = vec![];
    for _ in 0..10 {
        let t0 = Instant::now();
        let m = Model::start(&dir, "gh100", false, &[]);
        let c = connect(&m);
        starts.push((m.ready_after, t0.elapsed()));
        drop(c);
        m.signal(libc::SIGTERM);
        drop(m);
        let _ = std::fs::remove_file(dir.join("gpu.sock"));
    }
    starts.sort();
    eprintln!("start to ready line (median of 10): {:?}", starts[5].0);
    eprintln!(
        "start to first handshake done (median of 10): {:?}",
        starts[5].1
    );
    let m = Model::start(&dir, "gh100", false, &[]);
    let mut c = connect(&m);
    let n = 100_000;
    let t0 = Instant::now();
    for _ in 0..n {
        assert_eq!(read32(&mut c, 0, 0), 0x1800_00a1);
    }
    let dt = t0.elapsed();
    let rate = n as f64 / dt.as_secs_f64();
    eprintln!(
        "BAR0 32-bit reads over the socket: {rate:.0}/s ({:.1} us each)",
        dt.as_secs_f64() * 1e6 / n as f64
    );
    assert!(rate > 1000.0);
}
