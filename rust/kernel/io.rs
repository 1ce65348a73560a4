// SPDX-License-Identifier: GPL-2.0

//! Memory-mapped I/O: accessors for a mapping of device registers.
//!
//! [`IoRaw`] is a mapping as its owner knows it: an address and the real size. [`Io`] is the view
//! drivers use: its accessors (`read8()` ... `write64()` and their `_relaxed` forms, C's `readb()`
//! ... `writeq()`) check the offset at compile time against `SIZE`, the size the driver requires
//! the mapping to have at least; the `try_` forms check a run-time offset against the real size.
//!
//! C header: [`include/asm-generic/io.h`](srctree/include/asm-generic/io.h)

use crate::{build_assert, error::Result, prelude::*};

pub mod mem;
pub mod poll;
pub mod resource;

/// The accessors themselves, by C's names, taking the address of the register, on x86-64: the
/// instruction forms of C's `arch/x86/include/asm/io.h`, inlined into the caller.
///
/// Each access is one `mov` to or from memory in an `asm!` block, as in C, and never another
/// instruction: TDX and SEV guests emulate MMIO by decoding the instruction that faulted, and
/// their decoder (`insn_decode_mmio()`) knows only `mov` and its kin, so the access must not be
/// a volatile load or store that the compiler may fold into a `cmp`, `test` or `or`. The ordered
/// forms have no `nomem` option: like C's `"memory"` clobber, that orders them with every other
/// memory access of the caller (a descriptor written before a doorbell register is written
/// first). The `_relaxed` forms are `nomem`, as C's have no clobber. Unlike C's `"m"` operand,
/// an `asm!` operand is a register, so an access at an offset computes its address first.
///
/// # Safety
///
/// Each function must be called with the address of a register of the function's size in a
/// valid I/O memory mapping, aligned to that size.
#[cfg(CONFIG_X86_64)]
mod mmio {
    use core::arch::asm;

    macro_rules! define_mmio {
        (
            $read:ident, $read_relaxed:ident, $write:ident, $write_relaxed:ident, $t:ty,
            $class:ident, $load:literal, $store:literal
        ) => {
            /// # Safety
            ///
            /// `addr` is a register of this size in a valid I/O mapping, aligned (see the module).
            #[inline(always)]
            pub(super) unsafe fn $read(addr: usize) -> $t {
                let value: $t;
                // SAFETY: By the safety requirements of the module, `addr` may be read with one
                // access of this size; the asm touches nothing else.
                unsafe {
                    asm!($load, a = in(reg) addr, v = lateout($class) value,
                         options(nostack, preserves_flags))
                };
                value
            }

            /// # Safety
            ///
            /// `addr` is a register of this size in a valid I/O mapping, aligned (see the module).
            #[inline(always)]
            pub(super) unsafe fn $read_relaxed(addr: usize) -> $t {
                let value: $t;
                // SAFETY: As for the ordered form; `nomem`, as the access is to I/O memory only.
                unsafe {
                    asm!($load, a = in(reg) addr, v = lateout($class) value,
                         options(nomem, nostack, preserves_flags))
                };
                value
            }

            /// # Safety
            ///
            /// `addr` is a register of this size in a valid I/O mapping, aligned (see the module).
            #[inline(always)]
            pub(super) unsafe fn $write(value: $t, addr: usize) {
                // SAFETY: By the safety requirements of the module, `addr` may be written with one
                // access of this size; the asm touches nothing else.
                unsafe {
                    asm!($store, a = in(reg) addr, v = in($class) value,
                         options(nostack, preserves_flags))
                };
            }

            /// # Safety
            ///
            /// `addr` is a register of this size in a valid I/O mapping, aligned (see the module).
            #[inline(always)]
            pub(super) unsafe fn $write_relaxed(value: $t, addr: usize) {
                // SAFETY: As for the ordered form; `nomem`, as the access is to I/O memory only.
                unsafe {
                    asm!($store, a = in(reg) addr, v = in($class) value,
                         options(nomem, nostack, preserves_flags))
                };
            }
        };
    }

