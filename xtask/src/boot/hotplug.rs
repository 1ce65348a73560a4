//! Hot-unplug cycles the guest asks for. Every time the console shows the boot plan's marker
//! (e.g. `waiting for unplug`), the host unplugs `gpu0` through QMP (`device_del`), waits for
//! QEMU's `DEVICE_DELETED` and then for the guest's [`GUEST_SAW_UNPLUG`] line of that cycle,
//! and plugs the GPU back (`device_add`): one cycle at a time, in the order the guest asked.

use crate::boot::qmp::Qmp;
use crate::results::report::{check, TestResult};
use anyhow::Result;
use serde_json::json;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the guest prints once it has seen the GPU go (gpu_probe's hot-unplug loop, nova_test).
pub const GUEST_SAW_UNPLUG: &str = "loop: gone";

/// The QEMU ID of the GPU that is unplugged (the first one, on root port `rp1`).
const GPU_ID: &str = "gpu0";

/// How long the guest has to report the unplugged GPU gone.
pub const GONE_TIMEOUT: Duration = Duration::from_secs(30);

/// A console line that matters to the cycles, in console order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// The guest asks for an unplug (the marker).
    Asked,
    /// The guest saw the GPU go ([`GUEST_SAW_UNPLUG`]).
    Gone,
}

/// The cue of console line `line` for marker `marker`, if any (the marker wins when a line
/// has both).
pub fn cue(line: &str, marker: &str) -> Option<Cue> {
    if line.contains(marker) {
        Some(Cue::Asked)
    } else if line.contains(GUEST_SAW_UNPLUG) {
        Some(Cue::Gone)
    } else {
        None
    }
}

/// The two halves of a cycle, as QEMU does them (a fake in the tests).
pub trait Plug {
    /// Unplugs the GPU and waits until QEMU says it is gone; returns how long that took.
    fn unplug(&mut self) -> Result<Duration>;
    /// Plugs the GPU back.
    fn replug(&mut self) -> Result<()>;
}

/// [`Plug`] through QEMU's QMP socket, for `gpu0` on root port `rp1` served by a model.
pub struct QmpPlug {
    /// The boot's QMP socket.
    pub qmp: PathBuf,
    /// The model's vfio-user socket, for `device_add`.
    pub socket: PathBuf,
    /// The connection, opened at the first cycle.
    conn: Option<Qmp>,
}

impl QmpPlug {
    /// A plug for the boot whose QMP socket is `qmp` and whose `gpu0` model serves `socket`.
    pub fn new(qmp: PathBuf, socket: PathBuf) -> Self {
        Self {
            qmp,
            socket,
            conn: None,
        }
    }

    fn conn(&mut self) -> Result<&mut Qmp> {
        if self.conn.is_none() {
            self.conn = Some(Qmp::connect(&self.qmp, Duration::from_secs(10))?);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }
}

impl Plug for QmpPlug {
    fn unplug(&mut self) -> Result<Duration> {
        let q = self.conn()?;
        let t = Instant::now();
        q.execute("device_del", json!({"id": GPU_ID}))?;
        // gpu0's own event: one of another device (an earlier one kept, a device without an
        // ID, which has only a `path`) is not this cycle's.
        let deadline = t + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = q.wait_event("DEVICE_DELETED", left)?;
            if e["data"]["device"] == GPU_ID {
                return Ok(t.elapsed());
            }
        }
    }

    fn replug(&mut self) -> Result<()> {
        let args = json!({
            "driver": "vfio-user-pci", "id": GPU_ID, "bus": "rp1",
            "socket": {"type": "unix", "path": self.socket.display().to_string()}
        });
        self.conn()?.execute("device_add", args)?;
        Ok(())
    }
}

/// Why the wait for a cycle's [`Cue::Gone`] ended without it.
enum NotGone {
    /// The guest asked for the next unplug first.
    AskedAgain,
    /// Nothing within the timeout, or the boot ended.
    Never(String),
}

