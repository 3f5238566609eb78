// SPDX-License-Identifier: GPL-2.0-only
/*
 * The caretaker fd: the one handle to an orphaned VM.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "caretaker.h"

/**
 * DOC: caretaker fd
 *
 * An anonymous-inode file ("kvm-caretaker") owned by caretaker.ko.  It is
 * what a VMM hands to its successor (SCM_RIGHTS, systemd's fd store) and
 * what goes into a LUO session for kexec: holding it is the permission to
 * detach, adopt or abort the orphan.  Its file_operations belong to the
 * module, so the module cannot be unloaded while one exists.
 *
 * KVM_CARETAKER_PREPARE does not create caretaker fds yet: it validates
 * its request and then fails with -EOPNOTSUPP.  On the fd, DETACH and
 * ABORT validate their argument and fail with -EOPNOTSUPP likewise, and
 * GET_STATUS is not implemented (-ENOTTY).
 */

static long caretaker_orphan_ioctl(struct file *file, unsigned int ioctl,
				   unsigned long arg)
{
	void __user *argp = (void __user *)arg;
	struct caretaker_refusal r;
	struct kvm_caretaker_op op;

	switch (ioctl) {
	case KVM_CARETAKER_DETACH:
	case KVM_CARETAKER_ABORT:
		if (copy_from_user(&op, argp, sizeof(op)))
			return -EFAULT;
		r = caretaker_check_zero(&op, sizeof(op),
					 "flags, pad or reserved not zero");
		if (!r.err)
			r = CARETAKER_REFUSE(-EOPNOTSUPP, "not implemented yet");
		caretaker_log_refusal(NULL, ioctl == KVM_CARETAKER_DETACH ?
				      "DETACH" : "ABORT", r);
		return r.err;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations caretaker_orphan_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = caretaker_orphan_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

/**
 * caretaker_file_is_orphan() - is @file a caretaker fd?
 * @file: any file
 *
 * Context: any context.
 * Return: true if @file was created by this module as a caretaker fd.
 */
bool caretaker_file_is_orphan(struct file *file)
{
	return file->f_op == &caretaker_orphan_fops;
}