    define_mmio!(
        readb,
        readb_relaxed,
        writeb,
        writeb_relaxed,
        u8,
        reg_byte,
        "mov {v}, byte ptr [{a}]",
        "mov byte ptr [{a}], {v}"
    );
    define_mmio!(
        readw,
        readw_relaxed,
        writew,
        writew_relaxed,
        u16,
        reg,
        "mov {v:x}, word ptr [{a}]",
        "mov word ptr [{a}], {v:x}"
    );
    define_mmio!(
        readl,
        readl_relaxed,
        writel,
        writel_relaxed,
        u32,
        reg,
        "mov {v:e}, dword ptr [{a}]",
        "mov dword ptr [{a}], {v:e}"
    );
    define_mmio!(
        readq,
        readq_relaxed,
        writeq,
        writeq_relaxed,
        u64,
        reg,
        "mov {v:r}, qword ptr [{a}]",
        "mov qword ptr [{a}], {v:r}"
    );
}

/// The C helpers of the `readl()` family, on the other architectures: each keeps its own
/// instruction forms and barriers (a call per access, as v6.12 cannot inline C into Rust).
///
/// # Safety
///
/// Each function must be called with the address of a register of the function's size in a
/// valid I/O memory mapping, aligned to that size.
#[cfg(not(CONFIG_X86_64))]
mod mmio {
    use crate::{bindings, ffi::c_void};

    macro_rules! define_mmio {
        ($($read:ident, $write:ident, $t:ty);*) => {
            $(
                /// # Safety
                ///
                /// `addr` is a register of this size in a valid I/O mapping, aligned.
                #[inline(always)]
                pub(super) unsafe fn $read(addr: usize) -> $t {
                    // SAFETY: By the safety requirements of the module.
                    unsafe { bindings::$read(addr as *const c_void) }
                }

                /// # Safety
                ///
                /// `addr` is a register of this size in a valid I/O mapping, aligned.
                #[inline(always)]
                pub(super) unsafe fn $write(value: $t, addr: usize) {
                    // SAFETY: By the safety requirements of the module.
                    unsafe { bindings::$write(value, addr as *mut c_void) }
                }
            )*
        };
    }

    define_mmio!(
        readb, writeb, u8; readw, writew, u16; readl, writel, u32;
        readb_relaxed, writeb_relaxed, u8; readw_relaxed, writew_relaxed, u16;
        readl_relaxed, writel_relaxed, u32
    );
    #[cfg(CONFIG_64BIT)]
    define_mmio!(readq, writeq, u64; readq_relaxed, writeq_relaxed, u64);
}

/// The alignment of the start of a mapping: that of the largest accessor (8 bytes on 64-bit).
pub const IO_ALIGN: usize = core::mem::align_of::<usize>();

/// A mapping of I/O memory: its address and its real size, at least `SIZE` bytes.
///
/// It does not own the mapping: the type that does (a mapping of a device's resource) keeps it
/// valid and gives out an [`Io`] view of it.
///
/// # Invariants
///
/// `maxsize >= SIZE`, and `addr` is aligned to [`IO_ALIGN`], so that every access the offset
/// checks allow is aligned.
pub struct IoRaw<const SIZE: usize = 0> {
    addr: usize,
    maxsize: usize,
}

impl<const SIZE: usize> IoRaw<SIZE> {
    /// The mapping of `maxsize` bytes at `addr`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the mapping is smaller than `SIZE`, or `addr` is not aligned to
    /// [`IO_ALIGN`] (mappings of device registers start on a page).
    pub fn new(addr: usize, maxsize: usize) -> Result<Self> {
        if maxsize < SIZE || addr % IO_ALIGN != 0 {
            return Err(EINVAL);
        }
        // INVARIANT: Checked above.
        Ok(Self { addr, maxsize })
    }

    /// The address of the mapping.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// The real size of the mapping in bytes (at least `SIZE`).
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }
}

