// SPDX-License-Identifier: GPL-2.0

//! DRM ioctls: request numbers, permission flags and the driver's ioctl table.
//!
//! A driver's ioctls are numbered from [`COMMAND_BASE`] up, on DRM's ioctl type `'d'`; the table
//! that [`declare_drm_ioctls!`](crate::declare_drm_ioctls) builds checks the numbering and the
//! argument sizes at compile time and calls typed handlers.
//!
//! C header: [`include/drm/drm_ioctl.h`](srctree/include/drm/drm_ioctl.h)

#![allow(non_snake_case)]

use crate::{bindings, drm::Driver, ioctl};
use core::marker::PhantomData;

/// DRM's ioctl type, `'d'`.
pub const BASE: u32 = crate::uapi::DRM_IOCTL_BASE as u32;

/// The first request number of driver ioctls (the ones below are DRM core's).
pub const COMMAND_BASE: u32 = crate::uapi::DRM_COMMAND_BASE;

/// The largest argument a driver ioctl may have, in bytes.
///
/// The handler gets its own copy of the argument on the stack (DRM's buffer may not be aligned
/// for it); DRM itself keeps arguments up to this size on its stack (`stack_kdata` in
/// `drm_ioctl()`) and allocates larger ones, so the copy costs no more stack than DRM's own.
/// [`declare_drm_ioctls!`](crate::declare_drm_ioctls) refuses larger arguments at compile time.
pub const MAX_ARGUMENT_SIZE: usize = 128;

/// An ioctl of number `nr` without an argument.
#[inline(always)]
pub const fn IO(nr: u32) -> u32 {
    ioctl::_IO(BASE, nr)
}

/// An ioctl of number `nr` that reads a `T` from the kernel (writes it to userspace).
#[inline(always)]
pub const fn IOR<T>(nr: u32) -> u32 {
    ioctl::_IOR::<T>(BASE, nr)
}

/// An ioctl of number `nr` that writes a `T` to the kernel.
#[inline(always)]
pub const fn IOW<T>(nr: u32) -> u32 {
    ioctl::_IOW::<T>(BASE, nr)
}

/// An ioctl of number `nr` that passes a `T` both ways.
///
/// # Examples
///
/// The first driver ioctl with a 16-byte argument, as C's `DRM_IOWR(DRM_COMMAND_BASE, ...)`:
///
/// ```
/// use kernel::drm::ioctl;
///
/// assert_eq!(ioctl::IOWR::<[u64; 2]>(ioctl::COMMAND_BASE), 0xc010_6440);
/// ```
#[inline(always)]
pub const fn IOWR<T>(nr: u32) -> u32 {
    ioctl::_IOWR::<T>(BASE, nr)
}

/// Permission flags of an ioctl, as DRM checks them before calling its handler.
pub mod flags {
    use crate::bindings;

    /// No flags: the ioctl is allowed on the primary node only, to any opener.
    pub const NONE: u32 = 0;

    /// On the primary node, only authenticated clients (the master, and clients it
    /// authenticated) may call it; render nodes need no authentication.
    pub const AUTH: u32 = bindings::drm_ioctl_flags_DRM_AUTH;

    /// Only the current master may call it.
    pub const MASTER: u32 = bindings::drm_ioctl_flags_DRM_MASTER;

    /// Only a process with `CAP_SYS_ADMIN` may call it.
    pub const ROOT_ONLY: u32 = bindings::drm_ioctl_flags_DRM_ROOT_ONLY;

    /// It may be called on render nodes too; without it, a render node refuses it (`EACCES`).
    pub const RENDER_ALLOW: u32 = bindings::drm_ioctl_flags_DRM_RENDER_ALLOW;
}

/// An entry of driver `T`'s ioctl table, as DRM's ioctl dispatcher reads it.
///
/// Only [`declare_drm_ioctls!`](crate::declare_drm_ioctls) builds entries, and
/// [`Driver::IOCTLS`] holds `T`'s: a table declared for another driver, or another driver's
/// table, is of another type and does not compile.
///
/// # Invariants
///
/// The entry's handler, if it has one, may be called with any DRM device of driver `T` and any
/// of its open files.
#[repr(transparent)]
pub struct Ioctl<T: Driver>(bindings::drm_ioctl_desc, PhantomData<fn() -> T>);

impl<T: Driver> Ioctl<T> {
    /// The entry `desc`.
    ///
    /// # Safety
    ///
    /// `desc`'s handler, if it has one, must be sound to call with any DRM device of driver `T`
    /// and any of its open files.
    #[doc(hidden)]
    pub const unsafe fn new(desc: bindings::drm_ioctl_desc) -> Self {
        // INVARIANT: By the safety requirements.
        Self(desc, PhantomData)
    }
}

