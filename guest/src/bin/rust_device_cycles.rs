//! `rust_device_cycles`: binds and unbinds a platform device to a (Rust) platform driver through
//! sysfs many times, and optionally loads and unloads the driver's module many times, checking
//! the kernel log lines the sample driver prints for every step; reports KTAP on stdout.
//!
//! ```text
//! rust_device_cycles --driver NAME --device NAME [--cycles N]
//!                    [--module PATH.ko [--module-cycles N]]
//! ```
//! `--cycles` defaults to 100 and `--module-cycles` to 20.
//!
//! The driver under test (the `rust_driver_platform` sample) prints, through `dev_info`:
//! - `probe #N`: probe ran; N counts the probes since the module was loaded, from 1;
//! - `unbind #N`: remove ran for binding N;
//! - `resource #N dropped`: the device-managed (`Devres`) resource of binding N was dropped;
//! - `resource of binding #M revoked`: printed by probe M+1, which finds that a reference to
//!   binding M's `Devres` kept elsewhere no longer gives access to the resource; the failure
//!   variant is `resource of binding #M still accessible`.
//!
//! These are read from `/dev/kmsg` (non-blocking, from its end), matched by substring in the
//! text of records that name the driver, the device or the module.
//!
//! Steps and KTAP tests (suite `rust_device_cycles`):
//! 1. `module_load`: with `--module`, `insmod` gives exactly `probe #1` within 5 s and the device
//!    is bound (skipped without `--module`). Without it, the number of the active binding is
//!    taken from the kernel log history, or learnt from the first unbind.
//! 2. `initial_binding`: the device is bound to the driver at the start.
//!    `unbind_bind_cycles`: each cycle writes the device name to the driver's `unbind` and then
//!    `bind` file; after unbind exactly one `unbind #k` and one `resource #k dropped` appear and
//!    the device has no `driver` link; after bind exactly one `probe #k+1` and one `resource of
//!    binding #k revoked` appear and the device's `driver` link names the driver. Any other
//!    record of the driver, or a `/dev/kmsg` overrun (`EPIPE`, records lost), fails the cycle.
//!    `probe_count`, `remove_count`, `drop_count`, `revoked_count`: the totals over the cycles
//!    each equal `--cycles`. `no_still_accessible`: no `still accessible` record so far.
//! 3. `module_unload`: `rmmod` gives exactly `unbind #k` and `resource #k dropped` for the last
//!    binding. `module_load_unload_cycles`: `--module-cycles` times, each `insmod` gives exactly
//!    `probe #1` and each `rmmod` exactly `unbind #1` and `resource #1 dropped`. `module_gone`:
//!    `/proc/modules` no longer lists the module. (All three are skipped without `--module`.)
//!
//! A diagnostic line gives the elapsed time of the cycle phases. The exit code is 0 only when
//! every test passed.

use guest::args::{self, Flags};
use guest::kmod::{self, module_name};
use guest::kmsg::{self, record_text, Kmsg, ReadOutcome, RecordSource};
use guest::ktap::verdict;
use guest::sysfs::Bus;
use guest::Ktap;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

/// The KTAP suite name.
const SUITE: &str = "rust_device_cycles";

/// The KTAP test names, in the order they are reported.
const TESTS: [&str; 11] = [
    "module_load",
    "initial_binding",
    "unbind_bind_cycles",
    "probe_count",
    "remove_count",
    "drop_count",
    "revoked_count",
    "no_still_accessible",
    "module_unload",
    "module_load_unload_cycles",
    "module_gone",
];

/// The reason given for the tests skipped without `--module`.
const NO_MODULE: &str = "no --module given";

/// How long a module load may take to print its `probe #1`.
const LOAD_WAIT: Duration = Duration::from_secs(5);
/// How long the records of one bind or unbind may take to arrive.
const STEP_WAIT: Duration = Duration::from_secs(2);
/// The wait used instead, once one step has missed its records (so that a broken driver does
/// not make every remaining step wait the whole time).
const SHORT_WAIT: Duration = Duration::from_millis(100);
/// The pause between two polls of `/dev/kmsg`.
const POLL: Duration = Duration::from_millis(1);

/// The kind of driver record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `probe #N`.
    Probe,
    /// `unbind #N`.
    Unbind,
    /// `resource #N dropped`.
    Dropped,
    /// `resource of binding #N revoked`.
    Revoked,
    /// `resource of binding #N still accessible`.
    StillAccessible,
}

/// The record patterns: text before the number, text right after it, and the kind. A pattern
/// with an empty suffix matches whatever follows the number. Checked in order.
const PATTERNS: [(&str, &str, Kind); 5] = [
    ("resource of binding #", " revoked", Kind::Revoked),
    (
        "resource of binding #",
        " still accessible",
        Kind::StillAccessible,
    ),
    ("resource #", " dropped", Kind::Dropped),
    ("unbind #", "", Kind::Unbind),
    ("probe #", "", Kind::Probe),
];

/// One driver record: its kind and the binding number it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    kind: Kind,
    binding: u64,
}

impl Event {
    /// The event of `kind` for binding `binding`.
    const fn new(kind: Kind, binding: u64) -> Self {
        Self { kind, binding }
    }
}

impl fmt::Display for Event {
    /// Writes the event as the driver prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.binding;
        match self.kind {
            Kind::Probe => write!(f, "probe #{n}"),
            Kind::Unbind => write!(f, "unbind #{n}"),
            Kind::Dropped => write!(f, "resource #{n} dropped"),
            Kind::Revoked => write!(f, "resource of binding #{n} revoked"),
            Kind::StillAccessible => write!(f, "resource of binding #{n} still accessible"),
        }
    }
}

/// Finds the driver event in the text of one record (the part after `;`), if any.
fn parse_event(text: &str) -> Option<Event> {
    PATTERNS.iter().find_map(|&(before, after, kind)| {
        let rest = &text[text.find(before)? + before.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let binding = rest[..digits].parse().ok()?;
        rest[digits..]
            .starts_with(after)
            .then_some(Event::new(kind, binding))
    })
}

/// Parses one `/dev/kmsg` record (`prio,seq,ts,flags;text` plus ` KEY=value` continuation
/// lines): the driver event in its text, when the text names one of `tags`.
fn parse_record(record: &str, tags: &[String]) -> Option<Event> {
    let text = record_text(record);
    if !tags.iter().any(|t| text.contains(t.as_str())) {
        return None;
    }
    parse_event(text)
}

/// What the driver printed during one step, as far as it has been read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Batch {
    /// The driver events, in log order.
    events: Vec<Event>,
    /// How many reads failed with `EPIPE`.
    overruns: u32,
    /// The error that stopped the reading, if any.
    error: Option<String>,
}