/// Waits for the next cue to be [`Cue::Gone`].
fn wait_gone(cues: &Receiver<Cue>, timeout: Duration) -> Result<(), NotGone> {
    match cues.recv_timeout(timeout) {
        Ok(Cue::Gone) => Ok(()),
        Ok(Cue::Asked) => Err(NotGone::AskedAgain),
        Err(RecvTimeoutError::Timeout) => Err(NotGone::Never(format!(
            "the guest did not report the unplugged GPU gone within {timeout:?}"
        ))),
        Err(RecvTimeoutError::Disconnected) => Err(NotGone::Never(
            "the boot ended before the guest reported the unplugged GPU gone".into(),
        )),
    }
}

/// Runs a cycle for every [`Cue::Asked`] until `cues` closes (the boot ended): the outcome of
/// each, in order (how long QEMU took to delete the GPU, or what went wrong). A
/// [`Cue::Gone`] counts only for the cycle whose unplug came before it; one outside a cycle
/// is ignored. After a failed cycle the GPU is plugged back if it can be, so that the guest
/// can go on.
pub fn serve(
    cues: &Receiver<Cue>,
    plug: &mut dyn Plug,
    gone_timeout: Duration,
) -> Vec<Result<Duration, String>> {
    let mut outcomes = Vec::new();
    let mut asked = false;
    loop {
        if !asked {
            match cues.recv() {
                Ok(Cue::Asked) => {}
                Ok(Cue::Gone) => continue,
                Err(_) => return outcomes,
            }
        }
        asked = false;
        let n = outcomes.len() + 1;
        let outcome = match plug.unplug() {
            Err(e) => Err(format!("{e:#}")),
            Ok(deleted) => match wait_gone(cues, gone_timeout) {
                Ok(()) => plug
                    .replug()
                    .map(|()| deleted)
                    .map_err(|e| format!("device_add: {e:#}")),
                Err(NotGone::AskedAgain) => {
                    asked = true;
                    Err(
                        "the guest asked for the next unplug before reporting this one's GPU \
                         gone"
                            .into(),
                    )
                }
                Err(NotGone::Never(why)) => Err(why),
            },
        };
        if outcome.is_err() {
            let _ = plug.replug();
        }
        outcomes.push(outcome.map_err(|e| format!("cycle {n}: {e}")));
    }
}

/// The hot-unplug side of one boot: feed it every console line, then [`Hotplug::finish`].
pub struct Hotplug {
    marker: String,
    tx: Option<Sender<Cue>>,
    asked: usize,
    worker: JoinHandle<Vec<Result<Duration, String>>>,
}

impl Hotplug {
    /// Starts the cycles' worker for `marker`, doing each cycle through `plug`.
    pub fn start(marker: &str, mut plug: Box<dyn Plug + Send>, gone_timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel();
        let worker = std::thread::spawn(move || serve(&rx, plug.as_mut(), gone_timeout));
        Self {
            marker: marker.to_string(),
            tx: Some(tx),
            asked: 0,
            worker,
        }
    }

    /// Passes on what console line `line` means for the cycles.
    pub fn on_line(&mut self, line: &str) {
        if let (Some(c), Some(tx)) = (cue(line, &self.marker), &self.tx) {
            if c == Cue::Asked {
                self.asked += 1;
            }
            let _ = tx.send(c);
        }
    }

    /// Once the boot has ended: waits for the worker and gives the tests (see [`results`])
    /// and a note.
    pub fn finish(mut self, want: Option<usize>) -> (Vec<TestResult>, String) {
        drop(self.tx.take());
        let outcomes = self
            .worker
            .join()
            .map_err(|_| "the QMP thread panicked".to_string());
        results(self.asked, outcomes, want)
    }
}