/// Whether `cmd` is the request number of the driver ioctl at `index` of a table whose argument
/// is `size` bytes: DRM's type, number [`COMMAND_BASE`] + `index`, and that size.
///
/// Used by [`declare_drm_ioctls!`](crate::declare_drm_ioctls) at compile time.
#[doc(hidden)]
pub const fn matches_table_entry(cmd: u32, index: u32, size: usize) -> bool {
    ioctl::_IOC_TYPE(cmd) == BASE
        && ioctl::_IOC_NR(cmd) == COMMAND_BASE + index
        && ioctl::_IOC_SIZE(cmd) == size
}

/// The result of an ioctl handler as DRM's dispatcher takes it: the value, or a negative errno;
/// a value that does not fit in the return type is `ERANGE`.
#[doc(hidden)]
pub fn to_return_value(ret: crate::error::Result<u32>) -> core::ffi::c_int {
    match ret {
        Ok(v) => core::ffi::c_int::try_from(v).unwrap_or(crate::error::code::ERANGE.to_errno()),
        Err(e) => e.to_errno(),
    }
}

/// Declares a DRM driver's ioctl table, for the `IOCTLS` constant of its
/// [`Driver`](crate::drm::Driver) implementation.
///
/// The first argument is the driver's type, the one whose `IOCTLS` the table is (the table is a
/// `[Ioctl<Driver>]`, so one declared for another driver does not compile there); then each
/// entry is `(REQUEST, Argument, flags, handler)`: the request number (built with [`IOWR`] and
/// the like), the argument's type, the [`flags`] and a handler function, of one of two types:
///
/// - `fn(&drm::Entered<'_, Driver>, &mut Argument, &drm::File<Driver::File>) -> Result<u32>`:
///   the handler runs with the device entered. An ioctl on a file still open after the device
///   was unplugged gets `ENODEV` and never reaches it, and the unplug waits for it to return,
///   so it must not wait for the hardware or for userspace (see [`Device::enter`]);
/// - `fn(&drm::Device<Driver>, &mut Argument, &drm::File<Driver::File>) -> Result<u32>`: the
///   handler runs whether or not the device is unplugged, and the unplug does not wait for it.
///   For handlers that wait: they enter by themselves around what must not run after the
///   unplug.
///
/// The handler's first parameter is the choice, and the proof: only an entered handler gets an
/// [`Entered`].
///
/// It fails to compile unless the entries are numbered [`COMMAND_BASE`], [`COMMAND_BASE`] + 1,
/// ... without a gap, each request number is of type `'d'` and encodes its argument's size, each
/// argument is at most [`MAX_ARGUMENT_SIZE`] bytes, and each handler has one of these types.
/// The argument type must be [`FromBytes`] and [`AsBytes`]: its bytes come from userspace and
/// go back to it.
///
/// Each entry's name in DRM's debug log is its request as written (`stringify!`), for instance
/// `uapi::GETPARAM`. A handler must be a path that resolves outside the driver's `impl`
/// (`Self::getparam` does not: the table calls it from a function nested in the constant).
///
/// A handler's `Ok` value is the ioctl's return value (`ERANGE` if it does not fit in an
/// `int`); its argument is copied back to userspace in any case, as DRM does.
///
/// [`FromBytes`]: crate::types::FromBytes
/// [`AsBytes`]: crate::types::AsBytes
/// [`Device::enter`]: crate::drm::Device::enter
/// [`Entered`]: crate::drm::Entered
///
/// # Examples
///
/// See the DRM driver sample, `samples/rust/rust_driver_drm.rs`, whose ioctls are of both
/// kinds.
#[macro_export]
macro_rules! declare_drm_ioctls {
    ($driver:ty; $( ($cmd:expr, $arg:ty, $flags:expr, $handler:expr) ),* $(,)?) => {
        const IOCTLS: &'static [$crate::drm::ioctl::Ioctl<$driver>] = {
            const _: () = {
                let index: u32 = 0;
                $(
                    ::core::assert!(
                        $crate::drm::ioctl::matches_table_entry(
                            $cmd,
                            index,
                            ::core::mem::size_of::<$arg>(),
                        ),
                        ::core::concat!(
                            "ioctl ", ::core::stringify!($cmd),
                            " is not DRM's type, numbered COMMAND_BASE + its index, and of \
                             its argument's size"
                        ),
                    );
                    ::core::assert!(
                        ::core::mem::size_of::<$arg>() <= $crate::drm::ioctl::MAX_ARGUMENT_SIZE,
                        ::core::concat!(
                            "the argument of ioctl ", ::core::stringify!($cmd),
                            " is larger than MAX_ARGUMENT_SIZE"
                        ),
                    );
                    let index = index + 1;
                )*
                let _ = index;
            };
            &[$(
                // SAFETY: The handler casts the device and the file to `$driver`'s, and the
                // entry is an `Ioctl<$driver>` (the constant's type).
                unsafe { $crate::drm::ioctl::Ioctl::new($crate::bindings::drm_ioctl_desc {
                    cmd: $cmd,
                    flags: $flags,
                    func: {
                        /// Called by DRM's ioctl dispatcher for this table's entry.
                        ///
                        /// # Safety
                        ///
                        /// `raw_dev` is a DRM device of the driver whose table this is,
                        /// `raw_file` one of its open files, and `raw_data` points to the
                        /// request's argument, as many bytes as the request number says.
                        unsafe extern "C" fn handler(
                            raw_dev: *mut $crate::bindings::drm_device,
                            raw_data: *mut ::core::ffi::c_void,
                            raw_file: *mut $crate::bindings::drm_file,
                        ) -> ::core::ffi::c_int {
                            // SAFETY: By the function's safety requirements, `raw_dev` is a
                            // device of this driver and `raw_file` one of its files.
                            let (dev, file) = unsafe {
                                (
                                    $crate::drm::Device::<$driver>::from_raw(raw_dev),
                                    $crate::drm::File::<
                                        <$driver as $crate::drm::Driver>::File,
                                    >::from_raw(raw_file),
                                )
                            };
                            // SAFETY: `raw_data` points to `size_of::<$arg>()` bytes (the size
                            // that the request number encodes, checked above), which DRM
                            // initialised (copied from userspace, or zeroed).
                            unsafe {
                                $crate::drm::ioctl::internal::call::<$driver, $arg, _, _>(
                                    dev, file, raw_data, $handler,
                                )
                            }
                        }
                        Some(handler)
                    },
                    name: $crate::c_str!(::core::stringify!($cmd)).as_char_ptr(),
                }) }
            ),*]
        };
    };
}

