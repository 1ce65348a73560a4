//! `drm_fuzz`: model-checked fuzzing of a DRM driver's uAPI (Nova's or the Rust DRM sample's)
//! through the client crates; reports KTAP.
//!
//! ```text
//! drm_fuzz --driver nova|sample --device DEVICE (--ioctls N | --seconds S) [--seed S]
//!          [--procs P]
//! ```
//!
//! `DEVICE` is the device whose DRM nodes are fuzzed (a PCI address, `10de:2330` for the first
//! device with those IDs, or a platform device's name). The run is seeded (`--seed`, else from
//! the clock) and prints its seed first; the same seed replays the same sequence of the model
//! run (`--ioctls` with the count the run printed, for a run that was given `--seconds`). With
//! `--seconds`, each half of the run below gets half the time, and `--ioctls` (if given) still
//! caps it.
//!
//! KTAP tests (suite `drm_fuzz`):
//! - `model`: N/2 ioctls from one process on four files of the device (the primary node's
//!   master, a second primary file that is not authenticated, two render files), each reply
//!   checked against the program's model of every file's handles, the objects behind them
//!   (each created with a size no other live object has, so that GEM_INFO tells them apart),
//!   their dma-bufs and FLINK names: GETPARAM (known, unknown and out-of-range parameters),
//!   GEM_CREATE (sizes around 0, the page size and the limits, non-zero pad), GEM_INFO and
//!   GEM_CLOSE (handles that exist, were closed, belong to another file or never existed),
//!   PRIME export and import, FLINK and GEM_OPEN, request numbers past the table, and GETPARAM
//!   and GEM_INFO with other argument sizes (0, 8, 24 bytes) and directions (`_IOW`, `_IOR`),
//!   which DRM core zero-extends or does not copy back; files closed and opened again. For the
//!   sample, its count of live objects must be the model's after every close. The first
//!   mismatch fails the test with the seed and the call's index.
//! - `shared`: the other N/2 ioctls from `--procs` processes (default 4) that share one file
//!   table (`clone(CLONE_FILES)`) and so each other's files, which they also close and open
//!   again during the others' calls, while the parent unbinds and binds the device once in the
//!   middle: every reply must be success or an errno the call may give (EBADF, ENOENT,
//!   ENODEV, EINVAL, EACCES, ENOMEM); afterwards the device is bound and, for the sample, no
//!   object is left.
//!
//! A diagnostic line gives the rate: `# drm_fuzz: N ioctls in S s (R/s), seed X`.

use drm_client::node::{self, NodeKind};
use drm_client::{errno_name, sample, Card, Direction, DriverIoctl, Errno};
use guest::ktap::verdict;
use guest::sysfs::Bus;
use guest::Planned;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const SUITE: &str = "drm_fuzz";
const USAGE: &str = "usage: drm_fuzz --driver nova|sample --device DEVICE \
     (--ioctls N | --seconds S) [--seed S] [--procs P]";

/// A small, fast generator (xorshift64*): the same seed gives the same sequence.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// The driver under test and what differs between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    Nova,
    Sample,
}

impl Driver {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "nova" => Ok(Self::Nova),
            "sample" => Ok(Self::Sample),
            _ => Err(format!("--driver: 'nova' or 'sample', not '{s}'")),
        }
    }

    /// The PCI or platform driver's name.
    fn bus_driver(self) -> (&'static str, &'static str) {
        match self {
            Self::Nova => ("pci", nova::DRIVER_NAME),
            Self::Sample => ("platform", sample::PLATFORM_DRIVER),
        }
    }

    /// The driver's table size: a number from here on is past it.
    fn num_ioctls(self) -> u8 {
        match self {
            Self::Nova => nova::NUM_IOCTLS,
            Self::Sample => sample::NUM_IOCTLS,
        }
    }
}

#[derive(Debug)]
struct Args {
    driver: Driver,
    device: String,
    ioctls: u64,
    /// When to stop each half of the run, if `--seconds` was given: half of it.
    half: Option<Duration>,
    seed: Option<u64>,
    procs: usize,
}

fn parse_from(argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut flags = guest::args::Flags::new(argv);
    let (mut driver, mut device, mut ioctls, mut seed, mut procs) = (None, None, None, None, 4);
    let mut seconds = None;
    let number = |flag: &str, v: &str| -> Result<u64, String> {
        let (digits, radix) = match v.strip_prefix("0x") {
            Some(h) => (h, 16),
            None => (v, 10),
        };
        u64::from_str_radix(digits, radix).map_err(|_| format!("{flag}: not a number: '{v}'"))
    };
    while let Some(flag) = flags.next_flag() {
        let v = flags.value(&flag)?;
        match flag.as_str() {
            "--driver" => driver = Some(Driver::parse(&v)?),
            "--device" => device = Some(v),
            "--ioctls" => ioctls = Some(number(&flag, &v)?),
            "--seconds" => seconds = Some(number(&flag, &v)?),
            "--seed" => seed = Some(number(&flag, &v)?),
            "--procs" => procs = number(&flag, &v)? as usize,
            other => return Err(guest::args::unknown(other)),
        }
    }
    if procs == 0 {
        return Err("--procs: at least 1".into());
    }
    Ok(Args {
        driver: guest::args::required(driver, "--driver")?,
        device: guest::args::required(device, "--device")?,
        ioctls: match (ioctls, seconds) {
            (None, None) => return Err("--ioctls or --seconds is required".into()),
            (n, _) => n.unwrap_or(u64::MAX),
        },
        half: seconds.map(|s| Duration::from_secs(s) / 2),
        seed,
        procs,
    })
}

