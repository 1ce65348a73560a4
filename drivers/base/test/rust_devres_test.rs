// SPDX-License-Identifier: GPL-2.0

//! Tests of `Devres`, `Revocable` and `Completion` on faux devices.
//!
//! The tests run when the module loads. Each result is one line in the kernel log, in KTAP's
//! form (`ok N name` or `not ok N name # reason`), after a `1..N` plan; a last `done: P passed,
//! F failed` line ends the run. Loading fails with `EINVAL` when a test failed.
//!
//! The races between the owner dropping a `Devres` and the unbind releasing it are made
//! deterministic with a resource whose drop takes [`SLOW_DROP_MS`]: one side starts dropping it,
//! the other side starts once that drop is in progress, and the test checks that the second side
//! returns only after the drop has finished.

use core::{
    ptr,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};
use kernel::{
    bindings, c_str,
    device::{Bound, Device},
    devres::{self, Devres},
    faux,
    prelude::*,
    sync::{Arc, Completion},
    workqueue,
};

/// How long the slow resource's drop takes.
const SLOW_DROP_MS: u32 = 200;

/// How long a test waits for the other side to reach a step before it fails.
const STEP_TIMEOUT_MS: u32 = 5000;

/// How many `Devres` the identity test creates and drops on one bound device.
const CREATE_DROP_CYCLES: usize = 1000;

/// Sleeps for `ms` milliseconds.
fn msleep(ms: u32) {
    // SAFETY: `msleep` has no preconditions beyond process context, which module init is.
    unsafe { bindings::msleep(ms) };
}

/// Waits until `flag` is set; `false` on timeout.
fn wait_for(flag: &AtomicBool) -> bool {
    for _ in 0..STEP_TIMEOUT_MS {
        if flag.load(Ordering::Acquire) {
            return true;
        }
        msleep(1);
    }
    false
}

/// The progress of a slow drop.
struct DropState {
    started: AtomicBool,
    finished: AtomicBool,
}

impl DropState {
    const fn new() -> Self {
        Self {
            started: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        }
    }
}

/// A resource whose drop takes [`SLOW_DROP_MS`], recording when it starts and finishes.
struct SlowDrop(&'static DropState);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        self.0.started.store(true, Ordering::Release);
        msleep(SLOW_DROP_MS);
        self.0.finished.store(true, Ordering::Release);
    }
}

