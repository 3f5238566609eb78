// SPDX-License-Identifier: GPL-2.0-only
/*
 * The caretaker fd: the one handle to an orphaned VM, and the orphan's
 * life: PREPARE, DETACH, ATTACH, release.
 */
#include <linux/anon_inodes.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/kvm_irqfd.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "caretaker.h"

/**
 * DOC: caretaker fd
 *
 * An anonymous-inode file ("kvm-caretaker") owned by caretaker.ko,
 * returned by KVM_CARETAKER_PREPARE (O_CLOEXEC).  It is what a VMM hands
 * to its successor (SCM_RIGHTS, systemd's fd store) and what goes into a
 * LUO session for kexec: holding it is the permission to detach, adopt
 * or abort the orphan.  Its file_operations belong to the module, so the
 * module cannot be unloaded while one exists.
 *
 * States (KVM_CARETAKER_GET_STATUS): PREPARED after PREPARE: the CPUs are
 * parked, idle, in the runtime, the memory pinned and the memslots
 * frozen, and the guest still runs under its VMM.  DETACHED after DETACH:
 * the guest runs on the parked CPUs; BLOCKED when at least one vCPU waits
 * on an exit.  ATTACHED once adopted: the CPUs go back to Linux, and the
 * memory is unpinned, once the adopter's vCPUs have run (at most
 * CARETAKER_RETURN_WAIT_MS later), and the fd has no further use.
 *
 * On the fd: DETACH (PREPARED -> DETACHED, else -EBUSY), ABORT
 * (PREPARED -> undone, the fd is then ABORTED; -EBUSY once detached: a
 * detached guest goes back only by ATTACH, into its source VM while that
 * VM's VMM lives or into a new VM), GET_STATUS, and GET_VCPU_STATUS: each
 * vCPU's telemetry, live while detached and final once adopted.
 *
 * The same telemetry is in /sys/kernel/debug/caretaker/orphan-N/status
 * for as long as the fd exists.  For tests, writing a count to .../nmi
 * sends that many NMIs to each parked CPU, and writing a vector to
 * .../ipi sends each one an interrupt of that vector, as the host might:
 * the runtime must take them and go on.
 *
 * Closing the last reference: a PREPARED orphan is undone as by ABORT; a
 * DETACHED one is torn down: the runtime stops, the guest is discarded,
 * the CPUs come back online and the memory is unpinned.
 */

static const struct file_operations caretaker_orphan_fops;

static void caretaker_freeze_memslots(struct kvm *kvm, bool frozen)
{
	mutex_lock(&kvm->slots_lock);
	WRITE_ONCE(kvm->caretaker_memslots_frozen, frozen);
	mutex_unlock(&kvm->slots_lock);
}

/*
 * Let go of the VM ATTACH_PREPARE held.  It stays as it is, memslots
 * frozen and vCPUs refusing KVM_RUN: they hold a copy of the guest that
 * is or will be stale, and must never run it.
 */
static void caretaker_unprepare(struct caretaker_orphan *o)
{
	if (!o->prepared)
		return;
	kvm_put_kvm(o->prepared);
	o->prepared = NULL;
	o->preloaded = false;
}

static void caretaker_orphan_undo(struct caretaker_orphan *o)
{
	caretaker_unprepare(o);
	caretaker_arch_release(o);
	/* A CPU that did not stop stays parked: suspend stays refused. */
	if (o->parking && !o->leaked) {
		caretaker_parking(false);
		o->parking = false;
	}
	if (!o->leaked) {
		caretaker_mem_unhold(o);
		caretaker_mem_release(o);
	}
	if (o->src) {
		if (o->state == KVM_CARETAKER_STATE_PREPARED)
			caretaker_freeze_memslots(o->src, false);
		kvm_put_kvm(o->src);
		o->src = NULL;
	}
}

/*
 * How long the CPUs stay parked after ATTACH at most, waiting for the
 * adopter's vCPUs to run.
 */
#define CARETAKER_RETURN_WAIT_MS	100

/*
 * Has every vCPU of the adopter been in the guest since ATTACH (its exit
 * count moved), or does it wait in KVM_RUN for an event?
 */
static bool caretaker_adopter_ran(struct caretaker_orphan *o)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, o->adopter)
		if (i < o->nr_vcpus &&
		    READ_ONCE(vcpu->stat.exits) == o->adopter_exits[i] &&
		    !kvm_vcpu_is_blocking(vcpu))
			return false;
	return true;
}

/*
 * After ATTACH: bringing the CPUs up again takes long (INIT, SIPI, the
 * whole CPU hotplug state machine), and so does unpinning the memory.
 * None of it may delay the adopted guest, so it is done after the ioctl
 * returned and once the adopter's vCPUs have run (or
 * CARETAKER_RETURN_WAIT_MS passed): the work item runs on the CPU that
 * called ATTACH, where the adopter's vCPU thread may well run next, and
 * a CPU coming up keeps other CPUs busy too (IPIs, hotplug callbacks on
 * every CPU), so before that point it would compete with the adopter's
 * way back into KVM_RUN for a CPU, inside the guest-visible stall.
 */