/// What a file is to DRM's permission checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The primary node's first file: DRM master, authenticated.
    Master,
    /// Another primary file, opened while the master is open: not authenticated.
    Unauthenticated,
    /// A render node's file.
    Render,
}

/// One open file of the model.
struct FileModel {
    kind: Kind,
    card: Card,
    /// Live handles and the object behind each.
    handles: BTreeMap<u32, usize>,
    /// Handles this file had and closed (for "was closed" picks).
    closed: Vec<u32>,
}

/// One object of the model.
#[derive(Debug, Clone)]
struct Obj {
    size: u64,
    /// Handles to it in all files.
    handles: usize,
    /// Our open dma-bufs of it.
    dmabufs: usize,
    name: Option<u32>,
}

/// The model: files, objects, dma-bufs, names.
struct Model {
    driver: Driver,
    page: u64,
    bar1: u64,
    paths: (PathBuf, PathBuf),
    files: Vec<FileModel>,
    objs: BTreeMap<usize, Obj>,
    next_obj: usize,
    dmabufs: Vec<(OwnedFd, usize)>,
}

/// The argument of GETPARAM, GEM_CREATE and GEM_INFO of both drivers: two `u32`s or one
/// `u64`, then a `u64`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
struct Arg {
    a: u32,
    b: u32,
    c: u64,
}

impl Arg {
    fn param(p: u64) -> Self {
        bytemuck::cast([p, 0])
    }

    fn first_u64(&self) -> u64 {
        bytemuck::cast::<Self, [u64; 2]>(*self)[0]
    }
}

/// The most pages a fuzzed object has (shmem allocates none until used).
const MAX_PAGES: u64 = 4096;
/// The most objects the model keeps live: creating more closes one instead.
const MAX_LIVE: usize = 256;

const GETPARAM: u8 = 0;
const GEM_CREATE: u8 = 1;
const GEM_INFO: u8 = 2;

/// Issues driver ioctl `nr` with `arg`, `size` bytes of it (0, 8, 16 or 24) going `dir`; the
/// bytes the kernel wrote back, as much as came back.
fn raw_ioctl(card: &Card, nr: u8, dir: Direction, size: usize, arg: &mut Arg) -> Result<(), Errno> {
    let mut buf = [0u8; 24];
    buf[..16].copy_from_slice(bytemuck::bytes_of(arg));
    let r = match size {
        0 => card.ioctl(DriverIoctl::<[u8; 0]>::new(nr, dir, "fuzz"), &mut [0u8; 0]),
        8 => {
            let mut b: [u8; 8] = buf[..8].try_into().expect("8 bytes");
            let r = card.ioctl(DriverIoctl::<[u8; 8]>::new(nr, dir, "fuzz"), &mut b);
            buf[..8].copy_from_slice(&b);
            r
        }
        24 => card.ioctl(DriverIoctl::<[u8; 24]>::new(nr, dir, "fuzz"), &mut buf),
        _ => {
            let mut b: [u8; 16] = buf[..16].try_into().expect("16 bytes");
            let r = card.ioctl(DriverIoctl::<[u8; 16]>::new(nr, dir, "fuzz"), &mut b);
            buf[..16].copy_from_slice(&b);
            r
        }
    };
    *arg = bytemuck::pod_read_unaligned(&buf[..16]);
    r
}

/// `what` got `got`, the model expected `want`.
fn expect<T: std::fmt::Debug + PartialEq>(
    what: &str,
    got: Result<T, Errno>,
    want: Result<T, Errno>,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {}, the model expected {}",
            drm_client::describe(&got),
            drm_client::describe(&want)
        ))
    }
}

impl Model {
    /// Driver ioctl `nr` on file `f`, with the whole argument both ways.
    fn call(&self, f: usize, nr: u8, arg: &mut Arg) -> Result<(), Errno> {
        raw_ioctl(&self.files[f].card, nr, Direction::ReadWrite, 16, arg)
    }

    fn open(&mut self, kind: Kind) -> Result<(), String> {
        let path = match kind {
            Kind::Render => &self.paths.1,
            _ => &self.paths.0,
        };
        let card = match kind {
            // As root, every file is authenticated unless opened without CAP_SYS_ADMIN.
            Kind::Unauthenticated => guest::drm_check::open_without_sys_admin(path)?,
            _ => Card::open(path).map_err(|e| e.to_string())?,
        };
        self.files.push(FileModel {
            kind,
            card,
            handles: BTreeMap::new(),
            closed: Vec::new(),
        });
        Ok(())
    }

