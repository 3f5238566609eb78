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
#include <linux/notifier.h>
#include <linux/reboot.h>
#include <linux/spinlock.h>
#include <linux/smp.h>
#include <linux/timex.h>

static DEFINE_MUTEX(cpu_park_kho_lock);
/* The outgoing subtree, while at least one CPU is in it. */
static struct cpu_park_kho_ser *cpu_park_kho_out;

static int cpu_park_kho_reboot(struct notifier_block *nb, unsigned long action,
			       void *unused)
{
	/* No lock: the other CPUs are about to stop, a torn stamp is harmless. */
	if (action == SYS_RESTART && READ_ONCE(cpu_park_kho_out))
		WRITE_ONCE(cpu_park_kho_out->out_tsc, get_cycles());
	return NOTIFY_DONE;
}

static struct notifier_block cpu_park_kho_nb = {
	.notifier_call = cpu_park_kho_reboot,
};

static int cpu_park_kho_find(const struct cpu_park_kho_ser *ser, u32 id)
{
	u32 i;

	for (i = 0; i < ser->nr; i++)
		if (ser->phys_id[i] == id)
			return i;
	return -1;
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
	struct cpu_park_kho_ser *ser;
	u32 id;
	int err;

	if (!kho_is_enabled())
		return -EOPNOTSUPP;
	if (cpu >= nr_cpu_ids || !cpu_is_parked(cpu))
		return -EINVAL;
	id = cpu_physical_id(cpu);

	guard(mutex)(&cpu_park_kho_lock);
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
		register_reboot_notifier(&cpu_park_kho_nb);
		WRITE_ONCE(cpu_park_kho_out, ser);
	}
	if (cpu_park_kho_find(ser, id) >= 0)
		return -EEXIST;
	if (ser->nr == CPU_PARK_KHO_MAX)
		return -ENOSPC;
	ser->phys_id[ser->nr++] = id;
	return 0;
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
	struct cpu_park_kho_ser *ser;
	int i;

	if (cpu >= nr_cpu_ids)
		return;
	guard(mutex)(&cpu_park_kho_lock);
	ser = cpu_park_kho_out;
	if (!ser)
		return;
	i = cpu_park_kho_find(ser, cpu_physical_id(cpu));
	if (i < 0)
		return;
	ser->phys_id[i] = ser->phys_id[--ser->nr];
	if (ser->nr)
		return;
	WRITE_ONCE(cpu_park_kho_out, NULL);
	unregister_reboot_notifier(&cpu_park_kho_nb);
	kho_remove_subtree(ser);
	kho_unpreserve_free(ser);
}
EXPORT_SYMBOL_FOR_MODULES(cpu_park_kho_remove, "caretaker");

static u64 cpu_park_kho_in_tsc;
static u64 cpu_park_kho_handover_tsc;
/* Handed over by the previous kernel and not claimed by an owner yet. */
static struct cpumask cpu_park_kho_incoming;
static DEFINE_SPINLOCK(cpu_park_kho_incoming_lock);

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
	struct cpu_park_kho_ser *ser;
	unsigned int cpu, found;
	phys_addr_t phys;
	size_t size;
	u64 tsc = get_cycles();
	u32 i;

	if (kho_retrieve_subtree(CPU_PARK_KHO_NAME, &phys, &size))
		return 0;
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
	pr_info("handed over at TSC %llu, found at TSC %llu\n", ser->out_tsc, tsc);
	kho_restore_free(ser);
	return 0;
}
early_initcall(cpu_park_kho_init);
