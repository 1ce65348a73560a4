// SPDX-License-Identifier: GPL-2.0

//! Device ID tables.
//!
//! Each bus has its own C device ID structure (`struct platform_device_id`, `struct
//! pci_device_id`, ...). A driver's ID table is an [`IdArray`]: the raw IDs, zero-terminated as
//! the C side expects, and one value of driver information per ID. When the bus reports which ID
//! matched (a pointer into the table), the bus adapter finds that ID's information by its
//! position and hands it to `probe`. [`module_device_table!`](crate::module_device_table)
//! exports the raw IDs so that modpost generates the module aliases that make the module load
//! for matching devices.

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
/// The terminating entry is zeroed.
///
/// # Examples
///
/// A bus whose C ID structure is `RawId`:
///
/// ```
/// use kernel::device_id::{IdArray, IdTable, RawDeviceId};
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
/// const fn id(code: u32) -> Id {
///     Id(RawId { code, driver_data: 0 })
/// }
///
/// const TABLE: IdArray<Id, &str, 2> = IdArray::new([(id(0x10), "ten"), (id(0x20), "twenty")]);
///
/// assert_eq!(TABLE.id(1).code, 0x20);
/// // The bus reports a pointer to the matching ID: the adapter finds its information.
/// let matched: *const RawId = TABLE.id(1);
/// assert_eq!(TABLE.index_of(matched), Some(1));
/// assert_eq!(*TABLE.info(1), "twenty");
/// // A pointer outside the table (e.g. a dynamic ID) has no information.
/// let other = RawId { code: 0x30, driver_data: 0 };
/// assert_eq!(TABLE.index_of(&other), None);
/// // The terminating entry follows the IDs.
/// assert_eq!(TABLE.raw_ids().size(), 3 * core::mem::size_of::<RawId>());
/// ```
#[repr(C)]
pub struct IdArray<T: RawDeviceId, U, const N: usize> {
    raw_ids: RawIdArray<T, N>,
    id_infos: [U; N],
}

impl<T: RawDeviceId, U, const N: usize> IdArray<T, U, N> {
    /// Builds the table from pairs of device ID and driver information.
    pub const fn new(ids: [(T, U); N]) -> Self {
        let mut raw_ids = [const { MaybeUninit::<T::RawType>::uninit() }; N];
        let mut infos = [const { MaybeUninit::<U>::uninit() }; N];
        let mut i = 0;
        while i < N {
            // SAFETY: By the safety requirements of `RawDeviceId`, `T` has the layout of
            // `T::RawType`.
            raw_ids[i] = MaybeUninit::new(unsafe { core::mem::transmute_copy(&ids[i].0) });
            // SAFETY: The info is moved out exactly once; `ids` is forgotten below, so it is not
            // dropped twice.
            infos[i] = MaybeUninit::new(unsafe { core::ptr::read(&ids[i].1) });
            i += 1;
        }
        core::mem::forget(ids);
        // INVARIANT: The sentinel is zeroed.
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

    /// The raw IDs, terminating entry included.
    pub const fn raw_ids(&self) -> &RawIdArray<T, N> {
        &self.raw_ids
    }
}

/// A driver's ID table, whatever its length: what bus adapters use.
pub trait IdTable<T: RawDeviceId, U> {
    /// A pointer to the zero-terminated raw IDs, for the bus's C driver structure.
    fn as_ptr(&self) -> *const T::RawType;

    /// The raw ID at `index`.
    fn id(&self, index: usize) -> &T::RawType;

    /// The driver information of the ID at `index`.
    fn info(&self, index: usize) -> &U;

    /// The index of the ID `raw` points to, if it points to an ID of this table.
    fn index_of(&self, raw: *const T::RawType) -> Option<usize>;
}

impl<T: RawDeviceId, U, const N: usize> IdTable<T, U> for IdArray<T, U, N> {
    fn as_ptr(&self) -> *const T::RawType {
        // The sentinel follows the IDs (`repr(C)`), so this is a zero-terminated array.
        self.raw_ids.ids.as_ptr()
    }

    fn id(&self, index: usize) -> &T::RawType {
        &self.raw_ids.ids[index]
    }

    fn info(&self, index: usize) -> &U {
        &self.id_infos[index]
    }

    fn index_of(&self, raw: *const T::RawType) -> Option<usize> {
        let size = core::mem::size_of::<T::RawType>();
        let offset = (raw as usize).checked_sub(self.raw_ids.ids.as_ptr() as usize)?;
        (size != 0 && offset % size == 0 && offset / size < N).then_some(offset / size)
    }
}

/// Exports a driver's ID table for modpost, which turns it into module aliases.
///
/// `$table_type` is the bus's name as modpost knows it (e.g. `"platform"`), `$module_table_name`
/// names the exported copy and `$table_name` is the driver's [`IdArray`] constant. Nothing is
/// exported when the driver is built into the kernel, as with C's `MODULE_DEVICE_TABLE`.
#[macro_export]
macro_rules! module_device_table {
    ($table_type:literal, $module_table_name:ident, $table_name:ident) => {
        #[rustfmt::skip]
        #[cfg(MODULE)]
        #[export_name =
            concat!("__mod_", $table_type, "__", stringify!($table_name), "_device_table")
        ]
        static $module_table_name: [::core::mem::MaybeUninit<u8>; $table_name.raw_ids().size()] =
            // SAFETY: The raw IDs are plain data of exactly this size.
            unsafe { ::core::mem::transmute_copy($table_name.raw_ids()) };
    };
}