    /// Opens the four files: the master first.
    fn open_all(&mut self) -> Result<(), String> {
        for k in [
            Kind::Master,
            Kind::Unauthenticated,
            Kind::Render,
            Kind::Render,
        ] {
            self.open(k)?;
        }
        Ok(())
    }

    fn live(&self) -> usize {
        self.objs.len()
    }

    /// Drops the model's reference `handles`/`dmabufs` changes left an object without any.
    fn reap(&mut self, id: usize) {
        let gone = self
            .objs
            .get(&id)
            .is_some_and(|o| o.handles == 0 && o.dmabufs == 0);
        if let Some(o) = self.objs.get_mut(&id) {
            if o.handles == 0 {
                // A name lives as long as a handle does.
                o.name = None;
            }
        }
        if gone {
            self.objs.remove(&id);
        }
    }

    /// A size for a new object: a page count no live object has (of up to [`MAX_PAGES`]; at
    /// most [`MAX_LIVE`] objects are live, so there is one), with an offset into the page.
    fn fresh_size(&mut self, rng: &mut Rng) -> (u64, u64) {
        loop {
            let pages = 1 + rng.below(MAX_PAGES);
            let rounded = pages * self.page;
            if !self.objs.values().any(|o| o.size == rounded) {
                let size = rounded - rng.pick(&[0, 1, self.page - 1]);
                return (size, rounded);
            }
        }
    }

    /// A handle for file `f` to act on: live in it, closed, another file's, or never seen.
    fn pick_handle(&self, rng: &mut Rng, f: usize) -> u32 {
        let file = &self.files[f];
        let live: Vec<u32> = file.handles.keys().copied().collect();
        match rng.below(6) {
            0..=2 if !live.is_empty() => rng.pick(&live),
            3 if !file.closed.is_empty() => rng.pick(&file.closed),
            4 => {
                let other = rng.below(self.files.len() as u64) as usize;
                let theirs: Vec<u32> = self.files[other].handles.keys().copied().collect();
                if theirs.is_empty() {
                    0
                } else {
                    rng.pick(&theirs)
                }
            }
            _ => {
                let small = 1 + rng.below(64) as u32;
                rng.pick(&[0, 0x7fff_ffff, u32::MAX, small])
            }
        }
    }

    /// Whether file `f` may use the GEM ioctls (`DRM_AUTH`).
    fn authed(&self, f: usize) -> bool {
        self.files[f].kind != Kind::Unauthenticated
    }

    /// One step: a random call, its reply checked. The number of ioctls it made.
    fn step(&mut self, rng: &mut Rng) -> Result<u64, String> {
        let f = rng.below(self.files.len() as u64) as usize;
        match rng.below(20) {
            0..=1 => self.getparam(rng, f),
            2..=5 => self.create(rng, f),
            6..=8 => self.info(rng, f),
            9..=11 => self.close_handle(rng, f),
            12 => self.export(rng, f),
            13 => self.import(rng, f),
            14 => self.flink(rng, f),
            15 => self.gem_open(rng, f),
            16 => self.past_table(rng, f),
            17 => self.odd_sizes(rng, f),
            18 if rng.chance(20) => self.reopen(rng, f),
            _ => self.dmabuf_close(rng),
        }
    }

    fn getparam(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        let param = rng.pick(&[0, 1, 2, 3, 1 << 32 | 1, u64::MAX]);
        let kind = self.files[f].kind;
        let want = match (self.driver, param) {
            (Driver::Nova, 1) => Ok(self.bar1),
            (Driver::Nova, _) => Err(Errno::INVAL),
            // The sample's GETPARAM is for primary nodes only.
            (Driver::Sample, _) if kind == Kind::Render => Err(Errno::ACCESS),
            (Driver::Sample, 1) => Ok(self.page),
            (Driver::Sample, 2) => Ok(self.live() as u64),
            (Driver::Sample, _) => Err(Errno::INVAL),
        };
        let mut arg = Arg::param(param);
        let got = self.call(f, GETPARAM, &mut arg).map(|()| arg.c);
        expect(
            &format!("GETPARAM({param:#x}) on a {kind:?} file"),
            got,
            want,
        )
        .map(|()| 1)
    }

