// SPDX-License-Identifier: GPL-2.0-only
/*
 * The faux bus: devices that exist only in software, each bound to the one
 * faux driver from its creation to its destruction. See
 * include/linux/device/faux.h.
 */

#include <linux/device/faux.h>
#include <linux/err.h>
#include <linux/init.h>
#include <linux/slab.h>
#include "base.h"

/* A faux device and the callbacks of its creator. */
struct faux_object {
	struct faux_device faux_dev;
	const struct faux_device_ops *faux_ops;
};

#define to_faux_object(x) container_of_const(x, struct faux_object, faux_dev.dev)

/* The parent of faux devices created without one: /sys/devices/faux/. */
static struct device faux_bus_root = {
	.init_name = "faux",
};

/* Every faux device matches the faux driver. */
static int faux_match(struct device *dev, const struct device_driver *drv)
{
	return 1;
}

static int faux_probe(struct device *dev)
{
	struct faux_object *faux_obj = to_faux_object(dev);
	const struct faux_device_ops *faux_ops = faux_obj->faux_ops;

	if (faux_ops && faux_ops->probe)
		return faux_ops->probe(&faux_obj->faux_dev);
	return 0;
}

static void faux_remove(struct device *dev)
{
	struct faux_object *faux_obj = to_faux_object(dev);
	const struct faux_device_ops *faux_ops = faux_obj->faux_ops;

	if (faux_ops && faux_ops->remove)
		faux_ops->remove(&faux_obj->faux_dev);
}

static const struct bus_type faux_bus_type = {
	.name		= "faux",
	.match		= faux_match,
	.probe		= faux_probe,
	.remove		= faux_remove,
};

/*
 * The one driver of the bus. Probing is synchronous, so that a faux device is
 * bound when faux_device_create() returns, and there are no bind/unbind files,
 * so that it stays bound until faux_device_destroy().
 */
static struct device_driver faux_driver = {
	.name			= "faux_driver",
	.bus			= &faux_bus_type,
	.probe_type		= PROBE_FORCE_SYNCHRONOUS,
	.suppress_bind_attrs	= true,
};

static void faux_device_release(struct device *dev)
{
	kfree(to_faux_object(dev));
}

/**
 * faux_device_create() - create and bind a faux device
 * @name: the device's name, unique on the faux bus
 * @parent: the device's parent, or NULL for /sys/devices/faux/
 * @faux_ops: the creator's callbacks, or NULL; must outlive the device
 *
 * Creates the device and binds it to the faux driver, which calls
 * @faux_ops->probe if there is one. The device stays bound until
 * faux_device_destroy().
 *
 * Return: the device, or NULL if it could not be created or did not bind
 * (probe failed).
 */
struct faux_device *faux_device_create(const char *name, struct device *parent,
				       const struct faux_device_ops *faux_ops)
{
	struct faux_object *faux_obj;
	struct device *dev;
	int ret;

	faux_obj = kzalloc(sizeof(*faux_obj), GFP_KERNEL);
	if (!faux_obj)
		return NULL;
	faux_obj->faux_ops = faux_ops;

	dev = &faux_obj->faux_dev.dev;
	device_initialize(dev);
	dev->release = faux_device_release;
	dev->parent = parent ?: &faux_bus_root;
	dev->bus = &faux_bus_type;
	/* Nothing to suspend or resume: keep it out of the PM core's lists. */
	device_set_pm_not_required(dev);

	ret = dev_set_name(dev, "%s", name);
	if (ret)
		goto err_put;

	ret = device_add(dev);
	if (ret)
		goto err_put;

	/* A failed probe leaves the device unbound: it is of no use then. */
	if (!dev->driver) {
		device_del(dev);
		goto err_put;
	}

	return &faux_obj->faux_dev;

err_put:
	put_device(dev);
	return NULL;
}
EXPORT_SYMBOL_GPL(faux_device_create);

/**
 * faux_device_destroy() - unbind and destroy a faux device
 * @faux_dev: the device, from faux_device_create(); NULL is ignored
 *
 * Unbinds the device (calling the creator's remove and releasing its
 * device-managed resources) and drops the creator's reference to it.
 */
void faux_device_destroy(struct faux_device *faux_dev)
{
	if (!faux_dev)
		return;

	device_del(&faux_dev->dev);
	put_device(&faux_dev->dev);
}
EXPORT_SYMBOL_GPL(faux_device_destroy);

int __init faux_bus_init(void)
{
	int ret;

	ret = device_register(&faux_bus_root);
	if (ret) {
		put_device(&faux_bus_root);
		return ret;
	}

	ret = bus_register(&faux_bus_type);
	if (ret)
		goto err_bus;

	ret = driver_register(&faux_driver);
	if (ret)
		goto err_driver;

	return 0;

err_driver:
	bus_unregister(&faux_bus_type);
err_bus:
	device_unregister(&faux_bus_root);
	return ret;
}