impl Batch {
    /// How many events equal `e`.
    fn count(&self, e: Event) -> usize {
        self.events.iter().filter(|&&x| x == e).count()
    }

    /// How many events are of kind `kind`.
    fn count_kind(&self, kind: Kind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }

    /// The binding number of the events of kind `kind`, when there are some and they all
    /// name the same binding.
    fn only(&self, kind: Kind) -> Option<u64> {
        let mut numbers = self
            .events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.binding);
        let first = numbers.next()?;
        numbers.all(|n| n == first).then_some(first)
    }
}

/// Reads records from `src` until there are no more, adding the events of the records that
/// name one of `tags` to `batch`. An overrun is counted and reading goes on; another error
/// is kept in `batch` and stops the reading.
fn drain(src: &mut impl RecordSource, tags: &[String], batch: &mut Batch) {
    loop {
        match src.next_record() {
            ReadOutcome::Record(r) => batch.events.extend(parse_record(&r, tags)),
            ReadOutcome::Empty => return,
            ReadOutcome::Overrun => batch.overruns += 1,
            ReadOutcome::Failed(e) => {
                batch.error = Some(e);
                return;
            }
        }
    }
}

/// Whether `batch` has an event of every kind in `wait_for` (a `still accessible` stands in
/// for a `revoked`): the step's records have arrived and waiting longer is pointless.
fn arrived(batch: &Batch, wait_for: &[Kind]) -> bool {
    wait_for.iter().all(|&want| {
        batch
            .events
            .iter()
            .any(|e| e.kind == want || (want == Kind::Revoked && e.kind == Kind::StillAccessible))
    })
}

/// Lists events for a failure message, shortened after ten.
fn describe(events: &[Event]) -> String {
    const SHOWN: usize = 10;
    if events.is_empty() {
        return "nothing".into();
    }
    let mut s: Vec<String> = events
        .iter()
        .take(SHOWN)
        .map(|e| format!("`{e}`"))
        .collect();
    if events.len() > SHOWN {
        s.push(format!("and {} more", events.len() - SHOWN));
    }
    s.join(", ")
}

/// Checks that `batch` holds each of `expected` exactly once and no other event, and that no
/// record was lost or unreadable.
fn check_exact(expected: &[Event], batch: &Batch) -> Result<(), String> {
    let mut problems = kmsg::read_problems(batch.overruns, batch.error.as_deref());
    for &want in expected {
        let n = batch.count(want);
        if n != 1 {
            problems.push(format!("expected one `{want}`, saw {n}"));
        }
    }
    let mut unexpected: Vec<Event> = Vec::new();
    for &e in &batch.events {
        if !expected.contains(&e) && !unexpected.contains(&e) {
            unexpected.push(e);
        }
    }
    for e in unexpected {
        match batch.count(e) {
            1 => problems.push(format!("unexpected `{e}`")),
            n => problems.push(format!("unexpected `{e}` ({n} times)")),
        }
    }
    verdict(problems).map_err(|p| format!("{p} (seen: {})", describe(&batch.events)))
}

/// Checks the records of an unbind of binding `active` (`None`: not known yet, learnt from an
/// `unbind #N` record). Returns the binding that was unbound, as far as known, and the verdict.
fn check_unbind(active: Option<u64>, batch: &Batch) -> (Option<u64>, Result<(), String>) {
    match active.or_else(|| batch.only(Kind::Unbind)) {
        Some(k) => (
            Some(k),
            check_exact(
                &[Event::new(Kind::Unbind, k), Event::new(Kind::Dropped, k)],
                batch,
            ),
        ),
        None => (
            None,
            Err(format!(
                "binding number unknown and no single `unbind #N` record (seen: {})",
                describe(&batch.events)
            )),
        ),
    }
}

/// Checks the records of a bind following the unbind of binding `previous` (`None`: not
/// known, learnt from a `probe #N` record). Returns the binding now active, as far as known
/// (the probe seen, so that one wrong number does not fail every later cycle), and the
/// verdict.
fn check_bind(previous: Option<u64>, batch: &Batch) -> (Option<u64>, Result<(), String>) {
    let seen = batch.only(Kind::Probe);
    match previous.map(|k| k + 1).or(seen) {
        Some(next) if next >= 2 => (
            seen.or(Some(next)),
            check_exact(
                &[
                    Event::new(Kind::Probe, next),
                    Event::new(Kind::Revoked, next - 1),
                ],
                batch,
            ),
        ),
        Some(next) => (
            Some(next),
            Err(format!(
                "a bind gave `probe #{next}`: the probe count restarted (seen: {})",
                describe(&batch.events)
            )),
        ),
        None => (
            None,
            Err(format!(
                "binding number unknown and no single `probe #N` record (seen: {})",
                describe(&batch.events)
            )),
        ),
    }
}

/// The binding active at the end of a kernel log history: the last probe, unless its unbind
/// followed.
fn active_from_history(events: &[Event]) -> Option<u64> {
    let mut active = None;
    for e in events {
        match e.kind {
            Kind::Probe => active = Some(e.binding),
            Kind::Unbind if active == Some(e.binding) => active = None,
            _ => {}
        }
    }
    active
}

/// Checks that the device is bound to `driver`, given the driver its `driver` link names.
fn expect_bound(bound_to: Option<String>, driver: &str) -> Result<(), String> {
    match bound_to {
        Some(d) if d == driver => Ok(()),
        Some(d) => Err(format!("device bound to `{d}`, not `{driver}`")),
        None => Err("device has no driver link".into()),
    }
}

/// Checks that the device is not bound, given the driver its `driver` link names.
fn expect_unbound(bound_to: Option<String>) -> Result<(), String> {
    match bound_to {
        None => Ok(()),
        Some(d) => Err(format!("device still bound to `{d}`")),
    }
}

/// Checks a total: `got` records of `what`, `want` expected.
fn expect_count(what: &str, got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{got} `{what}` records, expected {want}"))
    }
}