    fn create(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        if self.live() >= MAX_LIVE {
            return self.close_handle(rng, f);
        }
        let (size, rounded) = self.fresh_size(rng);
        let (size, rounded) = match rng.below(12) {
            0 => (0, 0),
            1 => (u64::MAX, 0),
            2 => (1 << 63, 0),
            _ => (size, rounded),
        };
        let pad = if rng.chance(10) { 1 } else { 0 };
        let mut arg = Arg {
            a: 0,
            b: pad,
            c: size,
        };
        let kind = self.files[f].kind;
        let got = self.call(f, GEM_CREATE, &mut arg);
        let what = format!("GEM_CREATE(size {size:#x}, pad {pad}) on a {kind:?} file");
        let want_err = if !self.authed(f) {
            Some(Err(Errno::ACCESS))
        } else if pad != 0 || size == 0 {
            Some(Err(Errno::INVAL))
        } else {
            None
        };
        if let Some(want) = want_err {
            return expect(&what, got, want).map(|()| 1);
        }
        if rounded == 0 {
            // Too large to round up or to allocate: EINVAL or ENOMEM.
            return match got {
                Err(Errno::INVAL) | Err(Errno::NOMEM) => Ok(1),
                other => Err(format!(
                    "{what}: got {}, EINVAL or ENOMEM expected",
                    drm_client::describe(&other)
                )),
            };
        }
        expect(&what, got.map(|()| arg.c), Ok(rounded))?;
        if self.files[f].handles.contains_key(&arg.a) || arg.a == 0 {
            return Err(format!(
                "{what}: handle {} is already live in the file",
                arg.a
            ));
        }
        let id = self.next_obj;
        self.next_obj += 1;
        self.objs.insert(
            id,
            Obj {
                size: rounded,
                handles: 1,
                dmabufs: 0,
                name: None,
            },
        );
        self.files[f].handles.insert(arg.a, id);
        self.files[f].closed.retain(|h| *h != arg.a);
        Ok(1)
    }

    /// What GEM_INFO of handle `h` on file `f` must give.
    fn info_want(&self, f: usize, h: u32) -> Result<u64, Errno> {
        if !self.authed(f) {
            return Err(Errno::ACCESS);
        }
        match self.files[f].handles.get(&h) {
            Some(id) => Ok(self.objs[id].size),
            None => Err(Errno::NOENT),
        }
    }

    fn info(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        let h = self.pick_handle(rng, f);
        let pad = if rng.chance(10) { 7 } else { 0 };
        let mut arg = Arg { a: h, b: pad, c: 0 };
        let got = self.call(f, GEM_INFO, &mut arg).map(|()| arg.c);
        let want = match self.info_want(f, h) {
            Err(Errno::ACCESS) => Err(Errno::ACCESS),
            _ if pad != 0 => Err(Errno::INVAL),
            w => w,
        };
        let kind = self.files[f].kind;
        expect(
            &format!("GEM_INFO({h}, pad {pad}) on a {kind:?} file"),
            got,
            want,
        )
        .map(|()| 1)
    }

    fn close_handle(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        let h = self.pick_handle(rng, f);
        let got = self.files[f].card.gem_close(h);
        // GEM_CLOSE needs no authentication; an unknown handle is EINVAL.
        let id = self.files[f].handles.get(&h).copied();
        let want = if id.is_some() {
            Ok(())
        } else {
            Err(Errno::INVAL)
        };
        let calls = if h == 0 { 0 } else { 1 };
        expect(&format!("GEM_CLOSE({h})"), got, want)?;
        if let Some(id) = id {
            self.files[f].handles.remove(&h);
            self.files[f].closed.push(h);
            self.objs.get_mut(&id).expect("live").handles -= 1;
            self.reap(id);
        }
        Ok(calls)
    }

    fn export(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        let h = self.pick_handle(rng, f);
        let got = self.files[f].card.prime_export(h);
        let id = self.files[f].handles.get(&h).copied();
        let calls = if h == 0 { 0 } else { 1 };
        match (got, id) {
            (Ok(fd), Some(id)) => {
                self.objs.get_mut(&id).expect("live").dmabufs += 1;
                self.dmabufs.push((fd, id));
                Ok(calls)
            }
            (Err(Errno::NOENT) | Err(Errno::INVAL), None) => Ok(calls),
            (got, _) => Err(format!(
                "PRIME export of handle {h}: got {}, the model expected {}",
                drm_client::describe(&got.map(drop)),
                if id.is_some() { "a dma-buf" } else { "ENOENT" }
            )),
        }
    }

    fn import(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        if self.dmabufs.is_empty() {
            return self.export(rng, f);
        }
        let i = rng.below(self.dmabufs.len() as u64) as usize;
        let id = self.dmabufs[i].1;
        let got = self.files[f].card.prime_import(self.dmabufs[i].0.as_fd());
        let what = format!("PRIME import on a {:?} file", self.files[f].kind);
        let h = got.map_err(|e| format!("{what}: {}", errno_name(e)))?;
        // An existing handle of the object in this file, or a new one.
        match self.files[f].handles.get(&h) {
            Some(other) if *other != id => {
                return Err(format!("{what}: handle {h}, which is another object's"));
            }
            Some(_) => {}
            None => {
                self.files[f].handles.insert(h, id);
                self.files[f].closed.retain(|x| *x != h);
                self.objs.get_mut(&id).expect("live").handles += 1;
            }
        }
        // GEM_INFO must find that object.
        let size = self.objs[&id].size;
        let mut arg = Arg { a: h, b: 0, c: 0 };
        if self.authed(f) {
            let got = self.call(f, GEM_INFO, &mut arg).map(|()| arg.c);
            expect(&format!("{what}: GEM_INFO({h})"), got, Ok(size))?;
            return Ok(2);
        }
        Ok(1)
    }