/// A resource that counts its drops.
struct Counted(&'static AtomicU32);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Creates a faux device for one test.
fn faux_device(name: &'static CStr) -> Result<faux::Registration> {
    faux::Registration::new(name, None).inspect_err(|_| pr_err!("# cannot create {name}\n"))
}

/// Fails with `reason` unless `cond` holds.
fn check(cond: bool, reason: &'static str) -> Result<(), &'static str> {
    if cond {
        Ok(())
    } else {
        Err(reason)
    }
}

/// The outcome of a test: `Err` carries the reason of a failure.
type Outcome = Result<(), &'static str>;

/// The owner drops the `Devres` on a worker; the unbind starts while that drop is in progress
/// and must return only after it has finished.
fn unbind_waits_for_a_drop_in_progress() -> Outcome {
    static STATE: DropState = DropState::new();
    let reg = faux_device(c_str!("rust-devres-test-1")).map_err(|_| "faux device")?;
    let res = Devres::new(reg.as_ref(), SlowDrop(&STATE)).map_err(|_| "Devres::new")?;
    let done = Arc::pin_init(Completion::new(), GFP_KERNEL).map_err(|_| "completion")?;
    let worker_done = done.clone();
    workqueue::system()
        .try_spawn(GFP_KERNEL, move || {
            drop(res);
            worker_done.complete_all();
        })
        .map_err(|_| "spawn")?;
    let started = wait_for(&STATE.started);
    // The unbind: releases the device's managed resources.
    drop(reg);
    let finished = STATE.finished.load(Ordering::Acquire);
    done.wait_for_completion();
    check(started, "the owner's drop did not start")?;
    check(
        finished,
        "unbind returned while the owner was still dropping the resource",
    )
}

/// The unbind drops the resource; the owner drops its `Devres` on a worker while that drop is in
/// progress, and must return only after it has finished.
fn drop_waits_for_an_unbind_in_progress() -> Outcome {
    static STATE: DropState = DropState::new();
    static FINISHED_AT_RETURN: AtomicBool = AtomicBool::new(false);
    static WORKER_STARTED: AtomicBool = AtomicBool::new(false);
    let reg = faux_device(c_str!("rust-devres-test-2")).map_err(|_| "faux device")?;
    let res = Devres::new(reg.as_ref(), SlowDrop(&STATE)).map_err(|_| "Devres::new")?;
    let done = Arc::pin_init(Completion::new(), GFP_KERNEL).map_err(|_| "completion")?;
    let worker_done = done.clone();
    workqueue::system()
        .try_spawn(GFP_KERNEL, move || {
            if wait_for(&STATE.started) {
                WORKER_STARTED.store(true, Ordering::Release);
                drop(res);
                let finished = STATE.finished.load(Ordering::Acquire);
                FINISHED_AT_RETURN.store(finished, Ordering::Release);
            } else {
                drop(res);
            }
            worker_done.complete_all();
        })
        .map_err(|_| "spawn")?;
    // The unbind: its devres action revokes and drops the resource, slowly.
    drop(reg);
    done.wait_for_completion();
    check(
        WORKER_STARTED.load(Ordering::Acquire),
        "the unbind's drop did not start",
    )?;
    check(
        FINISHED_AT_RETURN.load(Ordering::Acquire),
        "the owner's drop returned while the unbind was still dropping the resource",
    )
}

/// The number of entries on `dev`'s devres list.
fn devres_count(dev: &Device<Bound>) -> usize {
    // `Device` is a transparent wrapper of `struct device`.
    let raw = ptr::from_ref(dev).cast_mut().cast::<bindings::device>();
    // SAFETY: `raw` is a valid device. Nothing changes its devres list meanwhile: the faux driver
    // adds no resources, and only this (single-threaded) test adds and removes them.
    unsafe {
        let head = ptr::addr_of_mut!((*raw).devres_head);
        let mut count = 0;
        let mut pos = (*head).next;
        while pos != head {
            count += 1;
            pos = (*pos).next;
        }
        count
    }
}

/// Creating and dropping a `Devres` while the device stays bound removes its devres action:
/// the devres list does not grow. (It would if the action were not found again on drop, for
/// instance by a different address of the callback.)
fn dropped_devres_leaves_no_action_behind() -> Outcome {
    static DROPS: AtomicU32 = AtomicU32::new(0);
    let reg = faux_device(c_str!("rust-devres-test-3")).map_err(|_| "faux device")?;
    let dev = reg.as_ref();
    let before = devres_count(dev);
    for _ in 0..CREATE_DROP_CYCLES {
        let res = Devres::new(dev, Counted(&DROPS)).map_err(|_| "Devres::new")?;
        drop(res);
    }
    let after = devres_count(dev);
    drop(reg);
    check(after == before, "the devres list grew")?;
    check(
        DROPS.load(Ordering::Relaxed) as usize == CREATE_DROP_CYCLES,
        "a resource was not dropped exactly once",
    )
}

/// After the unbind, a `Devres` kept elsewhere gives no access, and its resource was dropped
/// exactly once, by the unbind; dropping the `Devres` later drops nothing more.
fn unbind_revokes_a_kept_devres() -> Outcome {
    static DROPS: AtomicU32 = AtomicU32::new(0);
    let reg = faux_device(c_str!("rust-devres-test-4")).map_err(|_| "faux device")?;
    let res = Devres::new(reg.as_ref(), Counted(&DROPS)).map_err(|_| "Devres::new")?;
    check(res.access(reg.as_ref()).is_ok(), "no access while bound")?;
    check(res.try_access().is_some(), "no try_access while bound")?;
    drop(reg);
    check(
        DROPS.load(Ordering::Relaxed) == 1,
        "unbind did not drop the resource",
    )?;
    check(res.try_access().is_none(), "try_access after unbind")?;
    check(
        res.try_access_with(|_| ()).is_none(),
        "try_access_with after unbind",
    )?;
    drop(res);
    check(
        DROPS.load(Ordering::Relaxed) == 1,
        "the resource was dropped twice",
    )
}

/// `access` refuses a device that the resource does not belong to.
fn access_checks_the_device() -> Outcome {
    let reg_a = faux_device(c_str!("rust-devres-test-5a")).map_err(|_| "faux device")?;
    let reg_b = faux_device(c_str!("rust-devres-test-5b")).map_err(|_| "faux device")?;
    let res = Devres::new(reg_a.as_ref(), 5u32).map_err(|_| "Devres::new")?;
    check(
        res.access(reg_b.as_ref()).err() == Some(EINVAL),
        "access with another device",
    )?;
    check(
        res.access(reg_a.as_ref()).ok() == Some(&5),
        "access with its device",
    )
}

/// `devres::register` keeps the data until the unbind, then drops it once.
fn register_drops_at_unbind() -> Outcome {
    static DROPS: AtomicU32 = AtomicU32::new(0);
    let reg = faux_device(c_str!("rust-devres-test-6")).map_err(|_| "faux device")?;
    devres::register(reg.as_ref(), Counted(&DROPS), GFP_KERNEL).map_err(|_| "register")?;
    check(
        DROPS.load(Ordering::Relaxed) == 0,
        "dropped before the unbind",
    )?;
    drop(reg);
    check(
        DROPS.load(Ordering::Relaxed) == 1,
        "not dropped once at the unbind",
    )
}

/// A test: its name and its function.
type Test = (&'static str, fn() -> Outcome);

/// The tests, in the order they run.
const TESTS: [Test; 6] = [
    (
        "unbind_waits_for_a_drop_in_progress",
        unbind_waits_for_a_drop_in_progress,
    ),
    (
        "drop_waits_for_an_unbind_in_progress",
        drop_waits_for_an_unbind_in_progress,
    ),
    (
        "dropped_devres_leaves_no_action_behind",
        dropped_devres_leaves_no_action_behind,
    ),
    ("unbind_revokes_a_kept_devres", unbind_revokes_a_kept_devres),
    ("access_checks_the_device", access_checks_the_device),
    ("register_drops_at_unbind", register_drops_at_unbind),
];

struct DevresTest;

impl kernel::Module for DevresTest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("1..{}\n", TESTS.len());
        let mut failed = 0;
        for (i, (name, test)) in TESTS.iter().enumerate() {
            match test() {
                Ok(()) => pr_info!("ok {} {}\n", i + 1, name),
                Err(reason) => {
                    failed += 1;
                    pr_info!("not ok {} {} # {}\n", i + 1, name, reason);
                }
            }
        }
        pr_info!("done: {} passed, {} failed\n", TESTS.len() - failed, failed);
        if failed == 0 {
            Ok(DevresTest)
        } else {
            Err(EINVAL)
        }
    }
}

module! {
    type: DevresTest,
    name: "rust_devres_test",
    author: "Nova Developers",
    description: "Tests of the Rust Devres, Revocable and Completion abstractions",
    license: "GPL v2",
}
