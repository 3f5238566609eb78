// SPDX-License-Identifier: GPL-2.0-only
/*
 * x86 checks of VM features the caretaker cannot carry.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kvm_host.h>
#include <asm/perf_event.h>

#include "x86.h"
#include "smm.h"
#include "caretaker.h"
#include "ct_x86.h"
#include "runtime.h"

/**
 * DOC: what PREPARE refuses on x86
 *
 * The runtime carries a plain AMD SVM guest: its registers, its local
 * APIC, its TSC and its memory.  A VM that needs more than that is refused
 * at PREPARE, and keeps running under KVM.  Permanent properties of the VM
 * give -EOPNOTSUPP; states the guest or the VMM can leave give -EBUSY, and
 * PREPARE may be retried.
 *
 * -EOPNOTSUPP: a confidential or protected VM type (SEV, SEV-ES, SEV-SNP,
 * TDX, KVM_X86_SW_PROTECTED_VM): its state cannot be read, and taking it
 * over needs the firmware's or the TDX module's help (see caretaker.rst);
 * APICv/AVIC active; a VFIO device attached (device assignment); a TSC
 * scaling ratio other than the default; a dirty ring.  These are checked
 * first, so -EBUSY means that a retry can succeed.
 *
 * -EBUSY: nested virtualization in use (EFER.SVME set in a vCPU); guest
 * debugging (KVM_SET_GUEST_DEBUG); dirty logging on a memslot; a vCPU in
 * SMM; an exit that userspace has not completed yet; guest PMU counters
 * enabled; CET enabled by the guest.
 *
 * The vCPU state read here can change until the vCPUs are stopped; DETACH
 * checks it again with every vCPU's mutex held.
 */

static bool caretaker_vm_has_vfio(struct kvm *kvm)
{
	struct kvm_device *dev;

	lockdep_assert_held(&kvm->lock);
	list_for_each_entry(dev, &kvm->devices, vm_node)
		if (!strcmp(dev->ops->name, "kvm-vfio"))
			return true;
	return atomic_read(&kvm->arch.noncoherent_dma_count) ||
	       READ_ONCE(kvm->arch.nr_possible_bypass_irqs);
}

static bool caretaker_pmu_in_use(struct kvm_vcpu *vcpu)
{
	struct kvm_pmu *pmu = &vcpu->arch.pmu;
	unsigned int i;

	if (!pmu->version && !pmu->nr_arch_gp_counters)
		return false;
	if (pmu->fixed_ctr_ctrl)
		return true;
	for (i = 0; i < pmu->nr_arch_gp_counters; i++)
		if (pmu->gp_counters[i].eventsel & ARCH_PERFMON_EVENTSEL_ENABLE)
			return true;
	return false;
}

/*
 * The vCPUs may be running: these reads are racy by design and only
 * decide whether PREPARE (or DETACH) is worth doing.  DETACH checks each
 * vCPU again once it is stopped, its mutex held.
 */
static struct caretaker_refusal caretaker_check_vcpu_fixed(struct kvm_vcpu *vcpu)
{
	/* Racy, see above; KVM_SET_TSC_KHZ is rare. */
	u64 ratio = data_race(vcpu->arch.tsc_scaling_ratio);

	if (ratio != kvm_caps.default_tsc_scaling_ratio)
		return CARETAKER_REFUSE(-EOPNOTSUPP, "TSC scaling ratio is not the default");
	return CARETAKER_OK;
}

struct caretaker_refusal caretaker_x86_check_vcpu_state(struct kvm_vcpu *vcpu)
{
	/* Racy snapshots of a possibly running vCPU, see above. */
	u64 efer = data_race(vcpu->arch.efer);
	/* On SVM no CR4 bit is guest-owned: arch.cr4 is current. */
	unsigned long cr4 = data_race(vcpu->arch.cr4);
	/* The counters' enable bits, racy likewise. */
	bool pmu = data_race(caretaker_pmu_in_use(vcpu));

