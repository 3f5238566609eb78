// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_CARETAKER_PREPARE and KVM_CARETAKER_ATTACH: the VM-fd side of the
 * caretaker uAPI.
 */
#include <linux/capability.h>
#include <linux/cpu.h>
#include <linux/file.h>
#include <linux/hugetlb.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "caretaker.h"

/**
 * DOC: PREPARE and ATTACH
 *
 * KVM_CARETAKER_PREPARE (VM fd) checks, in this order, and stops at the
 * first failure:
 *
 * 1. flags and reserved fields are zero (-EINVAL);
 * 2. the caller has CAP_SYS_ADMIN: PREPARE takes physical CPUs away from
 *    the host (-EPERM);
 * 3. the VM opted in with KVM_CAP_CARETAKER (-EPERM);
 * 4. the VM type: no confidential or protected VMs yet (-EOPNOTSUPP);
 * 5. the physical CPU set: one per vCPU, each in range, online, given
 *    once and hotpluggable (never the boot CPU) (-EINVAL); -EBUSY while a
 *    vCPU is being created;
 * 6. every memslot is backed by a shared mapping of a memfd (shmem, not
 *    hugetlb, which LUO cannot preserve) and none is a guest_memfd slot
 *    (-EOPNOTSUPP);
 * 7. the architecture's checks of the VM's and the vCPUs' state (see
 *    "what PREPARE refuses on x86").
 *
 * Each of these refusals is logged, ratelimited, with its reason.  An
 * argument that cannot be read gives -EFAULT and an allocation failure
 * -ENOMEM, without a log line.
 *
 * A request that passes every check freezes the VM's memslots, pins its
 * memory, builds the runtime and parks the CPUs in it ("caretaker fd"),
 * and returns a new caretaker fd.  If any of that fails, all of it is
 * undone and the VM goes on as before.
 *
 * KVM_CARETAKER_ATTACH (VM fd) checks flags (0 or
 * KVM_CARETAKER_ATTACH_PREPARE) and reserved fields (-EINVAL), the VM's
 * opt-in (-EPERM) and that caretaker_fd is a caretaker fd (-EBADF if it
 * is no fd, -EINVAL if it is another file).  Holding the caretaker fd is
 * the permission to adopt: no capability is needed.  Then the adopting
 * VM must match the orphan (see "adopting an orphan" in caretaker.rst):
 * -EINVAL on any difference, and the orphan keeps running.  -EBUSY if the
 * orphan is not detached, if the VM's vCPUs are held by the caretaker
 * (another orphan's source, a VM prepared for another adoption, or one
 * let go of), and for an ATTACH_PREPARE on a VM already prepared.
 */

static struct caretaker_refusal caretaker_check_opt_in(struct kvm *kvm)
{
	if (!READ_ONCE(kvm->caretaker_enabled))
		return CARETAKER_REFUSE(-EPERM, "the VM did not opt in (KVM_CAP_CARETAKER)");
	return CARETAKER_OK;
}

static struct caretaker_refusal caretaker_check_vma(struct vm_area_struct *vma)
{
	if (is_vm_hugetlb_page(vma))
		return CARETAKER_REFUSE(-EOPNOTSUPP,
					"a memslot is backed by hugetlb memory, which live update cannot preserve");
	/*
	 * The rule of LUO's memfd handler (memfd_luo_can_preserve()): an
	 * unlinked shmem file, mapped shared so that the orphan and a new
	 * VMM see the same pages.
	 */
	if (!vma->vm_file || !shmem_file(vma->vm_file) ||
	    file_inode(vma->vm_file)->i_nlink || !(vma->vm_flags & VM_SHARED))
		return CARETAKER_REFUSE(-EOPNOTSUPP,
					"a memslot is not backed by a shared mapping of a memfd");
	return CARETAKER_OK;
}

static struct caretaker_refusal
caretaker_check_slot(struct kvm *kvm, const struct kvm_memory_slot *slot)
{
	unsigned long start = slot->userspace_addr;
	unsigned long end = start + (slot->npages << PAGE_SHIFT);
	struct caretaker_refusal r = CARETAKER_OK;
	struct vm_area_struct *vma;
	unsigned long addr = start;

	if (kvm_slot_has_gmem(slot))
		return CARETAKER_REFUSE(-EOPNOTSUPP, "a memslot uses guest_memfd");

	/* PREPARE runs in the VMM, whose mm is the VM's (kvm_vm_ioctl()). */
	mmap_read_lock(kvm->mm);
	while (addr < end) {
		vma = vma_lookup(kvm->mm, addr);
		if (!vma) {
			r = CARETAKER_REFUSE(-EOPNOTSUPP, "a memslot is not fully mapped");
			break;
		}
		r = caretaker_check_vma(vma);
		if (r.err)
			break;
		addr = vma->vm_end;
	}
	mmap_read_unlock(kvm->mm);
	return r;
}

static struct caretaker_refusal caretaker_check_memslots(struct kvm *kvm)
{
	struct caretaker_refusal r = CARETAKER_OK;
	struct kvm_memslots *slots;
	struct kvm_memory_slot *slot;
	int as_id, bkt;

