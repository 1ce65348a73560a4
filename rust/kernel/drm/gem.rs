// SPDX-License-Identifier: GPL-2.0

//! GEM objects: a DRM driver's buffers, behind per-file handles.
//!
//! C header: [`include/drm/drm_gem.h`](srctree/include/drm/drm_gem.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings, drm,
    drm::{Driver, DriverFile},
    error::{to_result, Result},
    init::PinInit,
    page::PAGE_SIZE,
    prelude::*,
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::{mem, mem::MaybeUninit, ptr::NonNull};

/// A driver's data of each of its GEM objects.
///
/// A driver has one type of GEM object ([`Driver::Object`]), so that a handle of one of its
/// files always names an object of that type. The data is dropped with the object's last
/// reference, which may come after the device was unplugged (a file closed late, or a reference
/// the driver kept), so dropping it must not need the parent's resources.
pub trait DriverObject: Send + Sync + Sized + 'static {
    /// The driver this is the object data of.
    type Driver: drm::Driver;
}

/// A GEM object of a driver whose object data is `T`, backed by shmem.
///
/// Reference counted ([`ARef`]); each handle holds a reference too. The object is freed, and
/// its data dropped, when the last handle and the last reference go.
///
/// # Examples
///
/// Sizes are rounded up to pages; the data is dropped with the last reference.
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use kernel::{c_str, drm, drm::gem, faux, page::PAGE_SIZE};
///
/// # struct ExampleFile;
/// # impl drm::DriverFile for ExampleFile {
/// #     type Driver = ExampleDriver;
/// #     fn open(_dev: &drm::Device<ExampleDriver>) -> Result<Pin<KBox<Self>>> {
/// #         Ok(KBox::pin(ExampleFile, GFP_KERNEL)?)
/// #     }
/// # }
/// # struct ExampleDriver;
/// # impl drm::Driver for ExampleDriver {
/// #     type Data = ();
/// #     type File = ExampleFile;
/// #     type Object = Buffer;
/// #     const INFO: drm::DriverInfo = drm::DriverInfo {
/// #         major: 1,
/// #         minor: 0,
/// #         patchlevel: 0,
/// #         name: c_str!("example"),
/// #         desc: c_str!("Example DRM driver"),
/// #     };
/// #     const IOCTLS: &'static [drm::ioctl::Ioctl<Self>] = &[];
/// # }
/// # kernel::declare_drm_driver!(ExampleDriver);
/// static LIVE: AtomicU32 = AtomicU32::new(0);
///
/// struct Buffer;
///
/// impl Buffer {
///     fn new() -> Self {
///         LIVE.fetch_add(1, Ordering::Relaxed);
///         Buffer
///     }
/// }
///
/// impl Drop for Buffer {
///     fn drop(&mut self) {
///         LIVE.fetch_sub(1, Ordering::Relaxed);
///     }
/// }
///
/// impl gem::DriverObject for Buffer {
///     type Driver = ExampleDriver;
/// }
///
/// let parent = faux::Registration::new(c_str!("rust-gem-example"), None)?;
/// let drm = drm::Device::<ExampleDriver>::new(parent.as_ref(), ())?;
///
/// let obj = gem::Object::new(&drm, 1, Buffer::new())?;
/// assert_eq!(obj.size(), PAGE_SIZE);
/// let obj2 = gem::Object::new(&drm, PAGE_SIZE + 1, Buffer::new())?;
/// assert_eq!(obj2.size(), 2 * PAGE_SIZE);
/// assert_eq!(LIVE.load(Ordering::Relaxed), 2);
///
/// // Refused sizes leave nothing behind.
/// assert_eq!(gem::Object::new(&drm, 0, Buffer::new()).err(), Some(EINVAL));
/// assert_eq!(gem::Object::new(&drm, usize::MAX, Buffer::new()).err(), Some(EINVAL));
/// assert_eq!(LIVE.load(Ordering::Relaxed), 2);
///
/// let extra = obj.clone();
/// drop(obj);
/// assert_eq!(LIVE.load(Ordering::Relaxed), 2);
/// drop((extra, obj2));
/// assert_eq!(LIVE.load(Ordering::Relaxed), 0);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `obj` is an initialised GEM object of `dev`, whose `funcs` are `Object::FUNCS`, allocated
/// as the first field of this structure in a `KBox` that its `free` callback frees.
#[repr(C)]
#[pin_data]
pub struct Object<T: DriverObject> {
    obj: Opaque<bindings::drm_gem_object>,
    #[pin]
    data: T,
    dev: ARef<drm::Device<T::Driver>>,
}

