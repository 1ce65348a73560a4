// SPDX-License-Identifier: GPL-2.0

#include <drm/drm_gem.h>

#if IS_BUILTIN(CONFIG_DRM)

void rust_helper_drm_gem_object_get(struct drm_gem_object *obj)
{
	drm_gem_object_get(obj);
}

void rust_helper_drm_gem_object_put(struct drm_gem_object *obj)
{
	drm_gem_object_put(obj);
}

#endif