    fn flink(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        let h = self.pick_handle(rng, f);
        let got = self.files[f].card.gem_flink(h);
        let kind = self.files[f].kind;
        let id = self.files[f].handles.get(&h).copied();
        let what = format!("FLINK({h}) on a {kind:?} file");
        match (kind, id) {
            (Kind::Master, Some(id)) => {
                let name = got.map_err(|e| format!("{what}: {}", errno_name(e)))?;
                let o = self.objs.get_mut(&id).expect("live");
                if o.name.is_some_and(|n| n != name) {
                    return Err(format!("{what}: name {name}, the object had {:?}", o.name));
                }
                o.name = Some(name);
                Ok(1)
            }
            (Kind::Master, None) => expect(&what, got, Err(Errno::NOENT)).map(|()| 1),
            _ => expect(&what, got, Err(Errno::ACCESS)).map(|()| 1),
        }
    }

    fn gem_open(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        let names: Vec<(u32, usize)> = self
            .objs
            .iter()
            .filter_map(|(id, o)| o.name.map(|n| (n, *id)))
            .collect();
        let (name, id) = if !names.is_empty() && !rng.chance(4) {
            let (n, id) = rng.pick(&names);
            (n, Some(id))
        } else {
            let small = 1 + rng.below(1000) as u32;
            let n = rng.pick(&[0, 0x7fff_ffff, small]);
            (n, names.iter().find(|(x, _)| *x == n).map(|(_, id)| *id))
        };
        let kind = self.files[f].kind;
        let got = self.files[f].card.gem_open(name);
        let what = format!("GEM_OPEN({name}) on a {kind:?} file");
        match (kind, id) {
            (Kind::Master, Some(id)) => {
                let (h, size) = got.map_err(|e| format!("{what}: {}", errno_name(e)))?;
                let want = self.objs[&id].size;
                if size != want || self.files[f].handles.contains_key(&h) {
                    return Err(format!(
                        "{what}: handle {h} of size {size}, a new handle of size {want} expected"
                    ));
                }
                self.files[f].handles.insert(h, id);
                self.files[f].closed.retain(|x| *x != h);
                self.objs.get_mut(&id).expect("live").handles += 1;
                Ok(1)
            }
            (Kind::Master, None) => expect(&what, got.map(drop), Err(Errno::NOENT)).map(|()| 1),
            _ => expect(&what, got.map(drop), Err(Errno::ACCESS)).map(|()| 1),
        }
    }

    fn past_table(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        let first = self.driver.num_ioctls();
        let nr = first + rng.below(u64::from(0x60 - first)) as u8;
        let mut arg = Arg::default();
        let got = self.call(f, nr, &mut arg);
        expect(
            &format!("driver ioctl {nr:#x}, past the table"),
            got,
            Err(Errno::INVAL),
        )
        .map(|()| 1)
    }

    /// GETPARAM or GEM_INFO with another argument size or direction.
    fn odd_sizes(&mut self, rng: &mut Rng, f: usize) -> Result<u64, String> {
        let size = rng.pick(&[0usize, 8, 16, 24]);
        let dir = rng.pick(&[Direction::ReadWrite, Direction::Write, Direction::Read]);
        let kind = self.files[f].kind;
        // What the handler sees: the bytes DRM core copied in (none without _IOC_WRITE, at
        // most `size`), zero-extended to the structure.
        let copied_in = if dir == Direction::Read {
            0
        } else {
            size.min(16)
        };
        let copied_out = if dir == Direction::Write {
            0
        } else {
            size.min(16)
        };
        let seen = |a: Arg| -> Arg {
            let mut b = [0u8; 16];
            b[..copied_in].copy_from_slice(&bytemuck::bytes_of(&a)[..copied_in]);
            bytemuck::cast(b)
        };
        if rng.chance(2) {
            let param = rng.pick(&[1u64, 2, 5]);
            let mut arg = Arg::param(param);
            let got = raw_ioctl(&self.files[f].card, GETPARAM, dir, size, &mut arg);
            let p = seen(Arg::param(param)).first_u64();
            let want = match (self.driver, p) {
                (Driver::Nova, 1) => Ok(self.bar1),
                (Driver::Sample, _) if kind == Kind::Render => Err(Errno::ACCESS),
                (Driver::Sample, 1) => Ok(self.page),
                (Driver::Sample, 2) => Ok(self.live() as u64),
                _ => Err(Errno::INVAL),
            };
            let out = got.map(|()| if copied_out >= 16 { Some(arg.c) } else { None });
            let want = want.map(|v| (copied_out >= 16).then_some(v));
            expect(
                &format!("GETPARAM({param}) as {dir:?} of {size} bytes on a {kind:?} file"),
                out,
                want,
            )
            .map(|()| 1)
        } else {
            let h = self.pick_handle(rng, f);
            let mut arg = Arg { a: h, b: 0, c: 0 };
            let got = raw_ioctl(&self.files[f].card, GEM_INFO, dir, size, &mut arg);
            let seen_handle = seen(Arg { a: h, b: 0, c: 0 }).a;
            let want = self.info_want(f, seen_handle);
            let out = got.map(|()| if copied_out >= 16 { Some(arg.c) } else { None });
            let want = want.map(|v| (copied_out >= 16).then_some(v));
            expect(
                &format!("GEM_INFO({h}) as {dir:?} of {size} bytes on a {kind:?} file"),
                out,
                want,
            )
            .map(|()| 1)
        }
    }