impl<T: DriverObject> Object<T>
where
    T::Driver: Driver<Object = T>,
{
    /// The object functions of every object of this type.
    const FUNCS: bindings::drm_gem_object_funcs = {
        // SAFETY: All-zero is a valid `drm_gem_object_funcs`: `None` callbacks and null
        // pointers.
        let mut funcs: bindings::drm_gem_object_funcs =
            unsafe { MaybeUninit::zeroed().assume_init() };
        funcs.free = Some(Self::free_callback);
        funcs
    };

    /// Checks at compile time that `obj` is at offset 0, which the casts between an
    /// `Object<T>` and its `struct drm_gem_object` rely on (`repr(C)` puts it there; this keeps
    /// it there).
    const OBJ_FIRST: () = assert!(mem::offset_of!(Self, obj) == 0);

    /// Creates a GEM object of `dev` of at least `size` bytes (rounded up to a multiple of
    /// `PAGE_SIZE`), with its data initialised by `data`.
    ///
    /// The memory behind the object is a shmem file, allocated when it is first used.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a size of 0 or one that cannot be rounded up or backed; `ENOMEM`; or the
    /// error of `data`.
    pub fn new(
        dev: &drm::Device<T::Driver>,
        size: usize,
        data: impl PinInit<T, Error>,
    ) -> Result<ARef<Self>> {
        #[allow(clippy::let_unit_value)]
        let () = Self::OBJ_FIRST;
        if size == 0 {
            return Err(EINVAL);
        }
        let size = size.checked_next_multiple_of(PAGE_SIZE).ok_or(EINVAL)?;
        let obj = KBox::try_pin_init(
            try_pin_init!(Self {
                // SAFETY: All-zero is how `drm_gem_object_init()` expects a new object.
                obj: unsafe { Opaque::new(MaybeUninit::zeroed().assume_init()) },
                data <- data,
                dev: dev.into(),
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: The object is not initialised yet; nothing else can reach it.
        unsafe { (*obj.obj.get()).funcs = &Self::FUNCS };
        // SAFETY: `dev` is a valid DRM device, the object is zeroed but for its functions, and
        // `size` is a multiple of `PAGE_SIZE`.
        let ret = unsafe { bindings::drm_gem_object_init(dev.as_raw(), obj.obj.get(), size) };
        if let Err(e) = to_result(ret) {
            // SAFETY: `drm_gem_object_init()` failed after its private part was initialised,
            // which this undoes; the box is dropped then, with nothing referencing it.
            unsafe { bindings::drm_gem_private_object_fini(obj.obj.get()) };
            return Err(e);
        }
        // The object is initialised: its reference count, 1, is ours, and its `free` callback
        // frees the box.
        // SAFETY: The box is not moved out of: it is turned into a pointer that `free` takes
        // back.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(obj) });
        // INVARIANT: The object is initialised with `FUNCS`, in the box that `free` frees.
        // SAFETY: `raw` is valid, and the `ARef` takes over our reference.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(raw)) })
    }

    /// `drm_gem_object_funcs.free`: called by DRM when the last reference went.
    ///
    /// # Safety
    ///
    /// `raw` is an object of this type whose reference count dropped to zero.
    unsafe extern "C" fn free_callback(raw: *mut bindings::drm_gem_object) {
        // SAFETY: By the safety requirements, `raw` is the object initialised by `new`, which
        // nothing references any more.
        unsafe { bindings::drm_gem_object_release(raw) };
        // SAFETY: By the type invariant, `raw` is the first field of a `Self` in a `KBox`; it
        // is released, so dropping the box (the data, then the device reference) is the last
        // use.
        drop(unsafe { KBox::from_raw(raw.cast::<Self>()) });
    }

    /// The object's size in bytes, a multiple of `PAGE_SIZE`.
    pub fn size(&self) -> usize {
        // SAFETY: By the type invariant, the object is initialised; its size does not change.
        unsafe { (*self.obj.get()).size }
    }

    /// The device the object belongs to.
    pub fn dev(&self) -> &drm::Device<T::Driver> {
        &self.dev
    }

    /// The object's data.
    pub fn data(&self) -> Pin<&T> {
        // SAFETY: `data` is structurally pinned: the object is never moved.
        unsafe { Pin::new_unchecked(&self.data) }
    }

    /// Creates a handle to the object in `file`, which holds a reference until the handle is
    /// closed (`DRM_IOCTL_GEM_CLOSE`) or the file is.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `file` is not a file of the object's device (another device of the same
    /// driver), or the error of the handle's creation.
    pub fn create_handle<F>(&self, file: &drm::File<F>) -> Result<u32>
    where
        F: DriverFile<Driver = T::Driver>,
    {
        // SAFETY: `file` is an open file: its minor, and the minor's device, are valid.
        let file_dev = unsafe { (*(*file.as_raw()).minor).dev };
        if file_dev != self.dev.as_raw() {
            return Err(EINVAL);
        }
        let mut handle: u32 = 0;
        // SAFETY: `file` is an open file of the object's device and the object is initialised.
        to_result(unsafe {
            bindings::drm_gem_handle_create(file.as_raw(), self.obj.get(), &mut handle)
        })?;
        Ok(handle)
    }

    /// The object that `handle` names in `file`.
    ///
    /// # Errors
    ///
    /// `ENOENT` if `file` has no such handle.
    pub fn lookup_handle<F>(file: &drm::File<F>, handle: u32) -> Result<ARef<Self>>
    where
        F: DriverFile<Driver = T::Driver>,
    {
        // SAFETY: `file` is an open file.
        let raw = unsafe { bindings::drm_gem_object_lookup(file.as_raw(), handle) };
        let raw = NonNull::new(raw).ok_or(ENOENT)?;
        // SAFETY: The handles of a file of `T::Driver` name objects of that driver, which are
        // all `Object<T>` (`T` is the driver's only object type, and no C path creates objects
        // for its devices: `VTable` leaves `gem_create_object`, `gem_prime_import_sg_table` and
        // `dumb_create` NULL, so a PRIME import or a GEM_OPEN only ever hands back one of its
        // own); the lookup took a reference, which the `ARef` takes over.
        Ok(unsafe { ARef::from_raw(raw.cast::<Self>()) })
    }
}

// SAFETY: GEM objects are reference counted by `drm_gem_object_get()`/`drm_gem_object_put()`;
// by the type invariant, the structure lives until the count drops to zero.
unsafe impl<T: DriverObject> AlwaysRefCounted for Object<T> {
    fn inc_ref(&self) {
        // SAFETY: `self` is an initialised object with a reference held by `self`.
        unsafe { bindings::drm_gem_object_get(self.obj.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: By the safety requirements, the caller owns a reference to `obj`; the last
        // one frees it through `free_callback`.
        unsafe { bindings::drm_gem_object_put(obj.as_ref().obj.get()) };
    }
}

// SAFETY: GEM objects may be used and freed from any thread; the data and the device
// reference are `Send + Sync`.
unsafe impl<T: DriverObject> Send for Object<T> {}

// SAFETY: `&Object<T>` only reaches DRM functions that are safe from any thread, and `T` is
// `Sync`.
unsafe impl<T: DriverObject> Sync for Object<T> {}