/// The driver, device and module under test, as seen by the program: the operations the
/// checks need, so that they run against a fake in the unit tests.
trait Rig {
    /// Writes the device name to the driver's `unbind` file.
    fn unbind(&mut self) -> Result<(), String>;
    /// Writes the device name to the driver's `bind` file.
    fn bind(&mut self) -> Result<(), String>;
    /// The driver the device's `driver` link names, if it has one.
    fn bound_to(&self) -> Option<String>;
    /// Collects the driver records logged since the last call, waiting until there is one of
    /// every kind in `wait_for` or `timeout` has passed.
    fn collect(&mut self, wait_for: &[Kind], timeout: Duration) -> Batch;
    /// The binding active according to the kernel log so far, if it tells.
    fn history_binding(&mut self) -> Option<u64>;
    /// Loads the module.
    fn insmod(&mut self) -> Result<(), String>;
    /// Unloads the module.
    fn rmmod(&mut self) -> Result<(), String>;
    /// Whether `/proc/modules` lists the module.
    fn module_listed(&self) -> bool;
}

/// Collects the records of steps, shortening the waits once a step missed its records.
#[derive(Debug, Default)]
struct Collector {
    missed: bool,
}

impl Collector {
    /// Collects the records of one step (see [`Rig::collect`]), waiting at most `timeout`, or
    /// [`SHORT_WAIT`] once a step has missed its records.
    fn collect(&mut self, rig: &mut impl Rig, wait_for: &[Kind], timeout: Duration) -> Batch {
        let timeout = if self.missed {
            timeout.min(SHORT_WAIT)
        } else {
            timeout
        };
        let batch = rig.collect(wait_for, timeout);
        self.missed |= !arrived(&batch, wait_for);
        batch
    }
}

/// Totals of the driver records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    probes: usize,
    removes: usize,
    drops: usize,
    revoked: usize,
    still: usize,
}

impl Tally {
    /// Adds the events of `batch`.
    fn add(&mut self, batch: &Batch) {
        self.probes += batch.count_kind(Kind::Probe);
        self.removes += batch.count_kind(Kind::Unbind);
        self.drops += batch.count_kind(Kind::Dropped);
        self.revoked += batch.count_kind(Kind::Revoked);
        self.still += batch.count_kind(Kind::StillAccessible);
    }
}

/// The outcome of a series of cycles.
#[derive(Debug, Default)]
struct CycleReport {
    /// How many cycles were started.
    ran: u32,
    /// How many cycles failed.
    failed: u32,
    /// The first failure, with its cycle number.
    first_failure: Option<String>,
    /// The totals of the records seen.
    tally: Tally,
    /// The binding active after the cycles, as far as known.
    active: Option<u64>,
}

impl CycleReport {
    /// Records the failure of cycle `cycle`.
    fn fail(&mut self, cycle: u32, problems: &[String]) {
        self.failed += 1;
        self.first_failure
            .get_or_insert_with(|| format!("cycle {cycle}: {}", problems.join("; ")));
    }

    /// The verdict on `planned` cycles.
    fn verdict(&self, planned: u32) -> Result<(), String> {
        match &self.first_failure {
            Some(first) => Err(format!(
                "{} of {planned} cycles failed, first {first}",
                self.failed
            )),
            None if self.ran < planned => Err(format!("only {} of {planned} cycles ran", self.ran)),
            None => Ok(()),
        }
    }
}

/// Runs `cycles` unbind/bind cycles, starting with binding `active` (`None`: learnt from the
/// first unbind), and checks each step.
fn bind_cycles(
    rig: &mut impl Rig,
    col: &mut Collector,
    driver: &str,
    cycles: u32,
    mut active: Option<u64>,
) -> CycleReport {
    const UNBIND_KINDS: [Kind; 2] = [Kind::Unbind, Kind::Dropped];
    const BIND_KINDS: [Kind; 2] = [Kind::Probe, Kind::Revoked];
    let mut rep = CycleReport {
        active,
        ..CycleReport::default()
    };
    for i in 1..=cycles {
        rep.ran = i;
        let mut problems = Vec::new();
        if let Err(e) = rig.unbind() {
            problems.push(format!("writing unbind: {e}"));
            rep.fail(i, &problems);
            break;
        }
        let batch = col.collect(rig, &UNBIND_KINDS, STEP_WAIT);
        rep.tally.add(&batch);
        let (unbound, r) = check_unbind(active, &batch);
        let label = unbound.map_or_else(|| "?".into(), |k| k.to_string());
        problems.extend(r.err().map(|e| format!("after unbind of #{label}: {e}")));
        problems.extend(
            expect_unbound(rig.bound_to())
                .err()
                .map(|e| format!("after unbind of #{label}: {e}")),
        );
        if let Err(e) = rig.bind() {
            problems.push(format!("writing bind: {e}"));
            rep.fail(i, &problems);
            break;
        }
        let batch = col.collect(rig, &BIND_KINDS, STEP_WAIT);
        rep.tally.add(&batch);
        let (bound, r) = check_bind(unbound, &batch);
        problems.extend(r.err().map(|e| format!("after bind: {e}")));
        problems.extend(
            expect_bound(rig.bound_to(), driver)
                .err()
                .map(|e| format!("after bind: {e}")),
        );
        active = bound;
        rep.active = active;
        if !problems.is_empty() {
            rep.fail(i, &problems);
        }
    }
    rep
}

/// Loads the module and checks that it gives exactly `probe #1` and binds the device.
fn load_step(rig: &mut impl Rig, col: &mut Collector, driver: &str) -> (Batch, Result<(), String>) {
    if let Err(e) = rig.insmod() {
        return (Batch::default(), Err(e));
    }
    let batch = col.collect(rig, &[Kind::Probe], LOAD_WAIT);
    let mut problems = Vec::new();
    problems.extend(check_exact(&[Event::new(Kind::Probe, 1)], &batch).err());
    problems.extend(expect_bound(rig.bound_to(), driver).err());
    (batch, verdict(problems))
}

/// Unloads the module and checks that it gives exactly `unbind #k` and `resource #k dropped`
/// for the active binding `active` (`None`: learnt from the records) and unbinds the device.
fn unload_step(
    rig: &mut impl Rig,
    col: &mut Collector,
    active: Option<u64>,
) -> (Batch, Result<(), String>) {
    if let Err(e) = rig.rmmod() {
        return (Batch::default(), Err(e));
    }
    let batch = col.collect(rig, &[Kind::Unbind, Kind::Dropped], STEP_WAIT);
    let mut problems = Vec::new();
    problems.extend(check_unbind(active, &batch).1.err());
    problems.extend(expect_unbound(rig.bound_to()).err());
    (batch, verdict(problems))
}