/// The view of an I/O memory mapping that drivers read and write registers through.
///
/// `SIZE` is the size the driver requires the mapping to have at least: accessors at a constant
/// offset are checked against it at compile time (a failed check is a build error) and compile to
/// the bare accessor. Offsets known only at run time go through the `try_` accessors,
/// which check against the mapping's real size and fail with `EINVAL`.
///
/// # Invariants
///
/// The `maxsize` bytes at `addr` of the [`IoRaw`] are an I/O memory mapping, valid for the I/O
/// accessors, for as long as a reference to the `Io` exists.
///
/// # Examples
///
/// On x86, where an MMIO access is a plain load or store, ordinary memory stands in for a
/// device's registers here so that the example runs at boot; a driver gets its `Io` from a
/// mapping of its device, such as a PCI BAR.
///
/// ```
/// # #[cfg(CONFIG_X86)] {
/// use kernel::io::{Io, IoRaw};
///
/// let regs = KBox::new([0u64; 2], GFP_KERNEL)?;
/// let raw: IoRaw<16> = IoRaw::new(regs.as_ptr() as usize, 16)?;
/// // SAFETY: `regs` is 16 bytes of memory that outlives `io`, and on x86 the accessors are
/// // plain loads and stores (`mov`).
/// let io = unsafe { Io::from_raw(&raw) };
///
/// // Constant offsets are checked at compile time: `io.read32(16)` would not build.
/// io.write32(0x1234_5678, 0x4);
/// assert_eq!(io.read32(0x4), 0x1234_5678);
/// assert_eq!(io.read16(0x4), 0x5678);
/// assert_eq!(io.read8(0x7), 0x12);
///
/// // Offsets known only at run time are checked against the real size.
/// let offset = core::hint::black_box(0xc);
/// io.try_write32(7, offset)?;
/// assert_eq!(io.try_read32(offset), Ok(7));
/// assert_eq!(io.try_read32(offset + 4), Err(EINVAL)); // Past the end.
/// assert_eq!(io.try_read32(offset + 2), Err(EINVAL)); // Misaligned.
/// assert_eq!(io.try_read32(usize::MAX), Err(EINVAL)); // The sum overflows.
/// # }
/// # Ok::<(), Error>(())
/// ```
#[repr(transparent)]
pub struct Io<const SIZE: usize = 0>(IoRaw<SIZE>);

macro_rules! define_read {
    ($(#[$attr:meta])* $name:ident, $try_name:ident, $c_fn:ident -> $type_name:ty) => {
        #[doc = concat!("Reads the `", stringify!($type_name), "` at `offset` (C's `",
                        stringify!($c_fn), "()`), checked at compile time.")]
        $(#[$attr])*
        #[inline(always)]
        pub fn $name(&self, offset: usize) -> $type_name {
            let addr = self.io_addr_assert::<$type_name>(offset);
            // SAFETY: By the type invariant `addr` is in a valid I/O mapping, and the check in
            // `io_addr_assert` keeps the access inside it and aligned.
            unsafe { mmio::$c_fn(addr) }
        }

        #[doc = concat!("Reads the `", stringify!($type_name), "` at `offset` (C's `",
                        stringify!($c_fn), "()`), checked at run time.")]
        ///
        /// # Errors
        ///
        /// `EINVAL` if the access does not fit the mapping or is misaligned.
        $(#[$attr])*
        #[inline]
        pub fn $try_name(&self, offset: usize) -> Result<$type_name> {
            let addr = self.io_addr::<$type_name>(offset)?;
            // SAFETY: As in the compile-time form; `io_addr` checked the access.
            Ok(unsafe { mmio::$c_fn(addr) })
        }
    };
}

macro_rules! define_write {
    ($(#[$attr:meta])* $name:ident, $try_name:ident, $c_fn:ident <- $type_name:ty) => {
        #[doc = concat!("Writes the `", stringify!($type_name), "` `value` at `offset` (C's `",
                        stringify!($c_fn), "()`), checked at compile time.")]
        $(#[$attr])*
        #[inline(always)]
        pub fn $name(&self, value: $type_name, offset: usize) {
            let addr = self.io_addr_assert::<$type_name>(offset);
            // SAFETY: By the type invariant `addr` is in a valid I/O mapping, and the check in
            // `io_addr_assert` keeps the access inside it and aligned.
            unsafe { mmio::$c_fn(value, addr) }
        }

        #[doc = concat!("Writes the `", stringify!($type_name), "` `value` at `offset` (C's `",
                        stringify!($c_fn), "()`), checked at run time.")]
        ///
        /// # Errors
        ///
        /// `EINVAL` if the access does not fit the mapping or is misaligned.
        $(#[$attr])*
        #[inline]
        pub fn $try_name(&self, value: $type_name, offset: usize) -> Result {
            let addr = self.io_addr::<$type_name>(offset)?;
            // SAFETY: As in the compile-time form; `io_addr` checked the access.
            unsafe { mmio::$c_fn(value, addr) }
            Ok(())
        }
    };
}

