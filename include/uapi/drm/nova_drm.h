/* SPDX-License-Identifier: MIT */
/*
 * Nova: a DRM driver for NVIDIA GPUs with a GSP (GPU System Processor).
 */

#ifndef __NOVA_DRM_H__
#define __NOVA_DRM_H__

#include "drm.h"

#if defined(__cplusplus)
extern "C" {
#endif

/*
 * NOTE: This uAPI is not stable. It serves to test the Nova stub driver only and
 * will change as the driver grows; do not build on it.
 */

/*
 * Parameters of DRM_IOCTL_NOVA_GETPARAM.
 *
 * NOVA_GETPARAM_VRAM_BAR_SIZE: the length of the GPU's VRAM aperture (PCI BAR1),
 * in bytes.
 */
#define NOVA_GETPARAM_VRAM_BAR_SIZE	0x1

/**
 * struct drm_nova_getparam - query a parameter of the GPU
 * @param: the parameter, one of NOVA_GETPARAM_*; unknown ones are EINVAL
 * @value: the parameter's value, set by the kernel
 */
struct drm_nova_getparam {
	__u64 param;
	__u64 value;
};

/**
 * struct drm_nova_gem_create - create a GEM object
 * @handle: the new object's handle, set by the kernel
 * @pad: must be zero (EINVAL otherwise)
 * @size: the object's size in bytes, rounded up to the page size by the
 *        kernel, which writes the rounded size back; zero is EINVAL
 */
struct drm_nova_gem_create {
	__u32 handle;
	__u32 pad;
	__u64 size;
};

/**
 * struct drm_nova_gem_info - look a GEM object up
 * @handle: the object's handle (ENOENT if the file has no such handle)
 * @pad: must be zero (EINVAL otherwise)
 * @size: the object's size in bytes, set by the kernel
 */
struct drm_nova_gem_info {
	__u32 handle;
	__u32 pad;
	__u64 size;
};

#define DRM_NOVA_GETPARAM		0x00
#define DRM_NOVA_GEM_CREATE		0x01
#define DRM_NOVA_GEM_INFO		0x02

/*
 * The request numbers, in an enum rather than as macros so that bindgen can
 * evaluate them. GEM objects are closed with DRM_IOCTL_GEM_CLOSE.
 */
enum {
	DRM_IOCTL_NOVA_GETPARAM = DRM_IOWR(DRM_COMMAND_BASE + DRM_NOVA_GETPARAM,
					   struct drm_nova_getparam),
	DRM_IOCTL_NOVA_GEM_CREATE = DRM_IOWR(DRM_COMMAND_BASE + DRM_NOVA_GEM_CREATE,
					     struct drm_nova_gem_create),
	DRM_IOCTL_NOVA_GEM_INFO = DRM_IOWR(DRM_COMMAND_BASE + DRM_NOVA_GEM_INFO,
					   struct drm_nova_gem_info),
};

#if defined(__cplusplus)
}
#endif

#endif /* __NOVA_DRM_H__ */