#[doc(hidden)]
pub mod internal {
    use crate::{
        drm::{self, Driver},
        error::{code::ENODEV, Result},
        types::{AsBytes, FromBytes},
    };
    use core::{ffi::c_int, ffi::c_void, ptr};

    /// The kind of a handler that runs entered: its first parameter is a [`drm::Entered`].
    pub struct Entered;

    /// The kind of a handler that runs without entering: its first parameter is a
    /// [`drm::Device`].
    pub struct Unentered;

    /// An ioctl handler of driver `T` whose argument is an `A`, of kind `K` ([`Entered`] or
    /// [`Unentered`], told apart by the handler's first parameter).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not an ioctl handler of driver `{T}` with argument `{A}`",
        note = "a handler is a `fn(&drm::Entered<'_, {T}>, &mut {A}, &drm::File<F>) -> \
                Result<u32>` (run entered) or a `fn(&drm::Device<{T}>, &mut {A}, &drm::File<F>) \
                -> Result<u32>` (not entered), `F` being `{T}`'s file data"
    )]
    pub trait Handler<T: Driver, A, K> {
        /// Runs the handler for an ioctl on `file` of `dev`, entering `dev` first if it is of
        /// kind [`Entered`] (`ENODEV` if `dev` was unplugged).
        fn run(&self, dev: &drm::Device<T>, arg: &mut A, file: &drm::File<T::File>) -> Result<u32>;
    }

    impl<T: Driver, A, F> Handler<T, A, Entered> for F
    where
        F: Fn(&drm::Entered<'_, T>, &mut A, &drm::File<T::File>) -> Result<u32>,
    {
        fn run(&self, dev: &drm::Device<T>, arg: &mut A, file: &drm::File<T::File>) -> Result<u32> {
            let entered = dev.enter().ok_or(ENODEV)?;
            self(&entered, arg, file)
        }
    }

    impl<T: Driver, A, F> Handler<T, A, Unentered> for F
    where
        F: Fn(&drm::Device<T>, &mut A, &drm::File<T::File>) -> Result<u32>,
    {
        fn run(&self, dev: &drm::Device<T>, arg: &mut A, file: &drm::File<T::File>) -> Result<u32> {
            self(dev, arg, file)
        }
    }

    /// Calls `handler` for an ioctl on `file` of `dev` with the argument at `data`, and copies
    /// the argument back.
    ///
    /// The argument is copied in and out, as DRM's buffer for it may not be aligned for `A`
    /// (it is a byte array on the stack for small arguments).
    ///
    /// # Safety
    ///
    /// `data` points to `size_of::<A>()` initialised bytes, valid for reads and writes and not
    /// accessed by anything else for the duration of the call.
    pub unsafe fn call<T: Driver, A: FromBytes + AsBytes, K, H: Handler<T, A, K>>(
        dev: &drm::Device<T>,
        file: &drm::File<T::File>,
        data: *mut c_void,
        handler: H,
    ) -> c_int {
        let data = data.cast::<A>();
        // SAFETY: By the safety requirements, `data` points to `size_of::<A>()` initialised
        // bytes, and any bytes are a valid `A` (`A: FromBytes`).
        let mut arg = unsafe { ptr::read_unaligned(data) };
        let ret = handler.run(dev, &mut arg, file);
        // SAFETY: By the safety requirements, `data` is valid for writes of `size_of::<A>()`
        // bytes; `A: AsBytes` has no padding, so no uninitialised byte reaches userspace.
        unsafe { ptr::write_unaligned(data, arg) };
        super::to_return_value(ret)
    }
}