impl<const SIZE: usize> Io<SIZE> {
    /// The view of the mapping `raw` describes.
    ///
    /// # Safety
    ///
    /// The `raw.maxsize()` bytes at `raw.addr()` must be an I/O memory mapping, valid for the I/O
    /// accessors for as long as `raw` is borrowed.
    pub unsafe fn from_raw(raw: &IoRaw<SIZE>) -> &Self {
        // SAFETY: `Io` is a transparent wrapper of `IoRaw`.
        // INVARIANT: The caller promises that the mapping stays valid for the borrow.
        unsafe { &*core::ptr::from_ref(raw).cast::<Self>() }
    }

    /// The address of the mapping.
    #[inline]
    pub fn addr(&self) -> usize {
        self.0.addr()
    }

    /// The real size of the mapping in bytes (at least `SIZE`).
    #[inline]
    pub fn maxsize(&self) -> usize {
        self.0.maxsize()
    }

    /// Whether an access of a `U` at `offset` fits `size` bytes and is aligned.
    #[inline]
    const fn offset_valid<U>(offset: usize, size: usize) -> bool {
        let type_size = core::mem::size_of::<U>();
        match offset.checked_add(type_size) {
            Some(end) => end <= size && offset % type_size == 0,
            None => false,
        }
    }

    /// The address of a `U` at `offset`, checked against the real size.
    #[inline]
    fn io_addr<U>(&self, offset: usize) -> Result<usize> {
        if !Self::offset_valid::<U>(offset, self.maxsize()) {
            return Err(EINVAL);
        }
        // In bounds of the mapping, which is addressable, so the sum does not wrap.
        Ok(self.addr().wrapping_add(offset))
    }

    /// The address of a `U` at `offset`, checked at compile time against `SIZE` (which is at most
    /// the real size, by the invariant of [`IoRaw`]).
    #[inline(always)]
    fn io_addr_assert<U>(&self, offset: usize) -> usize {
        build_assert!(Self::offset_valid::<U>(offset, SIZE));
        // In bounds of the mapping, as for `io_addr`; no overflow check is needed.
        self.addr().wrapping_add(offset)
    }

    define_read!(read8, try_read8, readb -> u8);
    define_read!(read16, try_read16, readw -> u16);
    define_read!(read32, try_read32, readl -> u32);
    define_read!(#[cfg(CONFIG_64BIT)] read64, try_read64, readq -> u64);

    define_read!(read8_relaxed, try_read8_relaxed, readb_relaxed -> u8);
    define_read!(read16_relaxed, try_read16_relaxed, readw_relaxed -> u16);
    define_read!(read32_relaxed, try_read32_relaxed, readl_relaxed -> u32);
    define_read!(#[cfg(CONFIG_64BIT)] read64_relaxed, try_read64_relaxed, readq_relaxed -> u64);

    define_write!(write8, try_write8, writeb <- u8);
    define_write!(write16, try_write16, writew <- u16);
    define_write!(write32, try_write32, writel <- u32);
    define_write!(#[cfg(CONFIG_64BIT)] write64, try_write64, writeq <- u64);

    define_write!(write8_relaxed, try_write8_relaxed, writeb_relaxed <- u8);
    define_write!(write16_relaxed, try_write16_relaxed, writew_relaxed <- u16);
    define_write!(write32_relaxed, try_write32_relaxed, writel_relaxed <- u32);
    define_write!(#[cfg(CONFIG_64BIT)] write64_relaxed, try_write64_relaxed, writeq_relaxed <- u64);
}