static void caretaker_orphan_release_work(struct work_struct *work)
{
	struct caretaker_orphan *o = container_of(to_delayed_work(work),
						  struct caretaker_orphan, release_work);
	unsigned long end = jiffies + msecs_to_jiffies(CARETAKER_RETURN_WAIT_MS);

	if (o->adopter) {
		while (!caretaker_adopter_ran(o) && time_before(jiffies, end))
			usleep_range(200, 500);
		kvm_put_kvm(o->adopter);
		o->adopter = NULL;
	}
	guard(mutex)(&o->lock);
	caretaker_orphan_undo(o);
}

static void caretaker_orphan_free(struct caretaker_orphan *o)
{
	flush_delayed_work(&o->release_work);
	debugfs_remove_recursive(o->debugfs);
	caretaker_orphan_undo(o);
	caretaker_arch_free(o);
	kfree(o->adopter_exits);
	kfree(o->cpus);
	kfree(o->vcpu_ids);
	kfree(o);
}

static int caretaker_orphan_release(struct inode *inode, struct file *file)
{
	caretaker_orphan_free(file->private_data);
	return 0;
}

/**
 * struct caretaker_detach - a DETACH in progress, shared with the vCPUs'
 *	threads (caretaker_vcpu_stopped())
 * @stopped: how many vCPUs are out of the guest for good: counted by their
 *	own thread as they left KVM_RUN, or by DETACH once it held their
 *	mutex (the VM refuses KVM_RUN from the start of DETACH)
 * @counted: which ones
 * @held: the vCPUs whose mutex DETACH holds
 * @bad: a counted vCPU is in a state DETACH cannot carry
 * @why: the first such refusal's words
 * @go: 0 until every vCPU is counted; then, decided by the last one
 *	counted, 1 to hand the vCPUs over or -1 not to
 *
 * No vCPU is handed over before all are out of the guest: one still in it
 * could send an IPI to one handed over already, and only KVM's stale copy
 * of that vCPU would get it.
 */
struct caretaker_detach {
	atomic_t stopped;
	unsigned long *counted;
	unsigned long *held;
	bool bad;
	const char *why;
	int go;
};

/* How long a vCPU's thread waits for the others before it leaves its vCPU to DETACH. */
#define CARETAKER_GO_WAIT_MS	20
/* How many polls for a vCPU's mutex before DETACH waits for it. */
#define CARETAKER_LOCK_POLLS	1000

/*
 * DETACHes in progress, for caretaker_vcpu_stopped().  An orphan is on the
 * list from before its VM's vCPUs are asked to stop until DETACH holds
 * every vcpu->mutex: a vCPU thread that finds it there, holding its own
 * vcpu->mutex, finds it alive and in DETACH.
 */
static DEFINE_SPINLOCK(caretaker_detaching_lock);
static LIST_HEAD(caretaker_detaching);

/* vCPU @i is out of the guest for good, and @r says whether it can go. */
static void caretaker_count_stopped(struct caretaker_orphan *o, u32 i,
				    struct caretaker_refusal r)
{
	struct caretaker_detach *d = o->detach;

	if (test_and_set_bit(i, d->counted))
		return;
	if (r.err) {
		cmpxchg(&d->why, NULL, r.why);
		WRITE_ONCE(d->bad, true);
	}
	/* Fully ordered: the last one counted sees every @bad before it. */
	if (atomic_inc_return(&d->stopped) != o->nr_vcpus)
		return;
	/* Release: whoever reads @go 1 (acquire) sees every vCPU stopped. */
	smp_store_release(&d->go, READ_ONCE(d->bad) ? -1 : 1);
}

/**
 * caretaker_vcpu_stopped() - a vCPU left KVM_RUN with KVM_EXIT_CARETAKER
 * @vcpu: the vCPU, its mutex held
 *
 * KVM's kvm_caretaker_ops.vcpu_stopped.  If a DETACH of @vcpu's VM is in
 * progress, the vCPU is counted out of the guest and, once all are,
 * handed over from here, by its own thread: the guest does not wait for
 * DETACH's thread to be scheduled and take the mutex, and the vCPUs'
 * states are taken in parallel.  A vCPU whose siblings take longer than
 * CARETAKER_GO_WAIT_MS is left to DETACH.
 *
 * Context: process context, may sleep.
 */
void caretaker_vcpu_stopped(struct kvm_vcpu *vcpu)
{
	struct caretaker_orphan *o = NULL, *it;
	u64 end;
	int go;

	scoped_guard(spinlock, &caretaker_detaching_lock) {
		list_for_each_entry(it, &caretaker_detaching, detaching) {
			if (it->src == vcpu->kvm) {
				o = it;
				break;
			}
		}
	}
	if (!o || vcpu->vcpu_idx >= o->nr_vcpus)
		return;
	caretaker_count_stopped(o, vcpu->vcpu_idx, caretaker_arch_check_stopped(vcpu));
	/* Polled: the wait is for the other vCPUs' exits, and polling yields. */
	end = ktime_get_ns() + CARETAKER_GO_WAIT_MS * NSEC_PER_MSEC;
	/* Acquire: pairs with the release in caretaker_count_stopped(). */
	while (!(go = smp_load_acquire(&o->detach->go)) && ktime_get_ns() < end) {
		cpu_relax();
		/* The threads that stop the other vCPUs may need this CPU. */
		cond_resched();
	}
	if (go == 1)
		caretaker_arch_handover(o, vcpu, true);
}

