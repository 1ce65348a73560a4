//! GPU faults the guest asks for. A guest line `host-fault: gpuN ACTION` makes the host do
//! ACTION to the model of `gpuN` (the boot's N-th GPU): `fall-off-bus` and `recover` through
//! the model's control socket, `kill` with SIGKILL. The requests are done one at a time, in the
//! order the guest printed them; the guest sees the outcome in the GPU's config space (see the
//! guest program `gpu_faults`), so the host does not answer it.

use crate::boot::gpu::Model;
use crate::results::report::{check, TestResult};
use anyhow::{bail, Result};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What starts a request in a guest line.
pub const CUE: &str = "host-fault: ";

/// What the host does to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The model answers every read with all-ones and drops writes.
    FallOffBus,
    /// Undoes [`Action::FallOffBus`].
    Recover,
    /// SIGKILL to the model process: QEMU answers the GPU's reads with all-ones from then on.
    Kill,
}

impl Action {
    /// The action called `word` in a request.
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "fall-off-bus" => Some(Self::FallOffBus),
            "recover" => Some(Self::Recover),
            "kill" => Some(Self::Kill),
            _ => None,
        }
    }
}

/// One request: an action on the model of `gpu<gpu>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The GPU's index in the boot.
    pub gpu: usize,
    /// What to do.
    pub action: Action,
}

/// The request of console line `line`, if it has [`CUE`]: `Err` (with the line) when what
/// follows the cue is not `gpuN ACTION`.
pub fn request(line: &str) -> Option<Result<Request, String>> {
    let (_, rest) = line.split_once(CUE)?;
    let mut words = rest.split_whitespace();
    let parsed = (|| {
        let gpu = words.next()?.strip_prefix("gpu")?.parse().ok()?;
        let action = Action::from_word(words.next()?)?;
        words.next().is_none().then_some(Request { gpu, action })
    })();
    Some(parsed.ok_or_else(|| format!("not `gpuN fall-off-bus|recover|kill`: {line}")))
}

/// What does the actions: the boot's models (a fake in the tests).
pub trait Injector {
    /// Does `action` to the model of GPU `gpu`; what the model said, or why it failed.
    fn inject(&mut self, gpu: usize, action: Action) -> Result<String>;
}

impl Injector for Vec<Model> {
    fn inject(&mut self, gpu: usize, action: Action) -> Result<String> {
        let Some(m) = self.get_mut(gpu) else {
            bail!("the boot has no gpu{gpu}");
        };
        let (cmd, want) = match action {
            Action::FallOffBus => ("fall-off-bus", "ok off-bus"),
            Action::Recover => ("recover", "ok on-bus"),
            Action::Kill => return m.kill(),
        };
        let reply = m.control(cmd)?;
        if reply != want {
            bail!("the model answered `{cmd}` with `{reply}`, not `{want}`");
        }
        Ok(reply)
    }
}

/// The faults side of a boot plan: the models the guest may fault, and how many requests it
/// must make.
pub struct FaultPlan {
    /// The boot's models, in GPU order (they stop when the boot ends).
    pub models: Box<dyn Injector + Send>,
    /// The requests the guest must make (test `faults.host-requests`).
    pub requests: usize,
}

/// The outcome of one request: its text and how long it took, or what went wrong.
type Outcome = Result<(String, Duration), String>;

/// Does every request of `requests` until it closes (the boot ended).
fn serve(requests: &Receiver<Result<Request, String>>, models: &mut dyn Injector) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for r in requests {
        outcomes.push(r.and_then(|r| {
            let what = format!("gpu{} {:?}", r.gpu, r.action);
            let t = Instant::now();
            models
                .inject(r.gpu, r.action)
                .map(|_| (what.clone(), t.elapsed()))
                .map_err(|e| format!("{what}: {e:#}"))
        }));
    }
    outcomes
}

/// The fault side of one boot: feed it every console line, then [`Faults::finish`].
pub struct Faults {
    tx: Option<Sender<Result<Request, String>>>,
    worker: JoinHandle<Vec<Outcome>>,
}

impl Faults {
    /// Starts the worker that does the requests with `models` (kept until the boot ends).
    pub fn start(mut models: Box<dyn Injector + Send>) -> Self {
        let (tx, rx) = mpsc::channel();
        let worker = std::thread::spawn(move || serve(&rx, models.as_mut()));
        Self {
            tx: Some(tx),
            worker,
        }
    }

    /// Passes on the request of console line `line`, if it has one.
    pub fn on_line(&mut self, line: &str) {
        if let (Some(r), Some(tx)) = (request(line), &self.tx) {
            let _ = tx.send(r);
        }
    }