/// Runs `cycles` module load/unload cycles.
fn module_cycles(
    rig: &mut impl Rig,
    col: &mut Collector,
    driver: &str,
    cycles: u32,
) -> CycleReport {
    let mut rep = CycleReport::default();
    for i in 1..=cycles {
        rep.ran = i;
        let (batch, loaded) = load_step(rig, col, driver);
        rep.tally.add(&batch);
        if let Err(e) = loaded {
            rep.fail(i, &[format!("load: {e}")]);
            if !rig.module_listed() {
                break;
            }
        }
        let (batch, unloaded) = unload_step(rig, col, Some(1));
        rep.tally.add(&batch);
        if let Err(e) = unloaded {
            rep.fail(i, &[format!("unload: {e}")]);
            if rig.module_listed() {
                break;
            }
        }
    }
    rep
}

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    driver: String,
    device: String,
    cycles: u32,
    module: Option<PathBuf>,
    module_cycles: u32,
}

/// Parses the arguments (without the program name).
fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let (mut driver, mut device, mut module) = (None, None, None);
    let (mut cycles, mut mod_cycles) = (100, None);
    let count = |v: String| -> Result<u32, String> {
        v.parse().map_err(|_| format!("'{v}' is not a count"))
    };
    let mut flags = Flags::new(argv);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--driver" => driver = Some(flags.value(&flag)?),
            "--device" => device = Some(flags.value(&flag)?),
            "--cycles" => cycles = count(flags.value(&flag)?)?,
            "--module" => module = Some(PathBuf::from(flags.value(&flag)?)),
            "--module-cycles" => mod_cycles = Some(count(flags.value(&flag)?)?),
            other => return Err(args::unknown(other)),
        }
    }
    if let Some(m) = &module {
        module_name(m)?;
    } else if mod_cycles.is_some() {
        return Err("--module-cycles needs --module".into());
    }
    Ok(Args {
        driver: args::required(driver, "--driver")?,
        device: args::required(device, "--device")?,
        cycles,
        module,
        module_cycles: mod_cycles.unwrap_or(20),
    })
}

/// Runs every step against `rig` and reports them as one KTAP suite; returns the exit code.
fn run(rig: &mut impl Rig, args: &Args) -> i32 {
    let mut k = Ktap::start(SUITE, TESTS.len());
    let mut col = Collector::default();
    let driver = args.driver.as_str();
    let mut still = 0;

    let mut active = None;
    if args.module.is_some() {
        let (batch, r) = load_step(rig, &mut col, driver);
        still += batch.count_kind(Kind::StillAccessible);
        if r.is_ok() {
            active = Some(1);
        }
        k.result("module_load", r);
    } else {
        k.skip("module_load", NO_MODULE);
    }
    if active.is_none() {
        active = rig.history_binding();
    }

    let initial = expect_bound(rig.bound_to(), driver);
    match active {
        Some(n) => k.diag(&format!("active binding at start: #{n}")),
        None => k.diag("active binding at start: unknown, learnt from the first unbind"),
    }
    let start_ok = initial.is_ok();
    k.result(
        "initial_binding",
        initial.map_err(|e| format!("device `{}`: {e}", args.device)),
    );

    let t0 = Instant::now();
    let rep = if start_ok {
        bind_cycles(rig, &mut col, driver, args.cycles, active)
    } else {
        CycleReport {
            first_failure: Some("not run: the device is not bound at the start".into()),
            ..CycleReport::default()
        }
    };
    let bind_time = t0.elapsed();
    k.result("unbind_bind_cycles", rep.verdict(args.cycles));
    let t = rep.tally;
    still += t.still;
    let want = usize::try_from(args.cycles).unwrap_or(usize::MAX);
    k.diag(&format!(
        "records over {} cycles: probe {}, unbind {}, resource dropped {}, revoked {}, \
         still accessible {} (expected {want} each, still accessible 0)",
        rep.ran, t.probes, t.removes, t.drops, t.revoked, t.still
    ));
    k.result("probe_count", expect_count("probe #N", t.probes, want));
    k.result("remove_count", expect_count("unbind #N", t.removes, want));
    k.result(
        "drop_count",
        expect_count("resource #N dropped", t.drops, want),
    );
    k.result(
        "revoked_count",
        expect_count("resource of binding #N revoked", t.revoked, want),
    );
    k.result(
        "no_still_accessible",
        expect_count("resource of binding #N still accessible", still, 0),
    );

    let mut timing = format!(
        "elapsed: {} unbind/bind cycles in {:.3} s ({:.2} ms per cycle)",
        rep.ran,
        bind_time.as_secs_f64(),
        per_cycle_ms(bind_time, rep.ran)
    );
    if args.module.is_some() {
        // Without a known binding, the check learns it from the `unbind #N` record.
        let last = if start_ok { rep.active } else { active };
        k.result("module_unload", unload_step(rig, &mut col, last).1);
        let t0 = Instant::now();
        let mrep = module_cycles(rig, &mut col, driver, args.module_cycles);
        let module_time = t0.elapsed();
        k.result(
            "module_load_unload_cycles",
            mrep.verdict(args.module_cycles),
        );
        k.result(
            "module_gone",
            if rig.module_listed() {
                Err("/proc/modules still lists the module".into())
            } else {
                Ok(())
            },
        );
        timing += &format!(
            "; {} module load/unload cycles in {:.3} s ({:.2} ms per cycle)",
            mrep.ran,
            module_time.as_secs_f64(),
            per_cycle_ms(module_time, mrep.ran)
        );
    } else {
        for name in ["module_unload", "module_load_unload_cycles", "module_gone"] {
            k.skip(name, NO_MODULE);
        }
    }
    k.diag(&timing);
    k.finish()
}

/// Milliseconds per cycle.
fn per_cycle_ms(d: Duration, cycles: u32) -> f64 {
    d.as_secs_f64() * 1000.0 / f64::from(cycles.max(1))
}

