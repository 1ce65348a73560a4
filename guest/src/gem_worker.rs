//! Worker child processes that share one open DRM file and loop GEM calls on it until an ioctl
//! fails: the load that a test keeps on a device while it unbinds or unplugs it.
//!
//! A worker is the test program itself run as `PROGRAM --worker SECONDS` ([`WORKER_FLAG`]) with
//! the shared file as its standard input ([`Workers::spawn`]); the program's `main` hands that
//! mode to [`worker_main`] with what one iteration does (a GEM create/close pair of its driver).
//! The worker prints `ready` after its first iteration, then one line `end ITERATIONS ERRNO`
//! (the raw errno that stopped it) or `end ITERATIONS timeout` (no error within SECONDS); any
//! other line (one an iteration prints about what it saw) is kept and reported as a problem
//! ([`Workers::reap`]). The parent reads those lines without blocking and judges how the
//! workers ended: a device that goes away must end every one of them on `ENODEV`.
//!
//! Child processes rather than threads: the guest kernel has no futexes (see [`crate::child`]).

use crate::child::{self, Lines};
use drm_client::{errno_name, Card, Errno};
use std::os::fd::AsFd;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The flag that makes a test program a worker: `--worker SECONDS`, the most it may run.
pub const WORKER_FLAG: &str = "--worker";

