//! Reading the kernel log from `/dev/kmsg`, one record per read.
//!
//! A record reads as `prio,seq,ts,flags;text`, followed by ` KEY=value` continuation lines
//! (the dictionary that `dev_info` and friends add).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// `O_NONBLOCK` on Linux (x86-64, arm64, riscv64).
pub const O_NONBLOCK: i32 = 0o4000;
/// `EPIPE`: `/dev/kmsg` overwrote records before this reader got them.
pub const EPIPE: i32 = 32;
/// A read buffer for one `/dev/kmsg` record (a read with a too-small buffer fails `EINVAL`).
pub const KMSG_RECORD_MAX: usize = 16 * 1024;

/// The outcome of one read of a record source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// One record.
    Record(String),
    /// No more records for now (`EAGAIN`).
    Empty,
    /// Records were overwritten before they were read (`EPIPE`).
    Overrun,
    /// Another error.
    Failed(String),
}

/// A source of kernel log records, one per read: `/dev/kmsg`, or a script in the tests.
pub trait RecordSource {
    /// Reads the next record.
    fn next_record(&mut self) -> ReadOutcome;
}

/// A scripted source (for tests): replays the outcomes in order, then is [`ReadOutcome::Empty`]
/// for good.
impl RecordSource for VecDeque<ReadOutcome> {
    fn next_record(&mut self) -> ReadOutcome {
        self.pop_front().unwrap_or(ReadOutcome::Empty)
    }
}

/// The text of a `/dev/kmsg` record: the part after the first `;`, first line only (without
/// the continuation lines). A record without `;` is all text.
pub fn record_text(record: &str) -> &str {
    let text = record.split_once(';').map_or(record, |(_, text)| text);
    text.split('\n').next().unwrap_or_default()
}

/// `/dev/kmsg`, opened non-blocking.
pub struct Kmsg {
    file: File,
    buf: Vec<u8>,
}

impl Kmsg {
    /// Opens `/dev/kmsg`, at its end when `at_end` (only records logged from now on), else at
    /// the oldest record kept.
    pub fn open(at_end: bool) -> Result<Self, String> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open("/dev/kmsg")
            .map_err(|e| format!("open /dev/kmsg: {e}"))?;
        if at_end {
            file.seek(SeekFrom::End(0))
                .map_err(|e| format!("seek /dev/kmsg to its end: {e}"))?;
        }
        Ok(Self {
            file,
            buf: vec![0; KMSG_RECORD_MAX],
        })
    }

    /// [`Kmsg::open`] for the `main` of guest program `program`: on failure, says why on
    /// stderr and gives the exit code to return.
    pub fn open_for(program: &str, at_end: bool) -> Result<Self, std::process::ExitCode> {
        Self::open(at_end).map_err(|e| {
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        })
    }
}

impl RecordSource for Kmsg {
    /// Reads one record; `EAGAIN` is [`ReadOutcome::Empty`], `EPIPE`
    /// [`ReadOutcome::Overrun`] (the next read goes on with the oldest record still kept).
    fn next_record(&mut self) -> ReadOutcome {
        loop {
            return match self.file.read(&mut self.buf) {
                Ok(0) => ReadOutcome::Empty,
                Ok(n) => ReadOutcome::Record(String::from_utf8_lossy(&self.buf[..n]).into_owned()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => ReadOutcome::Empty,
                Err(e) if e.raw_os_error() == Some(EPIPE) => ReadOutcome::Overrun,
                Err(e) => ReadOutcome::Failed(e.to_string()),
            };
        }
    }
}

/// What went wrong while reading the kernel log, for a test's failure reason: `overruns`
/// reads that lost records (`EPIPE`), and the read error that stopped the reading, if any.
pub fn read_problems(overruns: u32, error: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    if overruns > 0 {
        problems.push(format!(
            "/dev/kmsg overrun (EPIPE) {overruns} time(s): records were lost"
        ));
    }
    if let Some(e) = error {
        problems.push(format!("reading /dev/kmsg: {e}"));
    }
    problems
}

/// The texts of the records one step of a test printed, and what went wrong reading them (as
/// [`read_problems`] says it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// The records' texts ([`record_text`]), in order.
    pub texts: Vec<String>,
    /// Lost records and read errors.
    pub problems: Vec<String>,
}

