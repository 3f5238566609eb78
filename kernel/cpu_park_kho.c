// SPDX-License-Identifier: GPL-2.0-only
/*
 * Hand parked CPUs over a kexec: see <linux/kho/abi/cpu_park.h>.
 */
#define pr_fmt(fmt) "cpu_park: " fmt

#include <linux/cpu.h>
#include <linux/cpu_park_kho.h>
#include <linux/cpumask.h>
#include <linux/init.h>
#include <linux/io.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/cpu_park.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/smp.h>
#include <linux/timex.h>

static DEFINE_MUTEX(cpu_park_kho_lock);
/* The outgoing subtree, while at least one CPU is in it. */
static struct cpu_park_kho_ser *cpu_park_kho_out;

/* The time stamp counter as start_kernel() began, see cpu_park_kho_init(). */
u64 cpu_park_kho_start_tsc __initdata;

/* Handed over by the previous kernel and not claimed by an owner yet. */
static struct cpumask cpu_park_kho_incoming;
static DEFINE_SPINLOCK(cpu_park_kho_incoming_lock);
/* Of those, the ones cpu_park_kho_kexec() passes on to the next kernel. */
static struct cpumask cpu_park_kho_passed;

static int cpu_park_kho_find(const struct cpu_park_kho_ser *ser, u32 id)
{
	u32 i;

	for (i = 0; i < ser->nr; i++)
		if (ser->phys_id[i] == id)
			return i;
	return -1;
}

static int __cpu_park_kho_add(unsigned int cpu)
{
	struct cpu_park_kho_ser *ser;
	u32 id = cpu_physical_id(cpu);
	int err;

	lockdep_assert_held(&cpu_park_kho_lock);
	ser = cpu_park_kho_out;
	if (!ser) {
		ser = kho_alloc_preserve(sizeof(*ser));
		if (IS_ERR(ser))
			return PTR_ERR(ser);
		err = kho_add_subtree(CPU_PARK_KHO_NAME, ser, sizeof(*ser));
		if (err) {
			kho_unpreserve_free(ser);
			return err;
		}
		cpu_park_kho_out = ser;
	}
	if (cpu_park_kho_find(ser, id) >= 0)
		return -EEXIST;
	if (ser->nr == CPU_PARK_KHO_MAX)
		return -ENOSPC;
	ser->phys_id[ser->nr++] = id;
	return 0;
}

static void __cpu_park_kho_remove(unsigned int cpu)
{
	struct cpu_park_kho_ser *ser = cpu_park_kho_out;
	int i;

	lockdep_assert_held(&cpu_park_kho_lock);
	if (!ser)
		return;
	i = cpu_park_kho_find(ser, cpu_physical_id(cpu));
	if (i < 0)
		return;
	ser->phys_id[i] = ser->phys_id[--ser->nr];
	if (ser->nr)
		return;
	cpu_park_kho_out = NULL;
	kho_remove_subtree(ser);
	kho_unpreserve_free(ser);
}

/**
 * cpu_park_kho_add() - hand a parked CPU to the next kernel
 * @cpu: a CPU parked with cpu_park()
 *
 * At the next kexec (with KHO), the incoming kernel keeps @cpu parked
 * instead of bringing it up, so the code @cpu runs keeps running.  The
 * owner must preserve that code's memory itself.
 *
 * Context: process context, may sleep.
 * Return: 0, -EOPNOTSUPP without KHO, -EINVAL if @cpu is not parked,
 * -EEXIST if it is handed over already, -ENOSPC if the table is full,
 * -ENOMEM.
 */
int cpu_park_kho_add(unsigned int cpu)
{
	if (!kho_is_enabled())
		return -EOPNOTSUPP;
	if (cpu >= nr_cpu_ids || !cpu_is_parked(cpu))
		return -EINVAL;

	guard(mutex)(&cpu_park_kho_lock);
	return __cpu_park_kho_add(cpu);
}
EXPORT_SYMBOL_FOR_MODULES(cpu_park_kho_add, "caretaker");

/**
 * cpu_park_kho_remove() - stop handing a CPU to the next kernel
 * @cpu: a CPU given to cpu_park_kho_add(); others are ignored
 *
 * Context: process context, may sleep.
 */
void cpu_park_kho_remove(unsigned int cpu)
{
	if (cpu >= nr_cpu_ids)
		return;
	guard(mutex)(&cpu_park_kho_lock);
	__cpu_park_kho_remove(cpu);
}
EXPORT_SYMBOL_FOR_MODULES(cpu_park_kho_remove, "caretaker");

/* Take back what cpu_park_kho_kexec() passed on. */
static void cpu_park_kho_unpass(void)
{
	unsigned int cpu;

	lockdep_assert_held(&cpu_park_kho_lock);
	for_each_cpu(cpu, &cpu_park_kho_passed)
		__cpu_park_kho_remove(cpu);
	cpumask_clear(&cpu_park_kho_passed);
}

static bool cpu_park_kho_unclaimed(unsigned int cpu)
{
	guard(spinlock)(&cpu_park_kho_incoming_lock);
	return cpumask_test_cpu(cpu, &cpu_park_kho_incoming);
}

/**
 * cpu_park_kho_kexec() - check the parked CPUs before a kexec
 * @pass_on: the kexec passes on, untouched, what the previous kernel
 *	handed over (LUO could not use it in this boot)
 *
 * Every parked CPU must survive the kexec: its owner handed it over with
 * cpu_park_kho_add(), or the previous kernel handed it over, nobody here
 * claimed it, and @pass_on says its memory goes on too (then it is handed
 * over again, as it came).  Any other parked CPU would run on memory the
 * next kernel reuses until that kernel sends it INIT: the kexec is
 * refused.  Also stamps the time stamp counter into the handover data.
 *
 * Called from liveupdate_reboot(), before LUO serializes its sessions.
 *
 * Context: process context, may sleep; the kexec path.
 * Return: 0, -EBUSY if a parked CPU would not survive, -ENOMEM.
 */