/*
 * A vCPU's mutex, under kvm->lock, without giving up on a signal (vCPUs
 * may have handed themselves over, and only DETACH can finish or undo
 * that).  Polled first: mutex_lock() spins while the owner runs, on a CPU
 * the guest may share (a host whose CPUs take turns, as in the selftests);
 * then waited for, so that a VMM calling ioctls in a loop cannot starve
 * DETACH.
 */
static void caretaker_lock_vcpu(struct kvm *kvm, struct kvm_vcpu *vcpu)
{
	unsigned int polls;

	for (polls = 0; polls < CARETAKER_LOCK_POLLS; polls++) {
		if (mutex_trylock_nest_lock(&vcpu->mutex, &kvm->lock))
			return;
		usleep_range(20, 50);
	}
	mutex_lock_nest_lock(&vcpu->mutex, &kvm->lock);
}

/*
 * Count every vCPU out of the guest: each in KVM_RUN counts itself, the
 * others are counted once DETACH holds their mutex.  Once the last one
 * decided, hand over the held ones if all can go, then take every other
 * mutex, after the hooks holding them are done.
 */
static void caretaker_stop_vcpus(struct caretaker_orphan *o, struct kvm *kvm)
{
	struct caretaker_detach *d = o->detach;
	struct kvm_vcpu *vcpu;
	unsigned int polls;
	unsigned long i;

	lockdep_assert_held(&kvm->lock);
	/* Acquire: pairs with the release in caretaker_count_stopped(). */
	for (polls = 0; !smp_load_acquire(&d->go); polls++) {
		kvm_for_each_vcpu(i, vcpu, kvm) {
			if (test_bit(i, d->counted))
				continue;
			if (polls < CARETAKER_LOCK_POLLS) {
				if (!mutex_trylock_nest_lock(&vcpu->mutex, &kvm->lock))
					continue;
			} else {
				mutex_lock_nest_lock(&vcpu->mutex, &kvm->lock);
			}
			__set_bit(i, d->held);
			caretaker_count_stopped(o, i, caretaker_arch_check_stopped(vcpu));
		}
		if (!smp_load_acquire(&d->go))	/* as above */
			usleep_range(20, 50);
	}
	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (!test_bit(i, d->held))
			continue;
		if (d->go == 1)
			caretaker_arch_handover(o, vcpu, false);
	}
	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (test_bit(i, d->held))
			continue;
		caretaker_lock_vcpu(kvm, vcpu);
		__set_bit(i, d->held);
	}
}

/*
 * The stall: from the request that stops the vCPUs to the last vCPU's
 * first VMRUN in the runtime is what the guest can see.
 */
static struct caretaker_refusal caretaker_orphan_detach(struct caretaker_orphan *o)
{
	struct kvm *kvm = o->src;
	struct caretaker_detach d = { };
	enum caretaker_spent spent = CARETAKER_NOT_SPENT;
	struct caretaker_refusal r;
	struct kvm_vcpu *vcpu;
	unsigned long i;
	u64 t0;

	if (o->state != KVM_CARETAKER_STATE_PREPARED)
		return CARETAKER_REFUSE(-EBUSY, "the orphan is not in the prepared state");
	/* Nothing changed yet: refused here, the VM runs on as it was. */
	r = caretaker_arch_check_vm(kvm);
	if (r.err)
		return r;
	d.counted = bitmap_zalloc(o->nr_vcpus, GFP_KERNEL_ACCOUNT);
	d.held = bitmap_zalloc(o->nr_vcpus, GFP_KERNEL_ACCOUNT);
	if (!d.counted || !d.held) {
		r = CARETAKER_REFUSE(-ENOMEM, "out of memory");
		goto free;
	}

	mutex_lock(&kvm->lock);
	/* KVM_CREATE_VCPU takes kvm->lock: no vCPU comes during DETACH. */
	if (kvm->created_vcpus != o->nr_vcpus) {
		mutex_unlock(&kvm->lock);
		r = CARETAKER_REFUSE(-EBUSY, "the VM's vCPUs changed since PREPARE");
		goto free;
	}
	/*
	 * Interrupts sent through the VM's irqfds from now on stay in their
	 * eventfds, for the adopting VM's KVM_IRQFD; the ones sent before are
	 * in the local APICs read as the vCPUs stop.  Released before the
	 * stall, which then does not wait for the irqfds' shutdown.
	 */
	kvm_irqfd_release_keep_counts(kvm);
	/*
	 * From here every vCPU ioctl but the reads fails with EBUSY: a vCPU
	 * out of KVM_RUN stays out, and one in it leaves at the request.  So
	 * do KVM_IRQ_LINE, KVM_SIGNAL_MSI and KVM_IRQFD on the VM; an irqfd
	 * assigned since the release is released now (the list is empty
	 * unless the VMM raced its own DETACH).
	 */
	WRITE_ONCE(kvm->caretaker_detached, true);
	kvm_irqfd_release_keep_counts(kvm);
	o->detach = &d;
	scoped_guard(spinlock, &caretaker_detaching_lock)
		list_add(&o->detaching, &caretaker_detaching);
	t0 = ktime_get_ns();
	kvm_make_all_cpus_request(kvm, KVM_REQ_CARETAKER_STOP);
	caretaker_stop_vcpus(o, kvm);
	scoped_guard(spinlock, &caretaker_detaching_lock)
		list_del(&o->detaching);
	o->detach = NULL;

