// SPDX-License-Identifier: GPL-2.0

//! Device ID tables.
//!
//! Each bus has its own C device ID structure (`struct platform_device_id`, `struct
//! pci_device_id`, ...). A driver's ID table is an [`IdArray`]: the raw IDs, zero-terminated as
//! the C side expects, and one value of driver information per ID. Building the table writes each
//! ID's index into the ID's driver data field, which the C side hands back with the matching ID
//! (and copies into dynamic IDs, such as PCI's `new_id`), so the bus adapter finds the ID's
//! information by that index. [`module_device_table!`](crate::module_device_table) exports the
//! raw IDs so that modpost generates the module aliases that make the module load for matching
//! devices.

use core::mem::MaybeUninit;

/// A bus's device ID type, layout-compatible with its C structure.
///
/// # Safety
///
/// Implementers must ensure that `Self` has the layout of [`RawDeviceId::RawType`] (so that it
/// can be transmuted to it) and that all-zeroes is a valid `RawType` (the terminating entry).
pub unsafe trait RawDeviceId {
    /// The C device ID structure, e.g. `bindings::platform_device_id`.
    type RawType: Copy;
}

/// A device ID type whose C structure has a field for the driver's data, where an [`IdArray`]
/// stores the index of each ID.
///
/// # Safety
///
/// `DRIVER_DATA_OFFSET` must be the offset, in bytes, of a field of [`RawDeviceId::RawType`] of
/// type `usize` (C's `kernel_ulong_t`) that the driver owns: the C side never writes it, and hands
/// it back unchanged with the matching ID.
pub unsafe trait RawDeviceIdIndex: RawDeviceId {
    /// The offset of the driver data field in [`RawDeviceId::RawType`].
    const DRIVER_DATA_OFFSET: usize;

    /// The index an [`IdArray`] stored in `id`, an ID of its table (or a copy of one).
    fn index(id: &Self::RawType) -> usize {
        let ptr: *const Self::RawType = id;
        // SAFETY: By the safety requirements of the trait, the field is a `usize` inside
        // `RawType`, so the read is in bounds and aligned.
        unsafe {
            ptr.byte_add(Self::DRIVER_DATA_OFFSET)
                .cast::<usize>()
                .read()
        }
    }
}

/// Raw device IDs followed by a zeroed terminating entry, as the C side expects them.
#[repr(C)]
pub struct RawIdArray<T: RawDeviceId, const N: usize> {
    ids: [T::RawType; N],
    sentinel: MaybeUninit<T::RawType>,
}

impl<T: RawDeviceId, const N: usize> RawIdArray<T, N> {
    /// The size of the array in bytes, terminating entry included.
    pub const fn size(&self) -> usize {
        core::mem::size_of::<Self>()
    }
}

/// A driver's ID table: raw device IDs and, for each, the driver's information of type `U`.
///
/// # Invariants
///
/// The terminating entry is zeroed, and the driver data field of the ID at index `i` holds `i`.
///
/// # Examples
///
/// A bus whose C ID structure is `RawId`:
///
/// ```
/// use core::mem::offset_of;
/// use kernel::device_id::{IdArray, IdTable, RawDeviceId, RawDeviceIdIndex};
///
/// #[repr(C)]
/// #[derive(Clone, Copy)]
/// struct RawId {
///     code: u32,
///     driver_data: usize,
/// }
///
/// #[repr(transparent)]
/// struct Id(RawId);
///
/// // SAFETY: `Id` is a transparent wrapper of `RawId`, and all-zeroes is a valid `RawId`.
/// unsafe impl RawDeviceId for Id {
///     type RawType = RawId;
/// }
///
/// // SAFETY: `driver_data` is a `usize` field that only the driver writes.
/// unsafe impl RawDeviceIdIndex for Id {
///     const DRIVER_DATA_OFFSET: usize = offset_of!(RawId, driver_data);
/// }
///
/// const fn id(code: u32) -> Id {
///     Id(RawId { code, driver_data: 0 })
/// }
///
/// const TABLE: IdArray<Id, &str, 2> = IdArray::new([(id(0x10), "ten"), (id(0x20), "twenty")]);
/// let table: &dyn IdTable<Id, &str> = &TABLE;
///
/// // Building the table wrote each ID's index into its driver data.
/// assert_eq!(table.id(1).code, 0x20);
/// assert_eq!(table.id(1).driver_data, 1);
/// // The bus hands back the matching ID, or a copy of it (a dynamic ID): either finds its info.
/// let matched: RawId = *table.id(1);
/// assert_eq!(*table.info(Id::index(&matched)), "twenty");
/// // The raw IDs are followed by a zeroed terminating entry.
/// assert_eq!(TABLE.raw_ids().size(), 3 * core::mem::size_of::<RawId>());
/// // SAFETY: `as_ptr` points to three `RawId`s: two IDs and the terminating entry.
/// let sentinel = unsafe { table.as_ptr().add(2).read() };
/// assert_eq!((sentinel.code, sentinel.driver_data), (0, 0));
/// ```
#[repr(C)]
pub struct IdArray<T: RawDeviceId, U, const N: usize> {
    raw_ids: RawIdArray<T, N>,
    id_infos: [U; N],
}