/// The real system: sysfs, `/dev/kmsg`, `insmod`/`rmmod` and `/proc/modules`.
struct Guest {
    /// The platform bus, where the driver and the device are.
    bus: Bus,
    driver: String,
    device: String,
    /// The module's file and the name it loads as.
    module: Option<(PathBuf, String)>,
    kmsg: Kmsg,
    /// The record texts that are the driver's contain one of these.
    tags: Vec<String>,
}

impl Guest {
    /// Opens `/dev/kmsg` at its end for the run described by `args`.
    fn new(args: &Args) -> Result<Self, String> {
        let module = match &args.module {
            Some(p) => Some((p.clone(), module_name(p)?)),
            None => None,
        };
        let mut tags = vec![args.driver.clone(), args.device.clone()];
        tags.extend(module.as_ref().map(|(_, name)| name.clone()));
        Ok(Self {
            bus: Bus::new("platform"),
            driver: args.driver.clone(),
            device: args.device.clone(),
            module,
            kmsg: Kmsg::open(true)?,
            tags,
        })
    }

    /// The module, or an error for a run without `--module`.
    fn module(&self) -> Result<&(PathBuf, String), String> {
        self.module.as_ref().ok_or_else(|| NO_MODULE.to_string())
    }
}

impl Rig for Guest {
    fn unbind(&mut self) -> Result<(), String> {
        self.bus.unbind(&self.driver, &self.device)
    }

    fn bind(&mut self) -> Result<(), String> {
        self.bus.bind(&self.driver, &self.device)
    }

    fn bound_to(&self) -> Option<String> {
        self.bus.driver_of(&self.device)
    }

    fn collect(&mut self, wait_for: &[Kind], timeout: Duration) -> Batch {
        let deadline = Instant::now() + timeout;
        let mut batch = Batch::default();
        loop {
            drain(&mut self.kmsg, &self.tags, &mut batch);
            if batch.error.is_some() || arrived(&batch, wait_for) || Instant::now() >= deadline {
                return batch;
            }
            thread::sleep(POLL);
        }
    }

    fn history_binding(&mut self) -> Option<u64> {
        let mut history = Kmsg::open(false).ok()?;
        let mut batch = Batch::default();
        drain(&mut history, &self.tags, &mut batch);
        active_from_history(&batch.events)
    }

    fn insmod(&mut self) -> Result<(), String> {
        let (path, _) = self.module()?;
        kmod::insmod(path)
    }

    fn rmmod(&mut self) -> Result<(), String> {
        let (_, name) = self.module()?;
        kmod::rmmod(name)
    }

    fn module_listed(&self) -> bool {
        self.module
            .as_ref()
            .is_some_and(|(_, name)| kmod::is_loaded(name))
    }
}

/// The usage line.
const USAGE: &str = "usage: rust_device_cycles --driver NAME --device NAME [--cycles N] \
     [--module PATH.ko [--module-cycles N]]";