	if (d.go == 1)
		r = caretaker_arch_detach(o, kvm, t0, &spent);
	else
		r = CARETAKER_REFUSE(-EAGAIN, d.why);
	if (r.err && spent != CARETAKER_LOST) {
		/* The guest goes on under its VMM. */
		kvm_for_each_vcpu(i, vcpu, kvm)
			kvm_clear_request(KVM_REQ_CARETAKER_STOP, vcpu);
		WRITE_ONCE(kvm->caretaker_detached, false);
	} else if (r.err) {
		/* A CPU may still run the guest: KVM must never run it too. */
		kvm_vm_dead(kvm);
	}
	kvm_unlock_all_vcpus(kvm);
	mutex_unlock(&kvm->lock);

	if (!r.err) {
		o->state = KVM_CARETAKER_STATE_DETACHED;
	} else if (spent != CARETAKER_NOT_SPENT) {
		/* Its CPUs ran the guest and stopped: they cannot run it again. */
		caretaker_orphan_undo(o);
		o->state = KVM_CARETAKER_STATE_ABORTED;
	}
free:
	bitmap_free(d.counted);
	bitmap_free(d.held);
	return r;
}

static long caretaker_orphan_status(struct caretaker_orphan *o, void __user *argp)
{
	struct kvm_caretaker_status st;

	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	if (st.flags)
		return -EINVAL;
	memset(&st, 0, sizeof(st));
	st.state = o->state;
	st.nr_vcpus = o->nr_vcpus;
	st.stall_ns = o->stall_ns;
	if (o->state == KVM_CARETAKER_STATE_DETACHED ||
	    o->state == KVM_CARETAKER_STATE_PRESERVED)
		caretaker_arch_status(o, &st);
	return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
}

static long caretaker_orphan_vcpu_status(struct caretaker_orphan *o, void __user *argp)
{
	struct kvm_caretaker_vcpu_status vs;
	u32 index;
	int r;

	if (copy_from_user(&vs, argp, sizeof(vs)))
		return -EFAULT;
	if (vs.flags)
		return -EINVAL;
	index = vs.vcpu_index;
	memset(&vs, 0, sizeof(vs));
	vs.vcpu_index = index;
	r = caretaker_arch_vcpu_status(o, &vs);
	if (r)
		return r;
	return copy_to_user(argp, &vs, sizeof(vs)) ? -EFAULT : 0;
}

static long caretaker_orphan_ioctl(struct file *file, unsigned int ioctl,
				   unsigned long arg)
{
	struct caretaker_orphan *o = file->private_data;
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
		if (r.err)
			goto log;
		scoped_guard(mutex, &o->lock) {
			if (ioctl == KVM_CARETAKER_DETACH) {
				r = caretaker_orphan_detach(o);
			} else if (o->state != KVM_CARETAKER_STATE_PREPARED) {
				r = CARETAKER_REFUSE(-EBUSY,
						     "only a prepared orphan can be aborted");
			} else {
				caretaker_orphan_undo(o);
				o->state = KVM_CARETAKER_STATE_ABORTED;
			}
		}
log:
		caretaker_log_refusal(NULL, ioctl == KVM_CARETAKER_DETACH ?
				      "DETACH" : "ABORT", r);
		return r.err;
	case KVM_CARETAKER_GET_STATUS: {
		guard(mutex)(&o->lock);
		return caretaker_orphan_status(o, argp);
	}
	case KVM_CARETAKER_GET_VCPU_STATUS: {
		guard(mutex)(&o->lock);
		return caretaker_orphan_vcpu_status(o, argp);
	}
	default:
		return -ENOTTY;
	}
}