    /// Once the boot has ended: the test `faults.host-requests` and a note (see [`results`]).
    pub fn finish(mut self, want: usize) -> (TestResult, String) {
        drop(self.tx.take());
        let outcomes = self
            .worker
            .join()
            .unwrap_or_else(|_| vec![Err("the fault thread panicked".into())]);
        results(&outcomes, want)
    }
}

/// Test `faults.host-requests`: exactly `want` requests came and each was done; a note with
/// each and how long it took.
pub fn results(outcomes: &[Outcome], want: usize) -> (TestResult, String) {
    let mut problems: Vec<String> = outcomes.iter().filter_map(|o| o.clone().err()).collect();
    if outcomes.len() != want {
        problems.push(format!(
            "{} fault request(s) from the guest, {want} expected",
            outcomes.len()
        ));
    }
    let done: Vec<String> = outcomes
        .iter()
        .flatten()
        .map(|(what, t)| format!("{what} ({:.1} ms)", t.as_secs_f64() * 1e3))
        .collect();
    let note = format!(
        "faults: {} of {} request(s) done: {}",
        done.len(),
        outcomes.len(),
        done.join(", ")
    );
    (check("faults.host-requests", problems), note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ktap::Outcome as Verdict;
    use std::sync::{Arc, Mutex};

    /// Models that record what they were asked and fail on the GPUs told.
    #[derive(Clone, Default)]
    struct Fake {
        log: Arc<Mutex<Vec<(usize, Action)>>>,
        broken: Vec<usize>,
    }

    impl Injector for Fake {
        fn inject(&mut self, gpu: usize, action: Action) -> Result<String> {
            self.log.lock().unwrap().push((gpu, action));
            if self.broken.contains(&gpu) {
                bail!("no such model");
            }
            Ok("ok".into())
        }
    }

    #[test]
    fn requests_are_read_from_guest_lines() {
        assert_eq!(
            request("    # host-fault: gpu0 fall-off-bus"),
            Some(Ok(Request {
                gpu: 0,
                action: Action::FallOffBus
            }))
        );
        assert_eq!(
            request("# host-fault: gpu12 kill\r"),
            Some(Ok(Request {
                gpu: 12,
                action: Action::Kill
            }))
        );
        assert_eq!(request("[ 1.0] nova 0000:01:00.0: unbind"), None);
        for bad in [
            "# host-fault: gpu0 explode",
            "# host-fault: gpu0",
            "# host-fault: gpux kill",
            "# host-fault: gpu1 kill now",
            "# host-fault: 1 kill",
        ] {
            assert!(request(bad).unwrap().unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn a_boot_s_requests_are_done_in_order() {
        let fake = Fake::default();
        let log = fake.log.clone();
        let mut f = Faults::start(Box::new(fake));
        for l in [
            "nova-init: run gpu_faults",
            "    # host-fault: gpu0 fall-off-bus",
            "[ 2.0] nova 0000:02:00.0: unbind",
            "    # host-fault: gpu0 recover",
            "    # host-fault: gpu2 kill",
        ] {
            f.on_line(l);
        }
        let (test, note) = f.finish(3);
        assert_eq!(test.outcome, Verdict::Pass, "{}", test.detail);
        assert!(
            note.starts_with("faults: 3 of 3 request(s) done: gpu0 FallOffBus ("),
            "{note}"
        );
        assert_eq!(
            *log.lock().unwrap(),
            [
                (0, Action::FallOffBus),
                (0, Action::Recover),
                (2, Action::Kill)
            ]
        );
    }

    #[test]
    fn a_failed_bad_or_missing_request_fails_the_test() {
        let fake = Fake {
            broken: vec![1],
            ..Fake::default()
        };
        let mut f = Faults::start(Box::new(fake));
        f.on_line("# host-fault: gpu1 kill");
        f.on_line("# host-fault: gpu0 melt");
        let (test, note) = f.finish(3);
        assert_eq!(test.outcome, Verdict::Fail);
        assert!(
            test.detail.contains("gpu1 Kill: no such model"),
            "{}",
            test.detail
        );
        assert!(test.detail.contains("gpu0 melt"), "{}", test.detail);
        assert!(test
            .detail
            .contains("2 fault request(s) from the guest, 3 expected"));
        assert!(note.starts_with("faults: 0 of 2"), "{note}");
        // None at all, when some were wanted.
        let (test, _) = Faults::start(Box::new(Fake::default())).finish(1);
        assert_eq!(test.outcome, Verdict::Fail);
    }

    #[test]
    fn a_vec_of_models_refuses_a_gpu_it_does_not_have() {
        let mut none: Vec<Model> = Vec::new();
        let e = none.inject(0, Action::Kill).unwrap_err();
        assert_eq!(e.to_string(), "the boot has no gpu0");
    }
}