    /// Closes file `f` (its handles go) and opens one of the same kind. A new primary file is
    /// the master only if no other primary file is open; the model keeps one master.
    fn reopen(&mut self, _rng: &mut Rng, f: usize) -> Result<u64, String> {
        if self.files[f].kind != Kind::Render {
            return Ok(0);
        }
        let file = self.files.remove(f);
        for id in file.handles.values() {
            self.objs.get_mut(id).expect("live").handles -= 1;
        }
        drop(file);
        let ids: Vec<usize> = self.objs.keys().copied().collect();
        for id in ids {
            self.reap(id);
        }
        self.open(Kind::Render)?;
        self.check_count()
    }

    fn dmabuf_close(&mut self, rng: &mut Rng) -> Result<u64, String> {
        if self.dmabufs.is_empty() {
            return Ok(0);
        }
        let i = rng.below(self.dmabufs.len() as u64) as usize;
        let (fd, id) = self.dmabufs.swap_remove(i);
        drop(fd);
        self.objs.get_mut(&id).expect("live").dmabufs -= 1;
        self.reap(id);
        self.check_count()
    }

    /// For the sample: its count of live objects is the model's.
    fn check_count(&mut self) -> Result<u64, String> {
        if self.driver != Driver::Sample {
            return Ok(0);
        }
        let got = sample::getparam(&self.files[0].card, sample::PARAM_OBJECT_COUNT);
        expect("GETPARAM(OBJECT_COUNT)", got, Ok(self.live() as u64)).map(|()| 1)
    }
}

/// The primary and render nodes of `device`.
fn node_paths(device: &str) -> Result<(PathBuf, PathBuf), String> {
    let nodes = node::nodes_of_device(device).map_err(|e| format!("sysfs: {e}"))?;
    let path = |kind| {
        nodes
            .iter()
            .find(|n| n.node.kind == kind)
            .map(|n| n.node.path.clone())
            .ok_or_else(|| format!("{device} has no {kind:?} node"))
    };
    Ok((path(NodeKind::Primary)?, path(NodeKind::Render)?))
}