static const struct file_operations caretaker_orphan_fops = {
	.owner = THIS_MODULE,
	.release = caretaker_orphan_release,
	.unlocked_ioctl = caretaker_orphan_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static int caretaker_debugfs_status_show(struct seq_file *m, void *unused)
{
	struct caretaker_orphan *o = m->private;
	struct kvm_caretaker_vcpu_status vs;
	u32 i, k;

	guard(mutex)(&o->lock);
	seq_printf(m, "state %u vcpus %u stall_ns %llu\n", o->state, o->nr_vcpus,
		   o->stall_ns);
	for (i = 0; i < o->nr_vcpus; i++) {
		memset(&vs, 0, sizeof(vs));
		vs.vcpu_index = i;
		if (caretaker_arch_vcpu_status(o, &vs))
			continue;
		seq_printf(m, "vcpu %u cpu %u state %u exits %llu nmis %llu detached_ns %llu blocked_exit %#llx blocked_rip %#llx blocked_ns %llu kinds",
			   i, vs.cpu, vs.state, vs.exits, vs.nmis, vs.detached_ns,
			   vs.blocked_exit_code, vs.blocked_rip, vs.blocked_ns);
		for (k = 0; k < KVM_CARETAKER_NR_EXIT_KINDS; k++)
			seq_printf(m, " %llu", vs.exits_by_kind[k]);
		seq_puts(m, " handled");
		for (k = 0; k < KVM_CARETAKER_NR_EXIT_KINDS; k++)
			seq_printf(m, " %llu", vs.handled_by_kind[k]);
		seq_putc(m, '\n');
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(caretaker_debugfs_status);

static ssize_t caretaker_debugfs_nmi_write(struct file *file, const char __user *buf,
					   size_t len, loff_t *ppos)
{
	struct caretaker_orphan *o = file->private_data;
	unsigned int n;
	int r;

	r = kstrtouint_from_user(buf, len, 0, &n);
	if (r)
		return r;
	if (n > 1000)
		return -EINVAL;
	scoped_guard(mutex, &o->lock)
		r = caretaker_arch_kick(o, n);
	return r ? r : len;
}

static const struct file_operations caretaker_debugfs_nmi_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = caretaker_debugfs_nmi_write,
	.llseek = noop_llseek,
};

static ssize_t caretaker_debugfs_ipi_write(struct file *file, const char __user *buf,
					   size_t len, loff_t *ppos)
{
	struct caretaker_orphan *o = file->private_data;
	unsigned int vector;
	int r;

	r = kstrtouint_from_user(buf, len, 0, &vector);
	if (r)
		return r;
	scoped_guard(mutex, &o->lock)
		r = caretaker_arch_ipi(o, vector);
	return r ? r : len;
}

static const struct file_operations caretaker_debugfs_ipi_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = caretaker_debugfs_ipi_write,
	.llseek = noop_llseek,
};

static void caretaker_orphan_debugfs(struct caretaker_orphan *o)
{
	static atomic_t seq = ATOMIC_INIT(0);
	char name[32];

	snprintf(name, sizeof(name), "orphan-%d", atomic_inc_return(&seq));
	o->debugfs = debugfs_create_dir(name, caretaker_debugfs_root);
	debugfs_create_file("status", 0444, o->debugfs, o, &caretaker_debugfs_status_fops);
	debugfs_create_file("nmi", 0200, o->debugfs, o, &caretaker_debugfs_nmi_fops);
	debugfs_create_file("ipi", 0200, o->debugfs, o, &caretaker_debugfs_ipi_fops);
}

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

/**
 * caretaker_orphan_create() - the work of a PREPARE that passed its checks
 * @kvm: the VM
 * @cpus: physical CPU per vCPU index, checked
 * @nr_cpus: entries in @cpus, the VM's number of vCPUs
 *
 * Freezes the memslots, pins the memory, builds the runtime and parks
 * the CPUs in it, then returns the caretaker fd.  On failure everything
 * is undone and the VM goes on as before.
 *
 * Context: process context of the VM's VMM, may sleep.
 * Return: the fd, or a negative errno (logged).
 */
int caretaker_orphan_create(struct kvm *kvm, const u32 *cpus, u32 nr_cpus)
{
	struct caretaker_orphan *o;
	struct caretaker_refusal r;
	struct kvm_vcpu *vcpu;
	unsigned long i;
	int fd;

	o = kzalloc_obj(*o, GFP_KERNEL_ACCOUNT);
	if (!o)
		return -ENOMEM;
	mutex_init(&o->lock);
	INIT_DELAYED_WORK(&o->release_work, caretaker_orphan_release_work);
	o->state = KVM_CARETAKER_STATE_PREPARED;
	o->nr_vcpus = nr_cpus;
	o->cpus = kmemdup_array(cpus, nr_cpus, sizeof(*cpus), GFP_KERNEL_ACCOUNT);
	o->vcpu_ids = kcalloc(nr_cpus, sizeof(*o->vcpu_ids), GFP_KERNEL_ACCOUNT);
	if (!o->cpus || !o->vcpu_ids) {
		caretaker_orphan_free(o);
		return -ENOMEM;
	}
	kvm_for_each_vcpu(i, vcpu, kvm)
		if (i < nr_cpus)
			o->vcpu_ids[i] = vcpu->vcpu_id;

	mutex_lock(&kvm->slots_lock);
	if (READ_ONCE(kvm->caretaker_memslots_frozen)) {
		mutex_unlock(&kvm->slots_lock);
		caretaker_orphan_free(o);
		r = CARETAKER_REFUSE(-EBUSY, "the VM is prepared already");
		goto out;
	}
	WRITE_ONCE(kvm->caretaker_memslots_frozen, true);
	kvm_get_kvm(kvm);
	o->src = kvm;
	r = caretaker_mem_pin(o, kvm);
	mutex_unlock(&kvm->slots_lock);
	if (!r.err) {
		caretaker_parking(true);
		o->parking = true;
		r = caretaker_arch_prepare(o, kvm);
	}
	if (r.err) {
		caretaker_orphan_free(o);
		goto out;
	}
	caretaker_orphan_debugfs(o);

	fd = anon_inode_getfd("kvm-caretaker", &caretaker_orphan_fops, o,
			      O_RDWR | O_CLOEXEC);
	if (fd < 0)
		caretaker_orphan_free(o);
	return fd;
out:
	caretaker_log_refusal(kvm, "PREPARE", r);
	return r.err;
}

/* Free an incoming orphan that cannot be adopted, and not what it runs on. */
static void caretaker_orphan_abandon(struct caretaker_orphan *o)
{
	caretaker_arch_abandon(o);
	caretaker_mem_release(o);
	kfree(o->cpus);
	kfree(o->vcpu_ids);
	kfree(o);
}

/**
 * caretaker_orphan_incoming() - an orphan the previous kernel left running
 * @ser: its serialized root (<linux/kho/abi/kvm_caretaker.h>), checked
 *	for version and features by the caller
 * @data: its serialized variable part, @ser->data_size bytes
 *
 * LUO's retrieve: rebuilds the orphan, DETACHED, around the runtime that
 * still runs its guest on CPUs this kernel left parked, and returns a new
 * caretaker fd's file for it.  ATTACH adopts it as it would one of this
 * kernel's.  Its memory belongs to the memfds LUO preserved, which the
 * adopter must map, and the orphan holds a reference on every page
 * (caretaker_mem_hold()), so the guest keeps it even if the session
 * finishes without the memfds being retrieved.
 *
 * Context: process context, may sleep.
 * Return: the file, or an ERR_PTR(); on failure the guest runs on, its
 * pages stay allocated (held for good) and its CPUs parked; this kernel
 * then refuses to kexec (see caretaker.rst).
 */
struct file *caretaker_orphan_incoming(const struct kvm_caretaker_ser *ser, const void *data)
{
	struct caretaker_refusal r = CARETAKER_OK;
	struct caretaker_orphan *o;
	struct file *file;
	u64 bytes;
	u32 i;

	if (!ser->nr_vcpus || ser->nr_vcpus > KVM_MAX_VCPUS || !ser->nr_slots ||
	    ser->nr_slots > KVM_MEM_SLOTS_NUM || ser->slots_off > ser->data_size ||
	    array_size(ser->nr_slots, sizeof(struct kvm_caretaker_slot)) >
	    ser->data_size - ser->slots_off) {
		pr_err_ratelimited("the serialized orphan is malformed: it runs on, not adopted\n");
		return ERR_PTR(-EINVAL);
	}
	o = kzalloc_obj(*o, GFP_KERNEL_ACCOUNT);
	if (!o)
		return ERR_PTR(-ENOMEM);
	mutex_init(&o->lock);
	INIT_DELAYED_WORK(&o->release_work, caretaker_orphan_release_work);
	o->state = KVM_CARETAKER_STATE_DETACHED;
	o->incoming = true;
	o->nr_vcpus = ser->nr_vcpus;
	o->cpus = kcalloc(o->nr_vcpus, sizeof(*o->cpus), GFP_KERNEL_ACCOUNT);
	o->vcpu_ids = kcalloc(o->nr_vcpus, sizeof(*o->vcpu_ids), GFP_KERNEL_ACCOUNT);
	o->slots = kcalloc(ser->nr_slots, sizeof(*o->slots), GFP_KERNEL_ACCOUNT);
	if (!o->cpus || !o->vcpu_ids || !o->slots)
		r = CARETAKER_REFUSE(-ENOMEM, "out of memory");
	for (i = 0; !r.err && i < ser->nr_slots; i++) {
		const struct kvm_caretaker_slot *e = data + ser->slots_off + i * sizeof(*e);
		struct caretaker_mem_slot *ms = &o->slots[i];

		bytes = array_size(e->npages, sizeof(u64));
		if (!e->npages || e->pfns_off > ser->data_size ||
		    bytes > ser->data_size - e->pfns_off) {
			r = CARETAKER_REFUSE(-EINVAL, "the serialized orphan is malformed");
			break;
		}
		ms->id = e->id;
		ms->flags = e->flags;
		ms->base_gfn = e->base_gfn;
		ms->npages = e->npages;
		ms->offset = e->offset;
		ms->pfns = kvmemdup(data + e->pfns_off, bytes, GFP_KERNEL_ACCOUNT);
		o->nr_slots++;
		if (!ms->pfns)
			r = CARETAKER_REFUSE(-ENOMEM, "out of memory");
	}
	if (!r.err && caretaker_mem_hold(o))
		r = CARETAKER_REFUSE(-EBUSY, "the guest's memory is not all there");
	if (!r.err)
		r = caretaker_arch_incoming(o, ser, data);
	if (r.err) {
		pr_err_ratelimited("the orphan the previous kernel left cannot be adopted (%s): it runs on, not adopted\n",
				   r.why);
		caretaker_orphan_abandon(o);
		return ERR_PTR(r.err);
	}

	file = anon_inode_getfile("kvm-caretaker", &caretaker_orphan_fops, o, O_RDWR);
	if (IS_ERR(file)) {
		caretaker_orphan_abandon(o);
		return file;
	}
	caretaker_parking(true);
	o->parking = true;
	caretaker_orphan_debugfs(o);
	return file;
}

static struct caretaker_refusal __caretaker_check_vcpus(struct caretaker_orphan *o,
							struct kvm *kvm)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;

	lockdep_assert_held(&kvm->lock);
	if (kvm->created_vcpus != o->nr_vcpus ||
	    atomic_read(&kvm->online_vcpus) != o->nr_vcpus)
		return CARETAKER_REFUSE(-EINVAL,
					"the adopting VM has another number of vCPUs");
	kvm_for_each_vcpu(i, vcpu, kvm)
		if (vcpu->vcpu_id != o->vcpu_ids[i])
			return CARETAKER_REFUSE(-EINVAL,
						"the adopting VM's vCPU ids differ");
	return CARETAKER_OK;
}