/// The pause between two reads of a source that had nothing.
const COLLECT_POLL: Duration = Duration::from_millis(1);

/// Reads records from `src` until `done` holds for the texts read so far and then nothing new
/// came for `settle` (so that a record printed twice is seen twice), or until `wait` has
/// passed, whichever is first; a read error stops it.
pub fn collect(
    src: &mut impl RecordSource,
    wait: Duration,
    settle: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Collected {
    let (mut texts, mut overruns, mut error) = (Vec::new(), 0, None);
    let start = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    loop {
        match src.next_record() {
            ReadOutcome::Record(r) => {
                texts.push(record_text(&r).to_string());
                quiet_since = None;
            }
            ReadOutcome::Overrun => overruns += 1,
            ReadOutcome::Failed(e) => {
                error = Some(e);
                break;
            }
            ReadOutcome::Empty => {
                if start.elapsed() > wait {
                    break;
                }
                if done(&texts) {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= settle {
                        break;
                    }
                }
                std::thread::sleep(COLLECT_POLL);
            }
        }
    }
    Collected {
        texts,
        problems: read_problems(overruns, error.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_after_the_first_semicolon_and_on_the_first_line() {
        assert_eq!(
            record_text("6,1234,5678901,-;my_mod: probe #3; again\n"),
            "my_mod: probe #3; again"
        );
        assert_eq!(
            record_text("6,1,2,-;drv dev: hello\n SUBSYSTEM=platform\n DEVICE=+platform:x\n"),
            "drv dev: hello"
        );
        assert_eq!(record_text("6,1,2,-;\n"), "");
        assert_eq!(record_text("no header\nsecond"), "no header");
        assert_eq!(record_text(""), "");
    }

    #[test]
    fn a_script_replays_then_stays_empty() {
        let mut src = VecDeque::from([
            ReadOutcome::Record("6,1,2,-;a\n".into()),
            ReadOutcome::Overrun,
        ]);
        assert_eq!(src.next_record(), ReadOutcome::Record("6,1,2,-;a\n".into()));
        assert_eq!(src.next_record(), ReadOutcome::Overrun);
        assert_eq!(src.next_record(), ReadOutcome::Empty);
        assert_eq!(src.next_record(), ReadOutcome::Empty);
    }

    #[test]
    fn collect_stops_once_done_and_quiet_or_at_the_deadline() {
        let rec = |t: &str| ReadOutcome::Record(format!("6,1,2,-;{t}\n"));
        let mut src = VecDeque::from([rec("a"), ReadOutcome::Overrun, rec("b"), rec("c")]);
        let t = Instant::now();
        let got = collect(
            &mut src,
            Duration::from_secs(10),
            Duration::from_millis(5),
            |texts| texts.iter().any(|x| x == "b"),
        );
        assert!(t.elapsed() < Duration::from_secs(5), "stopped when done");
        assert_eq!(got.texts, ["a", "b", "c"], "what came before quiet is kept");
        assert_eq!(
            got.problems,
            ["/dev/kmsg overrun (EPIPE) 1 time(s): records were lost"]
        );
        // Never done: it waits until the deadline.
        let t = Instant::now();
        let got = collect(
            &mut VecDeque::from([rec("x")]),
            Duration::from_millis(30),
            Duration::ZERO,
            |_| false,
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert_eq!(got.texts, ["x"]);
        // A read error ends it at once, with the error.
        let got = collect(
            &mut VecDeque::from([ReadOutcome::Failed("EIO".into()), rec("late")]),
            Duration::from_secs(10),
            Duration::ZERO,
            |_| false,
        );
        assert!(got.texts.is_empty());
        assert_eq!(got.problems, ["reading /dev/kmsg: EIO"]);
    }
}