impl<T: RawDeviceIdIndex, U, const N: usize> IdArray<T, U, N> {
    /// Builds the table from pairs of device ID and driver information.
    ///
    /// Each ID's driver data field is overwritten with the ID's index.
    pub const fn new(ids: [(T, U); N]) -> Self {
        let mut raw_ids = [const { MaybeUninit::<T::RawType>::uninit() }; N];
        let mut infos = [const { MaybeUninit::<U>::uninit() }; N];
        let mut i = 0;
        while i < N {
            // SAFETY: By the safety requirements of `RawDeviceId`, `T` has the layout of
            // `T::RawType`.
            raw_ids[i] = MaybeUninit::new(unsafe { core::mem::transmute_copy(&ids[i].0) });
            let data = raw_ids[i].as_mut_ptr();
            // SAFETY: By the safety requirements of `RawDeviceIdIndex`, `DRIVER_DATA_OFFSET` is
            // the offset of a `usize` field inside the (initialised) `T::RawType`, so the write is
            // in bounds and aligned.
            unsafe {
                data.byte_add(T::DRIVER_DATA_OFFSET)
                    .cast::<usize>()
                    .write(i)
            };
            // SAFETY: The info is moved out exactly once; `ids` is forgotten below, so it is not
            // dropped twice.
            infos[i] = MaybeUninit::new(unsafe { core::ptr::read(&ids[i].1) });
            i += 1;
        }
        core::mem::forget(ids);
        // INVARIANT: The sentinel is zeroed and ID `i` holds `i` in its driver data field.
        Self {
            raw_ids: RawIdArray {
                // SAFETY: All `N` entries were initialised above; `MaybeUninit<X>` has the
                // layout of `X`.
                ids: unsafe { core::mem::transmute_copy(&raw_ids) },
                sentinel: MaybeUninit::zeroed(),
            },
            // SAFETY: As above, for the infos.
            id_infos: unsafe { core::mem::transmute_copy(&infos) },
        }
    }
}

impl<T: RawDeviceId, U, const N: usize> IdArray<T, U, N> {
    /// The raw IDs, terminating entry included.
    pub const fn raw_ids(&self) -> &RawIdArray<T, N> {
        &self.raw_ids
    }
}

mod private {
    pub trait Sealed {}
}

impl<T: RawDeviceId, U, const N: usize> private::Sealed for IdArray<T, U, N> {}

/// A driver's ID table, whatever its length: what bus adapters use.
///
/// Sealed: only [`IdArray`] implements it, so the pointer that bus adapters give to C is always
/// a zero-terminated array of IDs.
pub trait IdTable<T: RawDeviceId, U>: private::Sealed {
    /// A pointer to the zero-terminated raw IDs, for the bus's C driver structure.
    fn as_ptr(&self) -> *const T::RawType;

    /// The number of IDs, terminating entry excluded.
    fn len(&self) -> usize;

    /// Whether the table has no IDs.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw ID at `index`.
    fn id(&self, index: usize) -> &T::RawType;

    /// The driver information of the ID at `index`.
    fn info(&self, index: usize) -> &U;
}

impl<T: RawDeviceId, U, const N: usize> IdTable<T, U> for IdArray<T, U, N> {
    fn as_ptr(&self) -> *const T::RawType {
        // The pointer must have provenance over the terminating entry too, which a pointer from
        // `self.raw_ids.ids` would not have: derive it from `self`. `IdArray` and `RawIdArray`
        // are `repr(C)` with the IDs first, so it points to the first ID.
        core::ptr::from_ref(self).cast()
    }

    fn len(&self) -> usize {
        N
    }

    fn id(&self, index: usize) -> &T::RawType {
        &self.raw_ids.ids[index]
    }

    fn info(&self, index: usize) -> &U {
        &self.id_infos[index]
    }
}

/// Exports a driver's ID table for modpost, which turns it into module aliases.
///
/// `$table_type` is the bus's name as modpost knows it (e.g. `"platform"`), `$module_table_name`
/// names the exported copy and `$table_name` is the driver's [`IdArray`] constant. The symbol
/// name includes the module path and line, so that two tables of one module never collide.
/// Nothing is exported when the driver is built into the kernel, as with C's
/// `MODULE_DEVICE_TABLE`.
#[macro_export]
macro_rules! module_device_table {
    ($table_type:literal, $module_table_name:ident, $table_name:ident) => {
        #[rustfmt::skip]
        #[cfg(MODULE)]
        #[export_name =
            concat!("__mod_", $table_type, "__", module_path!(), "_", line!(), "_",
                    stringify!($table_name), "_device_table")
        ]
        static $module_table_name: [::core::mem::MaybeUninit<u8>; $table_name.raw_ids().size()] =
            // SAFETY: The raw IDs are plain data of exactly this size.
            unsafe { ::core::mem::transmute_copy($table_name.raw_ids()) };
    };
}