static struct caretaker_refusal caretaker_check_vcpus(struct caretaker_orphan *o,
						      struct kvm *kvm)
{
	guard(mutex)(&kvm->lock);
	return __caretaker_check_vcpus(o, kvm);
}

/*
 * @kvm's vCPUs are not another orphan's: neither its source's nor its
 * prepared adopter's, nor those of a VM let go of (caretaker_detached
 * stays set on those).  Checked before anything is compared with @kvm, and
 * again under @kvm->lock, which DETACH sets the flag under.
 */
static struct caretaker_refusal caretaker_check_not_held(struct kvm *kvm)
{
	if (READ_ONCE(kvm->caretaker_detached))
		return CARETAKER_REFUSE(-EBUSY, "the VM's vCPUs are held by the caretaker");
	return CARETAKER_OK;
}

/*
 * Take @kvm->lock, as kvm_lock_all_vcpus() wants, and lock the adopter's
 * vCPUs, after checking their number again under it: a vCPU created since
 * the checks (KVM_CREATE_VCPU does not wait for this ioctl) is refused,
 * so that no vCPU is half created while they are locked.  @other: @kvm
 * is neither the orphan's source nor its prepared adopter, and must not
 * have been detached by another orphan since the check (DETACH sets
 * caretaker_detached under @kvm->lock).  On success both stay held until
 * caretaker_unlock_adopter(); on a refusal neither is.
 */