	if ((efer & EFER_SVME) || is_guest_mode(vcpu))
		return CARETAKER_REFUSE(-EBUSY, "nested virtualization in use (EFER.SVME)");
	if (READ_ONCE(vcpu->guest_debug))
		return CARETAKER_REFUSE(-EBUSY, "guest debugging enabled (KVM_SET_GUEST_DEBUG)");
	if (is_smm(vcpu))
		return CARETAKER_REFUSE(-EBUSY, "a vCPU is in SMM");
	if (READ_ONCE(vcpu->arch.complete_userspace_io))
		return CARETAKER_REFUSE(-EBUSY, "an exit is waiting for userspace to complete it");
	if (pmu)
		return CARETAKER_REFUSE(-EBUSY, "guest PMU counters enabled");
	if (cr4 & X86_CR4_CET)
		return CARETAKER_REFUSE(-EBUSY, "guest CET enabled");
	/* Supervisor XSAVE state is not in KVM_GET_XSAVE2's image. */
	if (data_race(vcpu->arch.ia32_xss))
		return CARETAKER_REFUSE(-EBUSY, "supervisor XSAVE state in use (XSS)");
	return CARETAKER_OK;
}

/**
 * caretaker_arch_check_vm_type() - refuse VM types the runtime cannot carry
 * @kvm: the VM
 *
 * Context: any context.
 * Return: CARETAKER_OK, or -EOPNOTSUPP for confidential and protected VMs.
 */
struct caretaker_refusal caretaker_arch_check_vm_type(struct kvm *kvm)
{
	if (kvm->arch.vm_type != KVM_X86_DEFAULT_VM || kvm->arch.has_protected_state)
		return CARETAKER_REFUSE(-EOPNOTSUPP,
					"confidential or protected VM types are not supported yet");
	return CARETAKER_OK;
}

/**
 * caretaker_arch_init() - check that the host can run the caretaker runtime
 *
 * The runtime is an SVM hypervisor loop: on any other host the module
 * refuses to load rather than validate VMs it could never carry.
 *
 * Context: module init.
 * Return: 0, or -ENODEV if the host does not run AMD SVM.
 */
int caretaker_arch_init(void)
{
	if (!cpu_feature_enabled(X86_FEATURE_SVM) ||
	    (boot_cpu_data.x86_vendor != X86_VENDOR_AMD &&
	     boot_cpu_data.x86_vendor != X86_VENDOR_HYGON)) {
		pr_err("the runtime needs AMD SVM, which this host lacks\n");
		return -ENODEV;
	}
	return 0;
}

/**
 * caretaker_arch_exit() - free what the architecture's part kept between orphans
 *
 * Context: module exit: no orphan exists.
 */
void caretaker_arch_exit(void)
{
	ct_runtime_image_cache_free();
}

/**
 * caretaker_arch_check_vm() - refuse VM features the runtime cannot carry
 * @kvm: the VM
 *
 * Context: process context, takes kvm->lock.
 * Return: CARETAKER_OK, or the first refusal found.
 */
struct caretaker_refusal caretaker_arch_check_vm(struct kvm *kvm)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	struct caretaker_refusal r;

	/* Permanent properties first: -EBUSY must mean a retry can work. */
	if (kvm_apicv_activated(kvm))
		return CARETAKER_REFUSE(-EOPNOTSUPP, "APICv/AVIC is active");
	if (kvm->dirty_ring_size)
		return CARETAKER_REFUSE(-EOPNOTSUPP, "the VM uses a dirty ring");

	guard(mutex)(&kvm->lock);
	if (caretaker_vm_has_vfio(kvm))
		return CARETAKER_REFUSE(-EOPNOTSUPP, "a VFIO device is attached");
	kvm_for_each_vcpu(i, vcpu, kvm) {
		r = caretaker_check_vcpu_fixed(vcpu);
		if (r.err)
			return r;
	}

	if (atomic_read(&kvm->nr_memslots_dirty_logging))
		return CARETAKER_REFUSE(-EBUSY, "dirty logging is enabled on a memslot");
	kvm_for_each_vcpu(i, vcpu, kvm) {
		r = caretaker_x86_check_vcpu_state(vcpu);
		if (r.err)
			return r;
	}
	return CARETAKER_OK;
}