int cpu_park_kho_kexec(bool pass_on)
{
	unsigned int cpu;
	int err;

	guard(mutex)(&cpu_park_kho_lock);
	cpumask_clear(&cpu_park_kho_passed);
	for_each_present_cpu(cpu) {
		bool incoming;

		if (!cpu_is_parked(cpu))
			continue;
		if (cpu_park_kho_out &&
		    cpu_park_kho_find(cpu_park_kho_out, cpu_physical_id(cpu)) >= 0)
			continue;
		incoming = cpu_park_kho_unclaimed(cpu);
		if (!incoming || !pass_on) {
			if (incoming)
				pr_err("kexec refused: CPU%u is parked, handed over by the previous kernel, and neither taken over nor passed on\n",
				       cpu);
			else
				pr_err("kexec refused: CPU%u is parked, and its owner did not hand it over\n",
				       cpu);
			err = -EBUSY;
			goto undo;
		}
		err = __cpu_park_kho_add(cpu);
		if (err)
			goto undo;
		cpumask_set_cpu(cpu, &cpu_park_kho_passed);
		pr_info("CPU%u is passed on to the next kernel, parked as it came\n", cpu);
	}
	if (cpu_park_kho_out)
		cpu_park_kho_out->out_tsc = get_cycles();
	return 0;
undo:
	cpu_park_kho_unpass();
	return err;
}

/**
 * cpu_park_kho_kexec_cancel() - undo cpu_park_kho_kexec(), the kexec failed
 *
 * Context: process context, may sleep.
 */
void cpu_park_kho_kexec_cancel(void)
{
	guard(mutex)(&cpu_park_kho_lock);
	cpu_park_kho_unpass();
}

static u64 cpu_park_kho_in_tsc;
static u64 cpu_park_kho_handover_tsc;

/**
 * cpu_park_kho_claim() - become the owner of a CPU the previous kernel handed over
 * @phys_id: the CPU's physical id (x86: local APIC id)
 *
 * Each CPU can be claimed once; it stays parked until its new owner
 * calls cpu_unpark().
 *
 * Context: any context.
 * Return: the CPU's number, or -ENOENT if no CPU with @phys_id was handed
 * over or it was claimed already.
 */
int cpu_park_kho_claim(u32 phys_id)
{
	unsigned int cpu;

	guard(spinlock)(&cpu_park_kho_incoming_lock);
	for_each_cpu(cpu, &cpu_park_kho_incoming) {
		if (cpu_physical_id(cpu) != phys_id)
			continue;
		if (!cpu_is_parked(cpu))
			return -ENOENT;
		cpumask_clear_cpu(cpu, &cpu_park_kho_incoming);
		return cpu;
	}
	return -ENOENT;
}
EXPORT_SYMBOL_FOR_MODULES(cpu_park_kho_claim, "caretaker");

/**
 * cpu_park_kho_stamps() - when the CPUs were handed over to this kernel
 * @out_tsc: the previous kernel's time stamp counter as it started the
 *	kexec (zero if unknown)
 * @in_tsc: this kernel's, when it found the parked CPUs
 *
 * Context: any context.
 * Return: true if the previous kernel handed parked CPUs over.
 */
bool cpu_park_kho_stamps(u64 *out_tsc, u64 *in_tsc)
{
	*out_tsc = cpu_park_kho_handover_tsc;
	*in_tsc = cpu_park_kho_in_tsc;
	return cpu_park_kho_in_tsc;
}
EXPORT_SYMBOL_FOR_MODULES(cpu_park_kho_stamps, "caretaker");

/* Before smp_init(): keep the handed-over CPUs from being brought up. */
static int __init cpu_park_kho_init(void)
{
	u64 tsc = cpu_park_kho_start_tsc ?: get_cycles();
	struct cpu_park_kho_ser *ser;
	unsigned int cpu, found;
	phys_addr_t phys;
	size_t size;
	u32 i;

	if (kho_retrieve_subtree(CPU_PARK_KHO_NAME, &phys, &size)) {
		if (is_kho_boot())
			pr_info("none handed over; this kernel started at TSC %llu\n", tsc);
		return 0;
	}
	if (size < sizeof(*ser)) {
		pr_err("handover data of %zu bytes is too short: parked CPUs are brought up\n",
		       size);
		return 0;
	}
	ser = phys_to_virt(phys);
	if (ser->nr > CPU_PARK_KHO_MAX || ser->flags) {
		pr_err("handover data not understood: parked CPUs are brought up\n");
		return 0;
	}
	cpu_park_kho_in_tsc = tsc;
	cpu_park_kho_handover_tsc = ser->out_tsc;
	for (i = 0; i < ser->nr; i++) {
		found = nr_cpu_ids;
		for_each_present_cpu(cpu)
			if (cpu_physical_id(cpu) == ser->phys_id[i])
				found = cpu;
		if (found == nr_cpu_ids || found == smp_processor_id()) {
			pr_err("parked CPU with physical id %#x is not a present secondary CPU here\n",
			       ser->phys_id[i]);
			continue;
		}
		cpu_park_at_boot(found);
		cpumask_set_cpu(found, &cpu_park_kho_incoming);
		pr_info("CPU%u (physical id %#x) was handed over parked: not brought up\n",
			found, ser->phys_id[i]);
	}
	pr_info("handed over at TSC %llu, this kernel started at TSC %llu\n",
		ser->out_tsc, tsc);
	kho_restore_free(ser);
	return 0;
}
early_initcall(cpu_park_kho_init);