static struct caretaker_refusal caretaker_lock_adopter(struct caretaker_orphan *o,
						       struct kvm *kvm, bool other)
{
	struct caretaker_refusal r = CARETAKER_OK;

	mutex_lock(&kvm->lock);
	if (other)
		r = caretaker_check_not_held(kvm);
	if (!r.err)
		r = __caretaker_check_vcpus(o, kvm);
	if (!r.err && kvm_lock_all_vcpus(kvm))
		r = CARETAKER_REFUSE(-EINTR, "interrupted while locking the vCPUs");
	if (r.err)
		mutex_unlock(&kvm->lock);
	return r;
}

static void caretaker_unlock_adopter(struct kvm *kvm)
{
	kvm_unlock_all_vcpus(kvm);
	mutex_unlock(&kvm->lock);
}

/*
 * KVM_CARETAKER_ATTACH_PREPARE: check @kvm whole and load the state into
 * it, the guest running on.  The memslots are frozen before the checks,
 * so that what they compare cannot change after them, and the vCPUs
 * refuse KVM_RUN and changes (kvm->caretaker_detached) before the state
 * goes in.  Once they do, @kvm is held even if the load fails: ATTACH
 * into it then loads the whole state.  The VM prepared before, if any,
 * is let go of then.
 */
static struct caretaker_refusal caretaker_prepare_adopter(struct caretaker_orphan *o,
							  struct kvm *kvm, bool same)
{
	struct caretaker_refusal r;
	struct kvm *old;

	if (!same) {
		mutex_lock(&kvm->slots_lock);
		if (READ_ONCE(kvm->caretaker_memslots_frozen)) {
			mutex_unlock(&kvm->slots_lock);
			return CARETAKER_REFUSE(-EBUSY, "the VM is held by the caretaker already");
		}
		WRITE_ONCE(kvm->caretaker_memslots_frozen, true);
		mutex_unlock(&kvm->slots_lock);
	}
	r = caretaker_check_vcpus(o, kvm);
	if (!r.err && !same)
		r = caretaker_mem_check_adopter(o, kvm);
	if (!r.err)
		r = caretaker_arch_check_adopter(o, kvm, false);
	if (!r.err)
		r = caretaker_lock_adopter(o, kvm, false);
	if (r.err) {
		if (!same)
			caretaker_freeze_memslots(kvm, false);
		return r;
	}
	WRITE_ONCE(kvm->caretaker_detached, true);
	old = o->prepared;
	kvm_get_kvm(kvm);
	o->prepared = kvm;
	r = caretaker_arch_preload(o, kvm);
	o->preloaded = !r.err;
	caretaker_unlock_adopter(kvm);
	/* Let go of the VM prepared before, outside this VM's vCPU locks. */
	if (old)
		kvm_put_kvm(old);
	return r;
}