/// Whether `deadline` (if any) has passed.
fn over(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// The model-checked run: `ioctls` calls from one process (or half `--seconds`).
fn run_model(args: &Args, rng: &mut Rng, count: &mut u64) -> Result<(), String> {
    let deadline = args.half.map(|h| Instant::now() + h);
    let paths = node_paths(&args.device)?;
    let page = rustix::param::page_size() as u64;
    let mut m = Model {
        driver: args.driver,
        page,
        bar1: 0,
        paths,
        files: Vec::new(),
        objs: BTreeMap::new(),
        next_obj: 0,
        dmabufs: Vec::new(),
    };
    m.open_all()?;
    if args.driver == Driver::Nova {
        m.bar1 = nova::vram_bar_size(&m.files[0].card).map_err(errno_name)?;
    }
    if let Ok(n) = m.check_count() {
        *count += n;
    }
    let mut i = 0u64;
    while *count < args.ioctls && !over(deadline) {
        let n = m.step(rng).map_err(|e| format!("call {i}: {e}"))?;
        *count += n;
        i += 1;
    }
    // Everything goes: for the sample, none of the objects is left.
    m.dmabufs.clear();
    m.files.clear();
    if args.driver == Driver::Sample {
        let card = Card::open(&m.paths.0).map_err(|e| e.to_string())?;
        let after = sample::getparam(&card, sample::PARAM_OBJECT_COUNT);
        *count += 1;
        expect(
            "GETPARAM(OBJECT_COUNT) after every file closed",
            after,
            Ok(0),
        )?;
    }
    Ok(())
}

/// One process of the shared run: `ioctls` ioctls (or until `deadline`) on the shared files
/// `fds`, reopening some between them. The number of ioctls made.
fn shared_worker(
    driver: Driver,
    paths: &(PathBuf, PathBuf),
    fds: &[i32],
    seed: u64,
    (ioctls, deadline): (u64, Option<Instant>),
) -> Result<u64, String> {
    use std::os::fd::BorrowedFd;
    let mut rng = Rng::new(seed);
    let allowed = [
        Errno::BADF,
        Errno::NOENT,
        Errno::NODEV,
        Errno::INVAL,
        Errno::ACCESS,
        Errno::NOMEM,
    ];
    let mut made = 0;
    let mut card: Option<Card> = None;
    for i in 0.. {
        if made >= ioctls || (i % 64 == 0 && over(deadline)) {
            break;
        }
        // A file of the shared table, taken again every 16 calls: the duplicate keeps the
        // file open while the number may already name another one.
        if i % 16 == 0 {
            let fd = rng.pick(fds);
            // SAFETY: the descriptor is only borrowed to duplicate it; another process may
            // have closed it or put another file of the device in its place, which the kernel
            // answers with EBADF or serves.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            card = borrowed
                .try_clone_to_owned()
                .ok()
                .and_then(|dup| Card::from_fd(dup).ok());
        }
        let Some(card) = card.as_ref() else {
            continue;
        };
        let r = match rng.below(6) {
            0 => {
                let mut a = Arg::param(1);
                raw_ioctl(card, GETPARAM, Direction::ReadWrite, 16, &mut a)
            }
            1 | 2 => {
                let mut a = Arg {
                    a: 0,
                    b: 0,
                    c: 1 + rng.below(1 << 16),
                };
                raw_ioctl(card, GEM_CREATE, Direction::ReadWrite, 16, &mut a)
            }
            3 => {
                let mut a = Arg {
                    a: 1 + rng.below(64) as u32,
                    b: 0,
                    c: 0,
                };
                raw_ioctl(card, GEM_INFO, Direction::ReadWrite, 16, &mut a)
            }
            4 => card.gem_close(1 + rng.below(64) as u32),
            _ => {
                // Put a new file of the device in place of one of the shared numbers: the
                // file there is closed, under the others' calls.
                let fd = rng.pick(fds);
                let path = if rng.chance(2) { &paths.0 } else { &paths.1 };
                if let Ok(new) = Card::open(path) {
                    let new = new.into_fd();
                    // SAFETY: dup2 onto a number of the shared table, which the others only
                    // borrow to duplicate (see above).
                    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&new), fd) };
                }
                continue;
            }
        };
        made += 1;
        if let Err(e) = r {
            if !allowed.contains(&e) {
                return Err(format!("{driver:?} shared call {i}: {}", errno_name(e)));
            }
        }
    }
    Ok(made)
}

/// Where worker `k` of the shared run of process `parent` leaves its count of ioctls.
fn count_file(parent: u32, k: usize) -> PathBuf {
    PathBuf::from(format!("/tmp/drm_fuzz.{parent}.{k}"))
}

/// The shared run: `procs` processes sharing the file table, `ioctls` calls in all (or half
/// `--seconds`), the device unbound and bound again by this process in the middle. The number
/// of ioctls made.
fn run_shared(args: &Args, device: &str, seed: u64) -> Result<u64, String> {
    let paths = node_paths(device)?;
    let mut fds = Vec::new();
    let mut keep = Vec::new();
    for p in [&paths.0, &paths.1, &paths.1, &paths.0] {
        let card = Card::open(p).map_err(|e| e.to_string())?;
        fds.push(std::os::fd::AsRawFd::as_raw_fd(&card.as_fd()));
        keep.push(card);
    }
    let share = args.ioctls / (args.procs as u64 + 1);
    let deadline = args.half.map(|h| Instant::now() + h);
    let mut children = Vec::new();
    // The parent's, read before the clone: a child's own would be its.
    let parent = std::process::id();
    for k in 0..args.procs {
        let _ = std::fs::remove_file(count_file(parent, k));
        // SAFETY: clone without CLONE_VM is a fork that shares the file table (CLONE_FILES);
        // this program is single-threaded, and the child only runs the worker and leaves
        // with _exit.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::CLONE_FILES | libc::SIGCHLD,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            return Err(format!("clone: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            let seed = seed ^ ((k as u64 + 1) << 32);
            let r = shared_worker(args.driver, &paths, &fds, seed, (share, deadline));
            let code = match r {
                Ok(n) => i32::from(std::fs::write(count_file(parent, k), n.to_string()).is_err()),
                Err(e) => {
                    eprintln!("drm_fuzz: {e}");
                    1
                }
            };
            // SAFETY: the child leaves without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        children.push(pid as i32);
    }
    // This process: half its share, the device unbound and bound again, the other half.
    let (bus, driver) = args.driver.bus_driver();
    let bus = Bus::new(bus);
    let mut problems = Vec::new();
    let mut made = 0;
    let halfway = deadline.map(|d| d - args.half.unwrap_or_default() / 2);
    for (k, stop) in [(0u64, halfway), (1, deadline)] {
        match shared_worker(args.driver, &paths, &fds, seed ^ k, (share / 2, stop)) {
            Ok(n) => made += n,
            Err(e) => problems.push(e),
        }
        if k == 0 {
            problems.extend(bus.unbind(driver, device).err());
            problems.extend(bus.bind(driver, device).err());
        }
    }
    for (k, pid) in children.into_iter().enumerate() {
        let mut status = 0;
        // SAFETY: waits for a child of this process.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            problems.push(format!("worker {pid} ended with status {status:#x}"));
        }
        match std::fs::read_to_string(count_file(parent, k)) {
            Ok(n) => made += n.trim().parse::<u64>().unwrap_or(0),
            Err(e) => problems.push(format!("worker {pid}'s count: {e}")),
        }
        let _ = std::fs::remove_file(count_file(parent, k));
    }
    drop(keep);
    if bus.driver_of(device).as_deref() != Some(driver) {
        problems.push(format!("{device} is not bound to {driver} at the end"));
    }
    if args.driver == Driver::Sample {
        let (primary, _) = node_paths(device)?;
        let card = Card::open(primary).map_err(|e| e.to_string())?;
        let left = sample::getparam(&card, sample::PARAM_OBJECT_COUNT);
        problems.extend(expect("GETPARAM(OBJECT_COUNT) after the shared run", left, Ok(0)).err());
    }
    verdict(problems).map(|()| made)
}

