// SPDX-License-Identifier: GPL-2.0-only
/*
 * caretaker.ko: keep a guest running on parked physical CPUs while its
 * VMM or the host kernel is replaced.
 *
 * This file registers the module with KVM (the VM-fd ioctls and the
 * KVM_CAP_CARETAKER feature mask) and with the Live Update Orchestrator.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/ratelimit.h>
#include <linux/suspend.h>

#include "caretaker.h"

/**
 * DOC: caretaker.ko
 *
 * The module is meant to be loaded only around a live update: the VM's
 * opt-in (KVM_ENABLE_CAP(KVM_CAP_CARETAKER)) lives in KVM itself, so a
 * VMM opts in when it creates the VM and the operator loads the module
 * when an update is due.  KVM pins the module during each call into it;
 * every caretaker fd pins it for the fd's lifetime (its file_operations
 * are owned by the module), so ``rmmod caretaker`` fails while any
 * caretaker fd exists.
 *
 * While any CPU is parked, suspend and hibernation are refused (their
 * PM notifier fails): they would take the parked CPUs' power, and the
 * guest with it.
 *
 * Every refusal is an errno to the caller and one ratelimited line in the
 * kernel log naming the VM, the operation and the reason; never a WARN,
 * and never a change to the VM, which keeps running under KVM.
 */

/**
 * caretaker_log_refusal() - tell the operator why a request was refused
 * @kvm: the VM, or NULL
 * @op: the operation ("PREPARE", "ATTACH", ...)
 * @r: the refusal
 *
 * Context: any context.
 */
void caretaker_log_refusal(struct kvm *kvm, const char *op,
			   struct caretaker_refusal r)
{
	/*
	 * One state for every refusal, so that a misbehaving VMM cannot
	 * flood the log through different paths; the burst is large enough
	 * for an operator's (or a test's) sequence of attempts.
	 */
	static DEFINE_RATELIMIT_STATE(rs, 5 * HZ, 64);

	if (!r.err || !r.why || !__ratelimit(&rs))
		return;
	if (kvm)
		pr_info("%s refused for VM %s (pid %d): %s (%d)\n",
			op, kvm->stats_id, current->pid, r.why, r.err);
	else
		pr_info("%s refused (pid %d): %s (%d)\n",
			op, current->pid, r.why, r.err);
}

static int caretaker_features(void)
{
	int f = KVM_CARETAKER_FEAT_IOCTLS | KVM_CARETAKER_FEAT_VMM_RESTART |
		KVM_CARETAKER_FEAT_ATTACH_PREPARE;

	/* Preserved in a session, an orphan also survives a kexec. */
	if (caretaker_luo_available())
		f |= KVM_CARETAKER_FEAT_LUO | KVM_CARETAKER_FEAT_KEXEC;
	return f;
}

static long caretaker_vm_ioctl(struct kvm *kvm, unsigned int ioctl,
			       unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (ioctl) {
	case KVM_CARETAKER_PREPARE:
		return caretaker_prepare(kvm, argp);
	case KVM_CARETAKER_ATTACH:
		return caretaker_attach(kvm, argp);
	default:
		return -ENOTTY;
	}
}

/* Orphans whose CPUs are parked: suspend would power them off. */
static atomic_t caretaker_nr_parking = ATOMIC_INIT(0);
struct dentry *caretaker_debugfs_root;

/**
 * caretaker_parking() - count an orphan that parks CPUs, or uncount it
 * @parking: true when its CPUs were parked, false when they came back
 *
 * Context: any context.
 */
void caretaker_parking(bool parking)
{
	if (parking)
		atomic_inc(&caretaker_nr_parking);
	else
		atomic_dec(&caretaker_nr_parking);
}

static int caretaker_pm_notify(struct notifier_block *nb, unsigned long action,
			       void *data)
{
	static DEFINE_RATELIMIT_STATE(rs, 5 * HZ, 4);

	if (action != PM_SUSPEND_PREPARE && action != PM_HIBERNATION_PREPARE)
		return NOTIFY_DONE;
	if (!atomic_read(&caretaker_nr_parking))
		return NOTIFY_OK;
	if (__ratelimit(&rs))
		pr_info("suspend refused: CPUs are parked for orphaned guests\n");
	return notifier_from_errno(-EBUSY);
}

static struct notifier_block caretaker_pm_nb = {
	.notifier_call = caretaker_pm_notify,
};

static const struct kvm_caretaker_ops caretaker_kvm_ops = {
	.owner = THIS_MODULE,
	.features = caretaker_features,
	.vm_ioctl = caretaker_vm_ioctl,
	.vcpu_stopped = caretaker_vcpu_stopped,
};

static int __init caretaker_init(void)
{
	int err;

	err = caretaker_arch_init();
	if (err)
		return err;
	err = caretaker_luo_init();
	if (err)
		return err;

	err = register_pm_notifier(&caretaker_pm_nb);
	if (err)
		goto err_luo;
	caretaker_debugfs_root = debugfs_create_dir("caretaker", NULL);

	err = kvm_caretaker_register(&caretaker_kvm_ops);
	if (err) {
		pr_err("cannot register with KVM: %d\n", err);
		goto err_pm;
	}
	pr_info("loaded, live update %s\n",
		caretaker_luo_available() ? "available" :
		"not available (booted without liveupdate=on)");
	return 0;

err_pm:
	debugfs_remove(caretaker_debugfs_root);
	unregister_pm_notifier(&caretaker_pm_nb);
err_luo:
	caretaker_luo_exit();
	return err;
}

static void __exit caretaker_exit(void)
{
	kvm_caretaker_unregister(&caretaker_kvm_ops);
	debugfs_remove(caretaker_debugfs_root);
	unregister_pm_notifier(&caretaker_pm_nb);
	caretaker_luo_exit();
	caretaker_arch_exit();
}

module_init(caretaker_init);
module_exit(caretaker_exit);

MODULE_DESCRIPTION("Caretaker: keep guests running across VMM and kernel live update");
MODULE_LICENSE("GPL");