/**
 * caretaker_orphan_adopt() - KVM_CARETAKER_ATTACH's work
 * @kvm: the adopting VM: a new VM, or the source VM while its VMM lives
 * @file: a caretaker fd
 * @prepare: KVM_CARETAKER_ATTACH_PREPARE: only check @kvm and load the
 *	state into it, see caretaker_prepare_adopter()
 *
 * Checks the adopting VM against the orphan (a mismatch leaves the
 * orphan running), stops the runtime and loads the state into @kvm's
 * vCPUs: after an ATTACH_PREPARE on @kvm, only what the VM's own ioctls
 * can still change is checked, and only what the guest may have changed
 * is loaded.  The CPUs go back to Linux, and the memory is unpinned,
 * after the ioctl returned and the adopter's vCPUs have run, or at most
 * CARETAKER_RETURN_WAIT_MS later (a work item; the fd's release waits
 * for it).  An ATTACH into another VM than the prepared one lets go of
 * the prepared VM once it succeeds (caretaker_unprepare()).
 *
 * Context: process context of @kvm's VMM, may sleep.
 * Return: 0 or a negative errno (logged).
 */
long caretaker_orphan_adopt(struct kvm *kvm, struct file *file, bool prepare)
{
	struct caretaker_orphan *o = file->private_data;
	struct caretaker_refusal r = CARETAKER_OK;
	struct kvm_vcpu *vcpu;
	bool same, held, preloaded, loaded, attach_loaded;
	unsigned long i;
	u64 t0;

	guard(mutex)(&o->lock);
	if (o->state != KVM_CARETAKER_STATE_DETACHED) {
		r = CARETAKER_REFUSE(-EBUSY, "the orphan is not detached");
		goto out;
	}
	same = kvm == o->src;
	held = kvm == o->prepared;
	if (held && prepare) {
		r = CARETAKER_REFUSE(-EBUSY, "the adoption into this VM is prepared already");
		goto out;
	}
	if (!same && !held) {
		r = caretaker_check_not_held(kvm);
		if (r.err)
			goto out;
	}
	if (!o->adopter_exits) {
		o->adopter_exits = kcalloc(o->nr_vcpus, sizeof(*o->adopter_exits),
					   GFP_KERNEL_ACCOUNT);
		if (!o->adopter_exits) {
			r = CARETAKER_REFUSE(-ENOMEM, "out of memory");
			goto out;
		}
	}
	if (prepare) {
		r = caretaker_prepare_adopter(o, kvm, same);
		goto out;
	}

	preloaded = held && o->preloaded;
	r = caretaker_check_vcpus(o, kvm);
	if (!r.err && !same && !preloaded)
		r = caretaker_mem_check_adopter(o, kvm);
	if (!r.err)
		r = caretaker_arch_check_adopter(o, kvm, preloaded);
	if (r.err)
		goto out;

	r = caretaker_lock_adopter(o, kvm, !same && !held);
	if (r.err)
		goto out;
	/* An incoming orphan's state is tried before the runtime stops. */
	loaded = o->incoming && !preloaded;
	if (loaded)
		r = caretaker_arch_try_state(o, kvm);
	if (!r.err) {
		t0 = ktime_get_ns();
		r = caretaker_arch_attach(o, kvm, preloaded, &attach_loaded);
		loaded |= attach_loaded;
	}
	if (r.err && held)
		o->preloaded = false;
	/*
	 * vCPUs that took a copy of the guest but did not adopt it never run
	 * it: the VM is held for good, as one let go of is.
	 */
	if (r.err && loaded)
		WRITE_ONCE(kvm->caretaker_detached, true);
	if (!r.err && (same || held))
		WRITE_ONCE(kvm->caretaker_detached, false);
	if (!r.err && same)
		kvm_for_each_vcpu(i, vcpu, kvm)
			kvm_clear_request(KVM_REQ_CARETAKER_STOP, vcpu);
	if (!r.err)
		kvm_for_each_vcpu(i, vcpu, kvm)
			o->adopter_exits[i] = vcpu->stat.exits;
	caretaker_unlock_adopter(kvm);
	if (r.err)
		goto out;

	o->stall_ns = ktime_get_ns() - t0;
	o->state = KVM_CARETAKER_STATE_ATTACHED;
	if (same || held)
		caretaker_freeze_memslots(kvm, false);
	/*
	 * The runtime is halted: the CPUs and the memory go back once the
	 * adopter's vCPUs have run.  The prepared VM's reference, if this is
	 * it, is the adopter's now.
	 */
	if (held) {
		o->prepared = NULL;
		o->preloaded = false;
	} else {
		kvm_get_kvm(kvm);
		caretaker_unprepare(o);
	}
	o->adopter = kvm;
	/*
	 * A tick later: queued now, the work would wake a kworker on this
	 * CPU on the adopter's way back into KVM_RUN.
	 */
	schedule_delayed_work(&o->release_work, 1);
out:
	caretaker_log_refusal(kvm, prepare ? "ATTACH_PREPARE" : "ATTACH", r);
	return r.err;
}
