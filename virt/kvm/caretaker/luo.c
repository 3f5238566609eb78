// SPDX-License-Identifier: GPL-2.0-only
/*
 * The caretaker's Live Update Orchestrator file handler.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/liveupdate.h>
#include <linux/module.h>

#include "caretaker.h"

/**
 * DOC: LUO file handler
 *
 * caretaker.ko registers a LUO file handler with the compatible string
 * "kvm-caretaker-v1" when it loads, if the kernel booted with live update
 * enabled, and unregisters it when it unloads.  Without live update the
 * module still loads: VMM restarts need no LUO, and
 * KVM_CHECK_EXTENSION(KVM_CAP_CARETAKER) reports KVM_CARETAKER_FEAT_LUO
 * only when the handler is registered.
 *
 * Only caretaker fds can be preserved (.can_preserve).  Serializing an
 * orphan into KHO is not implemented yet: .preserve() fails with
 * -EOPNOTSUPP, so adding a caretaker fd to a session fails and the
 * session is left as it was, and .retrieve() fails with -EOPNOTSUPP.
 */

static bool caretaker_luo_registered;

static bool caretaker_luo_can_preserve(struct liveupdate_file_handler *handler,
				       struct file *file)
{
	return caretaker_file_is_orphan(file);
}

static int caretaker_luo_preserve(struct liveupdate_file_op_args *args)
{
	pr_info_ratelimited("preserving an orphan across kexec is not implemented yet\n");
	return -EOPNOTSUPP;
}

static void caretaker_luo_unpreserve(struct liveupdate_file_op_args *args)
{
}

static int caretaker_luo_retrieve(struct liveupdate_file_op_args *args)
{
	pr_info_ratelimited("retrieving an orphan after kexec is not implemented yet\n");
	return -EOPNOTSUPP;
}

static void caretaker_luo_finish(struct liveupdate_file_op_args *args)
{
}

static const struct liveupdate_file_ops caretaker_luo_ops = {
	.can_preserve = caretaker_luo_can_preserve,
	.preserve = caretaker_luo_preserve,
	.unpreserve = caretaker_luo_unpreserve,
	.retrieve = caretaker_luo_retrieve,
	.finish = caretaker_luo_finish,
	.owner = THIS_MODULE,
};

static struct liveupdate_file_handler caretaker_luo_handler = {
	.ops = &caretaker_luo_ops,
	.compatible = CARETAKER_LUO_COMPATIBLE,
};

/**
 * caretaker_luo_init() - register the LUO file handler if LUO is enabled
 *
 * Context: module init.
 * Return: 0, also when live update is disabled; a negative errno if LUO is
 * enabled but refuses the handler.
 */
int caretaker_luo_init(void)
{
	int err;

	if (!liveupdate_enabled())
		return 0;
	err = liveupdate_register_file_handler(&caretaker_luo_handler);
	if (err) {
		pr_err("cannot register the LUO file handler: %d\n", err);
		return err;
	}
	caretaker_luo_registered = true;
	return 0;
}

/**
 * caretaker_luo_exit() - unregister the LUO file handler
 *
 * Context: module exit, or init failure.
 */
void caretaker_luo_exit(void)
{
	if (caretaker_luo_registered)
		liveupdate_unregister_file_handler(&caretaker_luo_handler);
	caretaker_luo_registered = false;
}

/**
 * caretaker_luo_available() - can caretaker fds go into a LUO session?
 *
 * Context: any context.
 * Return: true if the file handler is registered.
 */
bool caretaker_luo_available(void)
{
	return caretaker_luo_registered;
}