fn main() -> ExitCode {
    let args = match guest::start("rust_device_cycles", Some(USAGE), parse_args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let status = match Guest::new(&args) {
        Ok(mut guest) => run(&mut guest, &args),
        Err(e) => {
            let mut k = Ktap::start(SUITE, TESTS.len());
            for name in TESTS {
                k.result(name, Err(e.clone()));
            }
            k.finish()
        }
    };
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    const DRIVER: &str = "rust_driver_platform";

    /// Records as `/dev/kmsg` returned them for one unbind and one bind (with the dictionary
    /// lines `dev_info` adds, and another driver's lines in between).
    const RECORDED: &str = "\
6,1201,5678901,-;rust_driver_platform rust_driver_platform: unbind #1
 SUBSYSTEM=platform
 DEVICE=+platform:rust_driver_platform
6,1202,5678950,-;rust_driver_platform rust_driver_platform: resource #1 dropped
 SUBSYSTEM=platform
 DEVICE=+platform:rust_driver_platform
6,1203,5678990,-;e1000 0000:00:03.0: probe #7
6,1204,5679001,-;rust_driver_platform rust_driver_platform: probe #2
 SUBSYSTEM=platform
 DEVICE=+platform:rust_driver_platform
4,1205,5679003,-;random: crng init done
6,1206,5679050,-;rust_driver_platform rust_driver_platform: resource of binding #1 revoked
 SUBSYSTEM=platform
 DEVICE=+platform:rust_driver_platform
";

    fn tags() -> Vec<String> {
        vec![DRIVER.to_string()]
    }

    /// Splits recorded `/dev/kmsg` output into one read per record.
    fn records(text: &str) -> VecDeque<ReadOutcome> {
        let mut out: Vec<String> = Vec::new();
        for line in text.lines() {
            match out.last_mut() {
                Some(r) if line.starts_with(' ') => r.push_str(&format!("{line}\n")),
                _ => out.push(format!("{line}\n")),
            }
        }
        out.into_iter().map(ReadOutcome::Record).collect()
    }

    /// The batch of `text`'s driver records.
    fn batch_of(text: &str) -> Batch {
        let mut b = Batch::default();
        drain(&mut records(text), &tags(), &mut b);
        b
    }

    /// A record of the driver, as `/dev/kmsg` gives it.
    fn rec(seq: u64, text: &str) -> String {
        format!("6,{seq},{},-;{DRIVER} {DRIVER}: {text}\n", seq * 1000)
    }

    fn ev(kind: Kind, n: u64) -> Event {
        Event::new(kind, n)
    }

    #[test]
    fn events_parse_and_print_as_the_driver_writes_them() {
        for e in [
            ev(Kind::Probe, 3),
            ev(Kind::Unbind, 12),
            ev(Kind::Dropped, 1),
            ev(Kind::Revoked, 99),
            ev(Kind::StillAccessible, 4),
        ] {
            let text = format!("{DRIVER} {DRIVER}: {e}");
            assert_eq!(parse_event(&text), Some(e), "{text}");
        }
        assert_eq!(parse_event("probe #"), None);
        assert_eq!(parse_event("probe #x"), None);
        assert_eq!(parse_event("resource #3 leaked"), None);
        assert_eq!(parse_event("resource of binding #3 lost"), None);
        assert_eq!(parse_event("probe #18446744073709551616"), None);
        assert_eq!(parse_event("bound"), None);
    }

    #[test]
    fn records_are_matched_by_tag_after_the_semicolon() {
        let line = "6,1234,5678901,-;rust_driver_platform rust_driver_platform: probe #3\n";
        assert_eq!(parse_record(line, &tags()), Some(ev(Kind::Probe, 3)));
        // Continuation (dictionary) lines are not part of the text.
        let dict = "6,1,2,-;rust_driver_platform x: hello\n DEVICE=probe #4\n";
        assert_eq!(parse_record(dict, &tags()), None);
        // Another driver's record, and a tag only in the header, do not count.
        assert_eq!(parse_record("6,1,2,-;e1000: probe #3\n", &tags()), None);
        assert_eq!(
            parse_record("6,1,2,rust_driver_platform;probe #3\n", &tags()),
            None
        );
        // pr_info with the module prefix matches through the module tag.
        let tags = vec!["other_drv".to_string(), "my_mod".to_string()];
        assert_eq!(
            parse_record("6,1,2,-;my_mod: unbind #2\n", &tags),
            Some(ev(Kind::Unbind, 2))
        );
    }

    #[test]
    fn recorded_cycle_passes() {
        let b = batch_of(RECORDED);
        assert_eq!(
            b.events,
            vec![
                ev(Kind::Unbind, 1),
                ev(Kind::Dropped, 1),
                ev(Kind::Probe, 2),
                ev(Kind::Revoked, 1)
            ]
        );
        let (unbind_part, bind_part) = RECORDED.split_at(RECORDED.find("6,1203").unwrap());
        let (k, r) = check_unbind(Some(1), &batch_of(unbind_part));
        assert_eq!((k, r), (Some(1), Ok(())));
        let (k, r) = check_bind(Some(1), &batch_of(bind_part));
        assert_eq!((k, r), (Some(2), Ok(())));
        assert!(arrived(
            &batch_of(unbind_part),
            &[Kind::Unbind, Kind::Dropped]
        ));
        assert!(!arrived(&batch_of(unbind_part), &[Kind::Probe]));
    }

    #[test]
    fn missing_drop_line_fails_the_unbind() {
        let text = rec(1, "unbind #5");
        let b = batch_of(&text);
        assert!(!arrived(&b, &[Kind::Unbind, Kind::Dropped]));
        let (k, r) = check_unbind(Some(5), &b);
        assert_eq!(k, Some(5));
        let e = r.unwrap_err();
        assert!(
            e.contains("expected one `resource #5 dropped`, saw 0"),
            "{e}"
        );
        assert!(e.contains("seen: `unbind #5`"), "{e}");
        // A drop of the wrong binding is both missing and unexpected.
        let b = batch_of(&[rec(1, "unbind #5"), rec(2, "resource #4 dropped")].concat());
        let e = check_unbind(Some(5), &b).1.unwrap_err();
        assert!(
            e.contains("saw 0") && e.contains("unexpected `resource #4 dropped`"),
            "{e}"
        );
    }

    #[test]
    fn duplicated_probe_fails_the_bind_and_resyncs() {
        let text = [
            rec(1, "probe #6"),
            rec(2, "probe #6"),
            rec(3, "resource of binding #5 revoked"),
        ]
        .concat();
        let (k, r) = check_bind(Some(5), &batch_of(&text));
        assert_eq!(k, Some(6));
        let e = r.unwrap_err();
        assert!(e.contains("expected one `probe #6`, saw 2"), "{e}");
        // A probe with a wrong number: the next cycle expects the number seen.
        let text = [rec(1, "probe #9"), rec(2, "resource of binding #5 revoked")].concat();
        let (k, r) = check_bind(Some(5), &batch_of(&text));
        assert_eq!(k, Some(9));
        assert!(r.unwrap_err().contains("unexpected `probe #9`"));
    }

    #[test]
    fn still_accessible_fails_the_bind() {
        let text = [
            rec(1, "probe #3"),
            rec(2, "resource of binding #2 still accessible"),
        ]
        .concat();
        let b = batch_of(&text);
        assert!(
            arrived(&b, &[Kind::Probe, Kind::Revoked]),
            "no need to wait"
        );
        let e = check_bind(Some(2), &b).1.unwrap_err();
        assert!(
            e.contains("expected one `resource of binding #2 revoked`, saw 0")
                && e.contains("unexpected `resource of binding #2 still accessible`"),
            "{e}"
        );
        let mut t = Tally::default();
        t.add(&b);
        assert_eq!((t.probes, t.revoked, t.still), (1, 0, 1));
    }

    #[test]
    fn epipe_is_an_overrun_and_fails_the_step() {
        let mut src: VecDeque<ReadOutcome> = VecDeque::from([
            ReadOutcome::Record(rec(10, "unbind #2")),
            ReadOutcome::Overrun,
            ReadOutcome::Record(rec(400, "resource #2 dropped")),
        ]);
        let mut b = Batch::default();
        drain(&mut src, &tags(), &mut b);
        assert_eq!(b.overruns, 1);
        assert_eq!(b.events.len(), 2, "reading goes on after EPIPE");
        let e = check_unbind(Some(2), &b).1.unwrap_err();
        assert!(e.contains("overrun (EPIPE) 1 time(s)"), "{e}");
        // Another error stops the reading and fails too.
        let mut src = VecDeque::from([
            ReadOutcome::Failed("Invalid argument".into()),
            ReadOutcome::Record(rec(1, "probe #1")),
        ]);
        let mut b = Batch::default();
        drain(&mut src, &tags(), &mut b);
        assert!(b.events.is_empty());
        let e = check_exact(&[], &b).unwrap_err();
        assert!(e.contains("reading /dev/kmsg: Invalid argument"), "{e}");
    }

    #[test]
    fn unknown_binding_is_learnt_from_the_records() {
        let b = batch_of(&[rec(1, "unbind #41"), rec(2, "resource #41 dropped")].concat());
        assert_eq!(check_unbind(None, &b), (Some(41), Ok(())));
        let b = batch_of(&[rec(1, "unbind #41"), rec(2, "unbind #42")].concat());
        assert_eq!(check_unbind(None, &b).0, None);
        assert!(check_unbind(None, &Batch::default()).1.is_err());
        let b = batch_of(
            &[
                rec(1, "probe #42"),
                rec(2, "resource of binding #41 revoked"),
            ]
            .concat(),
        );
        assert_eq!(check_bind(None, &b), (Some(42), Ok(())));
        let b = batch_of(&rec(1, "probe #1"));
        assert!(check_bind(None, &b).1.unwrap_err().contains("restarted"));
    }

    #[test]
    fn history_gives_the_active_binding() {
        let p = |n| ev(Kind::Probe, n);
        let u = |n| ev(Kind::Unbind, n);
        assert_eq!(active_from_history(&[]), None);
        assert_eq!(active_from_history(&[p(1), u(1), p(2)]), Some(2));
        assert_eq!(active_from_history(&[p(1), u(1), p(2), u(2)]), None);
        // A module reload restarts the count.
        assert_eq!(active_from_history(&[p(7), u(7), p(1)]), Some(1));
        assert_eq!(active_from_history(&[p(3), u(2)]), Some(3));
    }

    #[test]
    fn arguments_parse() {
        let parse = |v: &[&str]| parse_args(v.iter().map(|s| s.to_string()));
        let a = parse(&["--driver", "d", "--device", "v"]).unwrap();
        assert_eq!(
            (a.cycles, a.module.as_ref(), a.module_cycles),
            (100, None, 20)
        );
        let a = parse(&[
            "--driver",
            "d",
            "--device",
            "v",
            "--cycles",
            "7",
            "--module",
            "/lib/rust_driver_platform.ko",
            "--module-cycles",
            "3",
        ])
        .unwrap();
        assert_eq!(
            (a.cycles, a.module_cycles),
            (7, 3),
            "{:?}",
            a.module.as_deref()
        );
        assert!(parse(&["--device", "v"]).is_err());
        assert!(parse(&["--driver", "d"]).is_err());
        assert!(parse(&["--driver", "d", "--device", "v", "--cycles", "-1"]).is_err());
        assert!(parse(&["--driver", "d", "--device", "v", "--module-cycles", "2"]).is_err());
        assert!(parse(&["--driver", "d", "--device", "v", "--module", "x.o"]).is_err());
        assert!(parse(&["--driver", "d", "--device"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn bindings_and_counts_are_checked() {
        assert_eq!(expect_bound(Some(DRIVER.into()), DRIVER), Ok(()));
        assert!(expect_bound(Some("other".into()), DRIVER).is_err());
        assert!(expect_bound(None, DRIVER).is_err());
        assert_eq!(expect_unbound(None), Ok(()));
        assert!(expect_unbound(Some(DRIVER.into())).is_err());
        assert_eq!(expect_count("probe #N", 3, 3), Ok(()));
        assert_eq!(
            expect_count("probe #N", 2, 3),
            Err("2 `probe #N` records, expected 3".into())
        );
        let many: Vec<Event> = (1..=12).map(|n| ev(Kind::Probe, n)).collect();
        assert!(describe(&many).ends_with("`probe #10`, and 2 more"));
        assert_eq!(describe(&[]), "nothing");
    }

    /// How the fake driver misbehaves.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fault {
        None,
        /// No `resource #N dropped` at the unbind of binding N.
        MissingDrop(u64),
        /// Probe N prints twice.
        DuplicateProbe(u64),
        /// Probe N finds binding N-1's resource still accessible.
        StillAccessible(u64),
        /// The reader loses records after the unbind of binding N.
        Overrun(u64),
        /// The driver link does not go away at the unbind of binding N.
        StaysBound(u64),
    }

    /// A fake kernel running a fake `rust_driver_platform`.
    struct FakeRig {
        loaded: bool,
        bound: bool,
        /// Probes since the module load.
        probes: u64,
        /// The binding whose `Devres` the driver keeps a reference to.
        kept: Option<u64>,
        log: VecDeque<ReadOutcome>,
        seq: u64,
        history: Option<u64>,
        fault: Fault,
        stuck_link: bool,
    }

    impl FakeRig {
        /// A kernel with the module loaded (`loaded`) or not.
        fn new(loaded: bool, fault: Fault) -> Self {
            let mut rig = Self {
                loaded: false,
                bound: false,
                probes: 0,
                kept: None,
                log: VecDeque::new(),
                seq: 0,
                history: None,
                fault,
                stuck_link: false,
            };
            if loaded {
                rig.insmod().unwrap();
                rig.log.clear();
                rig.history = Some(1);
            }
            rig
        }

        fn print(&mut self, text: &str) {
            self.seq += 1;
            let r = format!(
                "{}\n SUBSYSTEM=platform\n DEVICE=+platform:{DRIVER}\n",
                rec(self.seq, text).trim_end()
            );
            self.log.push_back(ReadOutcome::Record(r));
            // Noise from another driver with the same wording.
            self.log.push_back(ReadOutcome::Record(format!(
                "6,{},0,-;e1000 0000:00:03.0: probe #{}\n",
                self.seq, self.seq
            )));
        }

        fn probe(&mut self) {
            self.probes += 1;
            let n = self.probes;
            self.print(&format!("probe #{n}"));
            if self.fault == Fault::DuplicateProbe(n) {
                self.print(&format!("probe #{n}"));
            }
            if let Some(m) = self.kept.take() {
                if self.fault == Fault::StillAccessible(n) {
                    self.print(&format!("resource of binding #{m} still accessible"));
                } else {
                    self.print(&format!("resource of binding #{m} revoked"));
                }
            }
            self.bound = true;
            self.stuck_link = false;
        }

        fn remove(&mut self) {
            let n = self.probes;
            self.print(&format!("unbind #{n}"));
            if self.fault != Fault::MissingDrop(n) {
                self.print(&format!("resource #{n} dropped"));
            }
            if self.fault == Fault::Overrun(n) {
                self.log.push_back(ReadOutcome::Overrun);
            }
            self.stuck_link = self.fault == Fault::StaysBound(n);
            self.kept = Some(n);
            self.bound = false;
        }
    }

    impl Rig for FakeRig {
        fn unbind(&mut self) -> Result<(), String> {
            if !self.bound {
                return Err("No such device".into());
            }
            self.remove();
            Ok(())
        }

        fn bind(&mut self) -> Result<(), String> {
            if self.bound || !self.loaded {
                return Err("No such device".into());
            }
            self.probe();
            Ok(())
        }

        fn bound_to(&self) -> Option<String> {
            (self.bound || self.stuck_link).then(|| DRIVER.to_string())
        }

        fn collect(&mut self, _wait_for: &[Kind], _timeout: Duration) -> Batch {
            let mut b = Batch::default();
            drain(&mut self.log, &tags(), &mut b);
            b
        }

        fn history_binding(&mut self) -> Option<u64> {
            self.history
        }

        fn insmod(&mut self) -> Result<(), String> {
            if self.loaded {
                return Err("insmod: can't insert: File exists".into());
            }
            self.loaded = true;
            self.probes = 0;
            self.kept = None;
            self.probe();
            Ok(())
        }

        fn rmmod(&mut self) -> Result<(), String> {
            if !self.loaded {
                return Err("rmmod: can't unload: No such file".into());
            }
            if self.bound {
                self.remove();
            }
            self.loaded = false;
            self.stuck_link = false;
            Ok(())
        }

        fn module_listed(&self) -> bool {
            self.loaded
        }
    }

    fn args(module: bool) -> Args {
        Args {
            driver: DRIVER.into(),
            device: DRIVER.into(),
            cycles: 10,
            module: module.then(|| PathBuf::from("/rust_driver_platform.ko")),
            module_cycles: 4,
        }
    }

    #[test]
    fn a_correct_driver_passes_every_step() {
        let mut rig = FakeRig::new(false, Fault::None);
        assert_eq!(run(&mut rig, &args(true)), 0);
        assert!(!rig.loaded);
        // Without --module, on a driver loaded earlier (the binding from the history).
        let mut rig = FakeRig::new(true, Fault::None);
        assert_eq!(run(&mut rig, &args(false)), 0);
        assert_eq!(rig.probes, 11);
        // ... or without a history: learnt from the first unbind.
        let mut rig = FakeRig::new(true, Fault::None);
        rig.history = None;
        assert_eq!(run(&mut rig, &args(false)), 0);
    }

    #[test]
    fn cycles_name_the_first_failing_cycle() {
        for (fault, cycle, what) in [
            (
                Fault::MissingDrop(3),
                3,
                "expected one `resource #3 dropped`, saw 0",
            ),
            (
                Fault::DuplicateProbe(5),
                4,
                "expected one `probe #5`, saw 2",
            ),
            (
                Fault::StillAccessible(8),
                7,
                "unexpected `resource of binding #7 still accessible`",
            ),
            (Fault::Overrun(4), 4, "overrun (EPIPE)"),
            (
                Fault::StaysBound(6),
                6,
                "after unbind of #6: device still bound",
            ),
        ] {
            let mut rig = FakeRig::new(true, fault);
            let mut col = Collector::default();
            let rep = bind_cycles(&mut rig, &mut col, DRIVER, 10, Some(1));
            let e = rep.verdict(10).unwrap_err();
            assert!(
                e.starts_with(&format!("1 of 10 cycles failed, first cycle {cycle}:")),
                "{e}"
            );
            assert!(e.contains(what), "{fault:?}: {e}");
            assert_eq!(rep.active, Some(11), "{fault:?}: later cycles resync");
            // The whole run fails too.
            let mut rig = FakeRig::new(true, fault);
            assert_eq!(run(&mut rig, &args(false)), 1, "{fault:?}");
        }
    }

    #[test]
    fn totals_count_every_record() {
        let mut rig = FakeRig::new(true, Fault::DuplicateProbe(3));
        let rep = bind_cycles(&mut rig, &mut Collector::default(), DRIVER, 5, Some(1));
        let t = rep.tally;
        assert_eq!(
            (t.probes, t.removes, t.drops, t.revoked, t.still),
            (6, 5, 5, 5, 0)
        );
        let mut rig = FakeRig::new(true, Fault::MissingDrop(2));
        let t = bind_cycles(&mut rig, &mut Collector::default(), DRIVER, 5, Some(1)).tally;
        assert_eq!((t.probes, t.removes, t.drops), (5, 5, 4));
    }

    #[test]
    fn an_unbound_device_or_a_failed_write_stops_the_cycles() {
        let mut rig = FakeRig::new(false, Fault::None);
        assert_eq!(run(&mut rig, &args(false)), 1, "not bound at the start");
        let mut rig = FakeRig::new(false, Fault::None);
        let rep = bind_cycles(&mut rig, &mut Collector::default(), DRIVER, 5, None);
        assert_eq!(rep.ran, 1);
        let e = rep.verdict(5).unwrap_err();
        assert!(e.contains("cycle 1: writing unbind: No such device"), "{e}");
    }

    #[test]
    fn module_cycles_expect_a_fresh_count_on_every_load() {
        let mut rig = FakeRig::new(false, Fault::None);
        let rep = module_cycles(&mut rig, &mut Collector::default(), DRIVER, 3);
        assert_eq!(rep.verdict(3), Ok(()));
        assert_eq!(
            (rep.tally.probes, rep.tally.removes, rep.tally.drops),
            (3, 3, 3)
        );
        // A drop missing at every unload (binding 1 of each load).
        let mut rig = FakeRig::new(false, Fault::MissingDrop(1));
        let rep = module_cycles(&mut rig, &mut Collector::default(), DRIVER, 3);
        let e = rep.verdict(3).unwrap_err();
        assert!(
            e.starts_with("3 of 3 cycles failed, first cycle 1: unload:"),
            "{e}"
        );
        // A module that is already loaded cannot be loaded again.
        let mut rig = FakeRig::new(true, Fault::None);
        let (_, r) = load_step(&mut rig, &mut Collector::default(), DRIVER);
        assert!(r.unwrap_err().contains("File exists"));
    }

    #[test]
    fn waits_are_shortened_after_a_miss() {
        /// A rig whose steps print nothing, recording the timeouts asked for.
        struct Silent(Vec<Duration>);
        impl Rig for Silent {
            fn unbind(&mut self) -> Result<(), String> {
                Ok(())
            }
            fn bind(&mut self) -> Result<(), String> {
                Ok(())
            }
            fn bound_to(&self) -> Option<String> {
                None
            }
            fn collect(&mut self, _: &[Kind], timeout: Duration) -> Batch {
                self.0.push(timeout);
                Batch::default()
            }
            fn history_binding(&mut self) -> Option<u64> {
                None
            }
            fn insmod(&mut self) -> Result<(), String> {
                Ok(())
            }
            fn rmmod(&mut self) -> Result<(), String> {
                Ok(())
            }
            fn module_listed(&self) -> bool {
                false
            }
        }
        let mut rig = Silent(Vec::new());
        let rep = bind_cycles(&mut rig, &mut Collector::default(), DRIVER, 2, Some(1));
        assert_eq!(rep.failed, 2);
        assert_eq!(rig.0, [STEP_WAIT, SHORT_WAIT, SHORT_WAIT, SHORT_WAIT]);
    }
}
