//! Driver ioctls, defined once with their argument type, number and direction.
//!
//! A DRM driver's ioctls are `_IOC(dir, 'd', DRM_COMMAND_BASE + n, size_of::<T>())`, `n` being
//! the index in the driver's table (`drm_driver.ioctls`). [`DriverIoctl`] holds `n`, the
//! direction and `T`; the request number follows from them, and [`Card::ioctl`] issues it:
//!
//! ```
//! use drm_client::{DriverIoctl, Direction};
//!
//! #[repr(C)]
//! #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
//! struct Echo {
//!     value: u64,
//! }
//!
//! const ECHO: DriverIoctl<Echo> = DriverIoctl::new(0x05, Direction::ReadWrite, "ECHO");
//! assert_eq!(ECHO.opcode(), 0xC0086445); // _IOWR('d', 0x45, 8 bytes)
//! ```
//!
//! Why [`Card::ioctl`] can be safe: `T` is [`Pod`] (every byte pattern is a valid `T`, and it
//! has no padding), a [`Card`] is a DRM character device (checked when it is made), and DRM
//! core's `drm_ioctl()` copies at most `_IOC_SIZE(request)` = `size_of::<T>()` bytes from and to
//! the argument, whatever the driver's own table says the size is. So the kernel can neither
//! read nor write past `T`, and whatever it writes is a valid `T`; a wrong `T` for a request
//! gives wrong values or an error, never undefined behaviour.
//!
//! [`Card::ioctl`]: crate::Card::ioctl
//! [`Card`]: crate::Card

use bytemuck::Pod;
use rustix::ioctl::{opcode, Ioctl, IoctlOutput, Opcode};
use std::ffi::c_void;
use std::marker::PhantomData;

pub use rustix::ioctl::Direction;

/// The ioctl group ("type") of every DRM ioctl: `'d'` (`DRM_IOCTL_BASE`).
pub const DRM_IOCTL_BASE: u8 = b'd';
/// The number of the first driver ioctl (`DRM_COMMAND_BASE`); core ioctls are below it.
pub const DRM_COMMAND_BASE: u8 = 0x40;
/// One past the number of the last driver ioctl (`DRM_COMMAND_END`).
pub const DRM_COMMAND_END: u8 = 0xA0;

/// A driver ioctl with argument `T`: index `nr` in the driver's table and a direction (as
/// seen from userspace: [`Direction::ReadWrite`] is C's `_IOWR`).
pub struct DriverIoctl<T> {
    nr: u8,
    dir: Direction,
    name: &'static str,
    arg: PhantomData<fn(T) -> T>,
}

// Not derived: that would ask the same of `T`.
impl<T> Clone for DriverIoctl<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for DriverIoctl<T> {}

impl<T> std::fmt::Debug for DriverIoctl<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:#010x})", self.name, self.opcode())
    }
}

impl<T> DriverIoctl<T> {
    /// The driver ioctl `nr` of the driver's table (0 for the first), going `dir`, named
    /// `name` (for messages: the C macro's name, `RUST_DRM_GETPARAM`).
    ///
    /// Panics (at compile time in a `const`) when `nr` is past the driver range
    /// (`DRM_COMMAND_END - DRM_COMMAND_BASE`) or `T` is too large for a request number.
    pub const fn new(nr: u8, dir: Direction, name: &'static str) -> Self {
        assert!(
            nr < DRM_COMMAND_END - DRM_COMMAND_BASE,
            "a driver ioctl number is below DRM_COMMAND_END - DRM_COMMAND_BASE"
        );
        // _IOC_SIZE has 14 bits.
        assert!(
            size_of::<T>() < (1 << 14),
            "an ioctl argument is below 16 KiB"
        );
        Self {
            nr,
            dir,
            name,
            arg: PhantomData,
        }
    }

    /// `_IOWR`: the driver reads the argument and writes it back.
    pub const fn read_write(nr: u8, name: &'static str) -> Self {
        Self::new(nr, Direction::ReadWrite, name)
    }