/// The tests of a boot's hot-unplug cycles and a note: `hotplug.qmp-unplug-replug` passes
/// when the guest asked at least once, every time it asked got a cycle and every cycle
/// succeeded; with `want`, `hotplug.cycles` passes when exactly that many cycles succeeded.
pub fn results(
    asked: usize,
    outcomes: Result<Vec<Result<Duration, String>>, String>,
    want: Option<usize>,
) -> (Vec<TestResult>, String) {
    let outcomes = match outcomes {
        Ok(o) => o,
        Err(e) => vec![Err(e)],
    };
    let done: Vec<Duration> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    let mut problems: Vec<String> = outcomes.iter().filter_map(|o| o.clone().err()).collect();
    if asked == 0 {
        problems.push("the guest never signalled it was ready for the unplug".into());
    } else if outcomes.len() < asked {
        problems.push(format!(
            "the guest asked {asked} time(s), {} cycle(s) ran",
            outcomes.len()
        ));
    }
    let mut tests = vec![check("hotplug.qmp-unplug-replug", problems)];
    if let Some(want) = want {
        let problems = if done.len() == want {
            vec![]
        } else {
            vec![format!(
                "{} hot-unplug cycle(s) done, {want} wanted",
                done.len()
            )]
        };
        tests.push(check("hotplug.cycles", problems));
    }
    let times = match (done.iter().min(), done.iter().max()) {
        (Some(lo), Some(hi)) => format!(
            "; QMP device_del → DEVICE_DELETED in {:.3}-{:.3}s, device_add after each",
            lo.as_secs_f64(),
            hi.as_secs_f64()
        ),
        _ => String::new(),
    };
    let note = format!(
        "hotplug: {} cycle(s) done for {asked} request(s) of the guest{times}",
        done.len()
    );
    (tests, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ktap::Outcome;
    use std::sync::{Arc, Mutex};

    /// A plug that records what was done and fails where told.
    #[derive(Clone, Default)]
    struct Fake {
        log: Arc<Mutex<Vec<&'static str>>>,
        fail_unplug_at: Option<usize>,
        unplugs: Arc<Mutex<usize>>,
    }

    impl Plug for Fake {
        fn unplug(&mut self) -> Result<Duration> {
            let mut n = self.unplugs.lock().unwrap();
            *n += 1;
            self.log.lock().unwrap().push("del");
            if self.fail_unplug_at == Some(*n) {
                anyhow::bail!("no QMP event DEVICE_DELETED");
            }
            Ok(Duration::from_millis(30))
        }
        fn replug(&mut self) -> Result<()> {
            self.log.lock().unwrap().push("add");
            Ok(())
        }
    }

    fn run(cues: &[Cue], fake: &mut Fake) -> Vec<Result<Duration, String>> {
        let (tx, rx) = mpsc::channel();
        for c in cues {
            tx.send(*c).unwrap();
        }
        drop(tx);
        serve(&rx, fake, Duration::from_millis(200))
    }

    #[test]
    fn console_lines_become_cues() {
        let m = "waiting for unplug";
        assert_eq!(
            cue(
                "    # loop: 0000:01:00.0 present, BOOT0 0x180000a1; waiting for unplug",
                m
            ),
            Some(Cue::Asked)
        );
        assert_eq!(cue("    # loop: gone after 0.03 s", m), Some(Cue::Gone));
        assert_eq!(
            cue("[ 1.0] pcieport 0000:00:01.0: pciehp: Slot(1)", m),
            None
        );
    }

    #[test]
    fn every_request_gets_its_own_cycle_in_order() {
        use Cue::*;
        let mut fake = Fake::default();
        // A stale `gone` before the first request counts for nothing.
        let out = run(&[Gone, Asked, Gone, Asked, Gone, Asked, Gone], &mut fake);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|o| o.is_ok()), "{out:?}");
        assert_eq!(
            *fake.log.lock().unwrap(),
            ["del", "add", "del", "add", "del", "add"]
        );
        let (tests, note) = results(3, Ok(out), Some(3));
        assert!(
            tests.iter().all(|t| t.outcome == Outcome::Pass),
            "{tests:?}"
        );
        assert!(
            note.starts_with("hotplug: 3 cycle(s) done for 3 request(s)"),
            "{note}"
        );
        assert!(note.contains("0.030-0.030s"), "{note}");
    }

    #[test]
    fn a_cycle_without_its_gone_line_fails_and_the_gpu_comes_back() {
        use Cue::*;
        let mut fake = Fake::default();
        // The second request comes before the first cycle's `gone`; the last one never
        // gets its `gone` before the boot ends.
        let out = run(&[Asked, Asked, Gone, Asked], &mut fake);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .contains("cycle 1: the guest asked"));
        assert!(out[1].is_ok());
        assert!(out[2]
            .as_ref()
            .unwrap_err()
            .contains("cycle 3: the boot ended"));
        assert_eq!(
            *fake.log.lock().unwrap(),
            ["del", "add", "del", "add", "del", "add"]
        );
        let (tests, _) = results(3, Ok(out), Some(3));
        assert_eq!(tests[0].outcome, Outcome::Fail);
        assert!(tests[0].detail.contains("cycle 1"), "{}", tests[0].detail);
        assert_eq!(tests[1].outcome, Outcome::Fail);
        assert!(tests[1]
            .detail
            .contains("1 hot-unplug cycle(s) done, 3 wanted"));
    }

    #[test]
    fn a_failed_unplug_fails_its_cycle_only() {
        use Cue::*;
        let mut fake = Fake {
            fail_unplug_at: Some(1),
            ..Fake::default()
        };
        let out = run(&[Asked, Asked, Gone], &mut fake);
        assert!(out[0].as_ref().unwrap_err().contains("DEVICE_DELETED"));
        assert!(out[1].is_ok());
    }

    #[test]
    fn the_gone_line_must_come_in_time() {
        let (tx, rx) = mpsc::channel();
        tx.send(Cue::Asked).unwrap();
        let mut fake = Fake::default();
        let t = Instant::now();
        let worker = std::thread::spawn(move || serve(&rx, &mut fake, Duration::from_millis(100)));
        std::thread::sleep(Duration::from_millis(400));
        drop(tx);
        let out = worker.join().unwrap();
        assert!(
            out[0].as_ref().unwrap_err().contains("gone within 100ms"),
            "{out:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn no_request_or_a_lost_one_fails_the_test() {
        let (tests, note) = results(0, Ok(vec![]), None);
        assert_eq!(tests.len(), 1);
        assert!(tests[0].detail.contains("never signalled"));
        assert!(note.starts_with("hotplug: 0 cycle(s)"));
        let (tests, _) = results(2, Ok(vec![Ok(Duration::ZERO)]), None);
        assert!(tests[0].detail.contains("asked 2 time(s), 1 cycle(s) ran"));
        let (tests, _) = results(1, Err("the QMP thread panicked".into()), Some(1));
        assert!(tests[0].detail.contains("panicked"));
        assert_eq!(tests[1].outcome, Outcome::Fail);
    }

    /// The whole path a boot uses: lines in, the worker's cycles, the tests out.
    #[test]
    fn a_boot_s_lines_drive_the_cycles() {
        let fake = Fake::default();
        let log = fake.log.clone();
        let mut h = Hotplug::start("waiting for unplug", Box::new(fake), Duration::from_secs(5));
        for l in [
            "[ 0.5] pci 0000:01:00.0: [10de:2330]",
            "    # loop: present; waiting for unplug",
            "    # loop: gone after 0.1 s",
            "    # cycle 2: waiting for unplug",
            "    # loop: gone after 0.1 s",
        ] {
            h.on_line(l);
        }
        let (tests, note) = h.finish(Some(2));
        assert!(
            tests.iter().all(|t| t.outcome == Outcome::Pass),
            "{tests:?}"
        );
        assert!(note.contains("2 cycle(s) done for 2 request(s)"), "{note}");
        assert_eq!(log.lock().unwrap().len(), 4);
    }
}
