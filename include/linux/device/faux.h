/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The faux bus: a bus for devices that exist only in software.
 *
 * A faux device has no hardware behind it and no firmware description; the
 * code that creates it is also its driver. Creating one binds it to the bus's
 * single driver at once (calling the creator's optional probe), destroying it
 * unbinds it (calling remove), and userspace cannot unbind or re-bind it in
 * between (the driver has no bind attributes), so that it can carry
 * device-managed resources for as long as it exists. The driver core itself
 * still unbinds a consumer whose supplier unbinds: do not make a faux device
 * the consumer of a device link. Use it instead of registering a platform
 * device for something that is not a platform device.
 */
#ifndef _DEVICE_FAUX_H_
#define _DEVICE_FAUX_H_

#include <linux/container_of.h>
#include <linux/device.h>

/**
 * struct faux_device - a device on the faux bus
 * @dev: the device, bound to the faux driver for as long as it exists
 */
struct faux_device {
	struct device dev;
};

#define to_faux_device(x) container_of_const((x), struct faux_device, dev)

/**
 * struct faux_device_ops - callbacks of a faux device's creator
 * @probe: called when the device binds, from faux_device_create(); an error
 *	   makes the creation fail
 * @remove: called when the device unbinds, from faux_device_destroy()
 */
struct faux_device_ops {
	int (*probe)(struct faux_device *faux_dev);
	void (*remove)(struct faux_device *faux_dev);
};

struct faux_device *faux_device_create(const char *name, struct device *parent,
				       const struct faux_device_ops *faux_ops);
void faux_device_destroy(struct faux_device *faux_dev);

#endif /* _DEVICE_FAUX_H_ */