    /// `_IOW`: the driver only reads the argument.
    pub const fn write(nr: u8, name: &'static str) -> Self {
        Self::new(nr, Direction::Write, name)
    }

    /// `_IOR`: the driver only writes the argument.
    pub const fn read(nr: u8, name: &'static str) -> Self {
        Self::new(nr, Direction::Read, name)
    }

    /// The index in the driver's table.
    pub const fn nr(&self) -> u8 {
        self.nr
    }

    /// The direction.
    pub const fn direction(&self) -> Direction {
        self.dir
    }

    /// The name given at definition.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The request number: `_IOC(dir, 'd', DRM_COMMAND_BASE + nr, size_of::<T>())`.
    pub const fn opcode(&self) -> Opcode {
        opcode::from_components(
            self.dir,
            DRM_IOCTL_BASE,
            DRM_COMMAND_BASE + self.nr,
            size_of::<T>(),
        )
    }
}

/// One call of a driver ioctl: its request number and argument, for `rustix::ioctl::ioctl`.
pub(crate) struct Call<'a, T> {
    opcode: Opcode,
    arg: &'a mut T,
}

impl<'a, T: Pod> Call<'a, T> {
    pub(crate) fn new(ioctl: DriverIoctl<T>, arg: &'a mut T) -> Self {
        Self {
            opcode: ioctl.opcode(),
            arg,
        }
    }

    /// A call of DRM core's `_IOWR` ioctl `nr` (below `DRM_COMMAND_BASE`), whose argument is a
    /// `T`: DRM core copies `_IOC_SIZE` bytes in and out for its own ioctls as for drivers'.
    pub(crate) fn core(nr: u8, arg: &'a mut T) -> Self {
        assert!(
            nr < DRM_COMMAND_BASE,
            "a DRM core ioctl number is below DRM_COMMAND_BASE"
        );
        Self {
            opcode: opcode::from_components(
                Direction::ReadWrite,
                DRM_IOCTL_BASE,
                nr,
                size_of::<T>(),
            ),
            arg,
        }
    }

    /// The request number.
    #[cfg(test)]
    pub(crate) fn opcode_of(&self) -> Opcode {
        self.opcode
    }
}

// SAFETY: the pointer is to a live, exclusively borrowed `T: Pod` of `size_of::<T>()` bytes,
// the size the request number carries; see the module documentation for why any bytes DRM
// core writes there are a valid `T`. The output is the return value alone.
unsafe impl<T: Pod> Ioctl for Call<'_, T> {
    type Output = ();

    // The driver may write the argument (whatever the direction says, it is `&mut`).
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        (self.arg as *mut T).cast()
    }

    unsafe fn output_from_ptr(_: IoctlOutput, _: *mut c_void) -> rustix::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
    struct Sixteen {
        a: u64,
        b: u64,
    }

    #[test]
    fn request_numbers_follow_the_c_macros() {
        // DRM_IOWR(DRM_COMMAND_BASE + 0, 16 bytes), as the C header computes it.
        let iowr = DriverIoctl::<Sixteen>::read_write(0, "A");
        assert_eq!(iowr.opcode(), 0xC010_6440);
        // _IOW: 0x40000000 | size << 16 | 'd' << 8 | nr.
        assert_eq!(DriverIoctl::<Sixteen>::write(1, "B").opcode(), 0x4010_6441);
        // _IOR: 0x80000000 | ...
        assert_eq!(DriverIoctl::<u32>::read(0x5f, "C").opcode(), 0x8004_649f);
        assert_eq!(iowr.nr(), 0);
        assert_eq!(iowr.direction(), Direction::ReadWrite);
        assert_eq!(iowr.name(), "A");
        assert_eq!(format!("{iowr:?}"), "A (0xc0106440)");
    }

    #[test]
    #[should_panic(expected = "below DRM_COMMAND_END")]
    fn a_number_past_the_driver_range_is_refused() {
        let _ = DriverIoctl::<u64>::read_write(DRM_COMMAND_END - DRM_COMMAND_BASE, "X");
    }
}