	guard(mutex)(&kvm->slots_lock);
	for (as_id = 0; as_id < kvm_arch_nr_memslot_as_ids(kvm); as_id++) {
		slots = __kvm_memslots(kvm, as_id);
		kvm_for_each_memslot(slot, bkt, slots) {
			if (!slot->npages || (slot->flags & KVM_MEMSLOT_INVALID))
				continue;
			r = caretaker_check_slot(kvm, slot);
			if (r.err)
				return r;
		}
	}
	return r;
}

static struct caretaker_refusal caretaker_check_prepare_cpus(struct kvm *kvm,
							     const u32 *cpus,
							     u32 nr_cpus)
{
	cpumask_var_t seen __free(free_cpumask_var) = CPUMASK_VAR_NULL;
	cpumask_var_t hot __free(free_cpumask_var) = CPUMASK_VAR_NULL;
	u32 nr_vcpus;
	int cpu;

	if (!zalloc_cpumask_var(&seen, GFP_KERNEL) ||
	    !zalloc_cpumask_var(&hot, GFP_KERNEL))
		return CARETAKER_REFUSE(-ENOMEM, "out of memory");

	scoped_guard(mutex, &kvm->lock) {
		if (kvm->created_vcpus != atomic_read(&kvm->online_vcpus))
			return CARETAKER_REFUSE(-EBUSY, "a vCPU is being created");
		nr_vcpus = kvm->created_vcpus;
	}

	guard(cpus_read_lock)();
	for_each_online_cpu(cpu)
		if (cpu_is_hotpluggable(cpu))
			cpumask_set_cpu(cpu, hot);
	return caretaker_check_cpus(cpus, nr_cpus, nr_vcpus, nr_cpu_ids,
				    cpu_online_mask, hot, seen);
}

/**
 * caretaker_prepare() - KVM_CARETAKER_PREPARE
 * @kvm: the VM whose fd the ioctl was issued on
 * @argp: user pointer to struct kvm_caretaker_prepare
 *
 * Context: process context, the VM's VMM; may sleep.
 * Return: the caretaker fd, or a negative errno; see "PREPARE and ATTACH".
 */
long caretaker_prepare(struct kvm *kvm, void __user *argp)
{
	u32 *cpus __free(kfree) = NULL;
	struct kvm_caretaker_prepare p;
	struct caretaker_refusal r;

	if (copy_from_user(&p, argp, sizeof(p)))
		return -EFAULT;

	r = caretaker_check_args(p.flags, p.reserved, sizeof(p.reserved));
	if (r.err)
		goto out;
	if (!capable(CAP_SYS_ADMIN)) {
		r = CARETAKER_REFUSE(-EPERM,
				     "CAP_SYS_ADMIN is required: PREPARE takes physical CPUs from the host");
		goto out;
	}
	r = caretaker_check_opt_in(kvm);
	if (r.err)
		goto out;
	r = caretaker_arch_check_vm_type(kvm);
	if (r.err)
		goto out;
	if (p.nr_cpus > KVM_MAX_VCPUS) {
		r = CARETAKER_REFUSE(-EINVAL, "more physical CPUs than vCPUs");
		goto out;
	}

	cpus = memdup_array_user(u64_to_user_ptr(p.cpus), p.nr_cpus, sizeof(*cpus));
	if (IS_ERR(cpus)) {
		long err = PTR_ERR(cpus);

		cpus = NULL;
		return err;
	}

	r = caretaker_check_prepare_cpus(kvm, cpus, p.nr_cpus);
	if (!r.err)
		r = caretaker_check_memslots(kvm);
	if (!r.err)
		r = caretaker_arch_check_vm(kvm);
	if (!r.err)
		return caretaker_orphan_create(kvm, cpus, p.nr_cpus);
out:
	caretaker_log_refusal(kvm, "PREPARE", r);
	return r.err;
}

static struct caretaker_refusal caretaker_adopt(struct kvm *kvm, int fd, bool prepare)
{
	CLASS(fd, f)(fd);

	if (fd_empty(f))
		return CARETAKER_REFUSE(-EBADF, "caretaker_fd is not an open file");
	if (!caretaker_file_is_orphan(fd_file(f)))
		return CARETAKER_REFUSE(-EINVAL, "caretaker_fd is not a caretaker fd");
	return (struct caretaker_refusal){
		caretaker_orphan_adopt(kvm, fd_file(f), prepare), NULL };
}

/**
 * caretaker_attach() - KVM_CARETAKER_ATTACH
 * @kvm: the VM whose fd the ioctl was issued on: the adopter
 * @argp: user pointer to struct kvm_caretaker_attach
 *
 * Context: process context, the adopting VM's VMM; may sleep.
 * Return: a negative errno; see "PREPARE and ATTACH".
 */
long caretaker_attach(struct kvm *kvm, void __user *argp)
{
	struct kvm_caretaker_attach a;
	struct caretaker_refusal r;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;

	r = caretaker_check_args(a.flags & ~KVM_CARETAKER_ATTACH_PREPARE, a.reserved,
				 sizeof(a.reserved));
	if (!r.err)
		r = caretaker_check_opt_in(kvm);
	if (!r.err)
		r = caretaker_adopt(kvm, a.caretaker_fd, a.flags & KVM_CARETAKER_ATTACH_PREPARE);
	caretaker_log_refusal(kvm, "ATTACH", r);
	return r.err;
}