/// How often a worker looks at the clock: every this many iterations.
const CLOCK_EVERY: u64 = 64;
/// The pause between two polls of the workers' output.
const POLL: Duration = Duration::from_millis(2);
/// How long a worker that printed its end (or was given up on) may take to exit.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// How long a killed worker may take to be reaped (one stuck in the kernel may not be).
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How a worker ended, from its `end ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerEnd {
    /// How many iterations succeeded.
    pub iterations: u64,
    /// The errno that stopped it, `None` when its time ran out.
    pub errno: Option<Errno>,
}

/// Reads a worker's `end ITERATIONS ERRNO` or `end ITERATIONS timeout` line; `None` for any
/// other line.
pub fn parse_end(line: &str) -> Option<WorkerEnd> {
    let mut words = line.strip_prefix("end ")?.split(' ');
    let iterations = words.next()?.parse().ok()?;
    let errno = match words.next()? {
        "timeout" => None,
        n => Some(Errno::from_raw_os_error(n.parse().ok()?)),
    };
    words
        .next()
        .is_none()
        .then_some(WorkerEnd { iterations, errno })
}

/// What is wrong with how the workers ended (`None`: no `end` line), each worker given at most
/// `limit_s` seconds: anything but `ENODEV`.
pub fn end_problems(ends: &[Option<WorkerEnd>], limit_s: u64) -> Vec<String> {
    let mut p = Vec::new();
    for (i, end) in ends.iter().enumerate() {
        match end {
            None => p.push(format!("worker {i}: no end (hung or died)")),
            Some(WorkerEnd { errno: None, .. }) => {
                p.push(format!("worker {i}: no error within {limit_s} s"))
            }
            Some(WorkerEnd {
                errno: Some(e),
                iterations,
            }) if *e != Errno::NODEV => p.push(format!(
                "worker {i}: ended on {} after {iterations} iterations, expected ENODEV",
                errno_name(*e)
            )),
            Some(_) => {}
        }
    }
    p
}

/// The body of a worker (`PROGRAM --worker SECONDS`): runs `iteration` on the DRM file that is
/// its standard input until it fails or `limit_s` seconds pass, printing the lines the module
/// documentation describes; the process's exit code (a failure only when stdin is no DRM file).
pub fn worker_main(
    limit_s: u64,
    mut iteration: impl FnMut(&Card) -> Result<(), Errno>,
) -> ExitCode {
    let card = rustix::io::dup(std::io::stdin().as_fd())
        .map_err(|e| e.to_string())
        .and_then(|fd| Card::from_fd(fd).map_err(|e| e.to_string()));
    let card = match card {
        Ok(c) => c,
        Err(e) => {
            println!("no DRM file on stdin: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let mut iterations: u64 = 0;
    loop {
        match iteration(&card) {
            Ok(()) => {
                iterations += 1;
                if iterations == 1 {
                    println!("ready");
                }
            }
            Err(e) => {
                println!("end {iterations} {}", e.raw_os_error());
                return ExitCode::SUCCESS;
            }
        }
        if iterations.is_multiple_of(CLOCK_EVERY) && start.elapsed().as_secs() >= limit_s {
            println!("end {iterations} timeout");
            return ExitCode::SUCCESS;
        }
    }
}

/// One iteration of a worker on a Nova file: create, look up and close an object; a line of
/// its own when GEM_INFO gives another size than GEM_CREATE did.
pub fn nova_iteration(card: &Card) -> Result<(), Errno> {
    let g = nova::gem_create(card, 4096)?;
    let info = nova::gem_info(card, g.handle);
    if let Ok(size) = info {
        if size != g.size {
            println!("GEM_INFO({}) gave {size}, GEM_CREATE {}", g.handle, g.size);
        }
    }
    info.and_then(|_| card.gem_close(g.handle))
}

/// A worker child: its process and what it wrote.
struct Worker {
    child: Child,
    lines: Lines,
    ready: bool,
    end: Option<WorkerEnd>,
    other: Vec<String>,
}

impl Worker {
    /// Starts `cmd` (its stdin already set) with its stdout piped to the parent.
    fn start(cmd: &mut Command) -> Result<Self, String> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        let lines = Lines::new(child.stdout.take().expect("piped"))?;
        Ok(Self {
            child,
            lines,
            ready: false,
            end: None,
            other: Vec::new(),
        })
    }

    /// Reads what the worker wrote.
    fn pump(&mut self) {
        for l in self.lines.poll() {
            if l == "ready" {
                self.ready = true;
            } else if let Some(end) = parse_end(&l) {
                self.end = Some(end);
            } else {
                self.other.push(l);
            }
        }
    }
}

/// Workers sharing one open DRM file, each run for at most `limit_s` seconds.
pub struct Workers {
    list: Vec<Worker>,
    limit_s: u64,
}

impl Workers {
    /// Starts `n` workers, this program run as `--worker LIMIT_S`, each with a descriptor of
    /// `file` (a `dup`: the same open file) as its standard input. If one cannot be started,
    /// those already started are killed.
    pub fn spawn(file: &Card, n: u32, limit_s: u64) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut workers = Self {
            list: Vec::new(),
            limit_s,
        };
        for _ in 0..n {
            let started = file
                .try_clone()
                .map_err(|e| format!("dup: {e}"))
                .and_then(|f| {
                    Worker::start(
                        Command::new(&exe)
                            .args([WORKER_FLAG, &limit_s.to_string()])
                            .stdin(Stdio::from(f.into_fd())),
                    )
                });
            match started {
                Ok(w) => workers.list.push(w),
                Err(e) => {
                    workers.kill();
                    return Err(e);
                }
            }
        }
        Ok(workers)
    }

    /// Reads what the workers wrote since the last call.
    pub fn pump(&mut self) {
        for w in &mut self.list {
            w.pump();
        }
    }

    /// Polls the workers until `done` holds for all of them or `deadline` passes; `false` then.
    fn wait(&mut self, deadline: Instant, done: impl Fn(&Worker) -> bool) -> bool {
        loop {
            self.pump();
            if self.list.iter().all(&done) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until every worker printed `ready` or its end, or `deadline` passes: whether every
    /// one got going (printed `ready`).
    pub fn wait_started(&mut self, deadline: Instant) -> bool {
        let settled = self.wait(deadline, |w| w.ready || w.end.is_some());
        settled && self.list.iter().all(|w| w.ready)
    }

    /// Waits until every worker printed its end and closed its output, or `deadline` passes;
    /// `false` then.
    pub fn wait_ended(&mut self, deadline: Instant) -> bool {
        self.wait(deadline, |w| w.end.is_some() && w.lines.closed())
    }

    /// How each worker ended so far, in the order they were started (`None`: no `end` line).
    pub fn ends(&self) -> Vec<Option<WorkerEnd>> {
        self.list.iter().map(|w| w.end.clone()).collect()
    }

    /// Kills every worker and reaps those that exit soon.
    pub fn kill(&mut self) {
        for w in &mut self.list {
            child::kill(&mut w.child, KILL_GRACE);
        }
    }

    /// Reaps the workers (killing any still running after a few seconds) and gives the
    /// problems: for each worker in order, an exit that is not a success and the lines it
    /// printed other than `ready` and its end; then those of [`end_problems`].
    pub fn reap(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, w) in self.list.iter_mut().enumerate() {
            match child::wait_until(&mut w.child, Instant::now() + EXIT_WAIT) {
                Ok(Some(s)) if s.success() => {}
                Ok(Some(s)) => problems.push(format!("worker {i} exited with {s}")),
                Ok(None) => child::kill(&mut w.child, KILL_GRACE),
                Err(e) => problems.push(e),
            }
            if !w.other.is_empty() {
                problems.push(format!("worker {i} wrote: {}", w.other.join(" | ")));
            }
        }
        problems.extend(end_problems(&self.ends(), self.limit_s));
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ends_are_read_and_judged() {
        assert_eq!(
            parse_end("end 1234 19"),
            Some(WorkerEnd {
                iterations: 1234,
                errno: Some(Errno::NODEV)
            })
        );
        assert_eq!(
            parse_end("end 7 timeout"),
            Some(WorkerEnd {
                iterations: 7,
                errno: None
            })
        );
        for bad in [
            "end",
            "end 1",
            "end x 19",
            "end 1 19 2",
            "ready",
            "end 1 ENODEV",
        ] {
            assert_eq!(parse_end(bad), None, "{bad}");
        }
        let ends = [
            parse_end("end 10 19"),
            parse_end("end 11 22"),
            None,
            parse_end("end 3 timeout"),
            parse_end("end 12 13"),
        ];
        assert_eq!(
            end_problems(&ends, 60),
            [
                "worker 1: ended on EINVAL after 11 iterations, expected ENODEV",
                "worker 2: no end (hung or died)",
                "worker 3: no error within 60 s",
                "worker 4: ended on EACCES after 12 iterations, expected ENODEV",
            ]
        );
        assert!(end_problems(&ends[..1], 120).is_empty());
    }

    /// Workers that are shell scripts printing `lines`, one script each.
    fn scripted(scripts: &[&str]) -> Workers {
        let list = scripts
            .iter()
            .map(|s| {
                Worker::start(Command::new("sh").args(["-c", s]).stdin(Stdio::null())).unwrap()
            })
            .collect();
        Workers { list, limit_s: 60 }
    }

    #[test]
    fn workers_are_followed_through_their_lines_and_reaped() {
        let deadline = || Instant::now() + Duration::from_secs(20);
        let mut w = scripted(&[
            "echo ready; sleep 0.1; echo end 5 19",
            "echo ready; echo 'GEM_INFO(1) gave 8192, GEM_CREATE 4096'; echo end 9 22; exit 3",
        ]);
        assert!(w.wait_started(deadline()));
        assert!(w.wait_ended(deadline()));
        assert_eq!(
            w.ends(),
            [
                Some(WorkerEnd {
                    iterations: 5,
                    errno: Some(Errno::NODEV)
                }),
                Some(WorkerEnd {
                    iterations: 9,
                    errno: Some(Errno::INVAL)
                })
            ]
        );
        assert_eq!(
            w.reap(),
            [
                "worker 1 exited with exit status: 3",
                "worker 1 wrote: GEM_INFO(1) gave 8192, GEM_CREATE 4096",
                "worker 1: ended on EINVAL after 9 iterations, expected ENODEV",
            ]
        );
    }

    #[test]
    fn a_worker_that_ends_before_ready_did_not_get_going() {
        let mut w = scripted(&["echo ready; sleep 20", "echo end 0 19"]);
        assert!(!w.wait_started(Instant::now() + Duration::from_secs(20)));
        assert!(!w.wait_ended(Instant::now() + Duration::from_millis(50)));
        w.kill();
        assert_eq!(w.ends()[1].as_ref().map(|e| e.iterations), Some(0));
        assert!(w
            .list
            .iter_mut()
            .all(|w| w.child.try_wait().unwrap().is_some()));
    }
}