/// A seed from the clock, when none is given.
fn clock_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_nanos() as u64 ^ u64::from(std::process::id())
}

fn main() -> ExitCode {
    let args = match guest::start("drm_fuzz", Some(USAGE), parse_from) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let seed = args.seed.unwrap_or_else(clock_seed);
    let mut run = Planned::start(SUITE, ["model", "shared"]);
    run.diag(&format!("drm_fuzz: seed {seed:#x}"));
    let name = match args.driver {
        Driver::Nova => "nova",
        Driver::Sample => "sample",
    };
    let given = args.device.clone();
    let device = match args.driver {
        Driver::Nova => guest::sysfs::pci_address(&args.device),
        Driver::Sample => Ok(args.device.clone()),
    };
    let start = Instant::now();
    let (mut count, mut model_count) = (0, 0);
    let (model, shared) = match device {
        Ok(device) => {
            let model_args = Args {
                device: device.clone(),
                ioctls: args.ioctls / 2,
                ..args
            };
            let mut rng = Rng::new(seed);
            let model = run_model(&model_args, &mut rng, &mut model_count)
                .map_err(|e| format!("{e} (seed {seed:#x})"));
            count += model_count;
            let shared_args = Args {
                ioctls: args.ioctls - args.ioctls / 2,
                ..model_args
            };
            let shared = run_shared(&shared_args, &device, seed).map(|n| count += n);
            (model, shared)
        }
        Err(e) => (Err(e.clone()), Err(e)),
    };
    run.result("model", model);
    run.result("shared", shared);
    let s = start.elapsed().as_secs_f64();
    run.diag(&format!(
        "drm_fuzz: {count} ioctls in {s:.1} s ({:.0}/s), seed {seed:#x}; the model run again: \
         drm_fuzz --driver {name} --device {given} --ioctls {} --seed {seed:#x}",
        count as f64 / s.max(1e-9),
        model_count * 2
    ));
    ExitCode::from(run.finish() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Args, String> {
        parse_from(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let xs: Vec<u64> = (0..100).map(|_| a.below(1000)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.below(1000)).collect();
        assert_eq!(xs, ys);
        let mut c = Rng::new(43);
        assert_ne!(xs, (0..100).map(|_| c.below(1000)).collect::<Vec<_>>());
        // Seed 0 is not stuck at 0.
        assert_ne!(Rng::new(0).next(), 0);
    }

    #[test]
    fn arguments_are_checked() {
        let t = args(&["--driver", "nova", "--device", "d", "--seconds", "60"]).unwrap();
        assert_eq!(
            (t.ioctls, t.half),
            (u64::MAX, Some(Duration::from_secs(30)))
        );
        assert_eq!(
            args(&["--driver", "nova", "--device", "d"]).unwrap_err(),
            "--ioctls or --seconds is required"
        );
        let a = args(&[
            "--driver", "sample", "--device", "d", "--ioctls", "1000", "--seed", "0x2a",
        ])
        .unwrap();
        assert_eq!(
            (a.driver, a.ioctls, a.seed, a.procs),
            (Driver::Sample, 1000, Some(42), 4)
        );
        assert!(args(&["--driver", "i915", "--device", "d", "--ioctls", "1"]).is_err());
        assert_eq!(
            args(&["--driver", "nova", "--ioctls", "1"]).unwrap_err(),
            "--device is required"
        );
        assert!(
            args(&["--driver", "nova", "--device", "d", "--ioctls", "1", "--procs", "0"]).is_err()
        );
    }

    #[test]
    fn odd_argument_layouts_match_the_header() {
        assert_eq!(size_of::<Arg>(), 16);
        let a = Arg::param(0x1_0000_0001);
        assert_eq!(a.first_u64(), 0x1_0000_0001);
        assert_eq!((a.a, a.b), (1, 1));
    }
}
