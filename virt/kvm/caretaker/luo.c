// SPDX-License-Identifier: GPL-2.0-only
/*
 * The caretaker's Live Update Orchestrator file handler.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu_park_kho.h>
#include <linux/kexec_handover.h>
#include <linux/liveupdate.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/timex.h>
#include <linux/vmalloc.h>

#include "caretaker.h"

/**
 * DOC: LUO file handler
 *
 * caretaker.ko registers a LUO file handler with the compatible string
 * KVM_CARETAKER_LUO_COMPATIBLE when it loads, if the kernel booted with
 * live update enabled, and unregisters it when it unloads.  Without live
 * update the module still loads: VMM restarts need no LUO, and
 * KVM_CHECK_EXTENSION(KVM_CAP_CARETAKER) reports KVM_CARETAKER_FEAT_LUO
 * only when the handler is registered.
 *
 * Only caretaker fds can be preserved (.can_preserve), and only while
 * detached: .preserve() serializes the orphan into KHO as
 * <linux/kho/abi/kvm_caretaker.h> lays it out, preserves in place every
 * page its runtime runs on, and hands its CPUs to the next kernel
 * (cpu_park_kho_add()).  The guest keeps running; the orphan's state
 * becomes KVM_CARETAKER_STATE_PRESERVED, in which ATTACH fails with
 * -EBUSY (the serialized pages must not be freed under the session).
 *
 * .freeze(), as the kexec starts, checks that every guest page the
 * nested page table maps is preserved (by LUO's memfd handler, the
 * memfds in a session) and fails the reboot with -EBUSY otherwise;
 * .unfreeze() has nothing to undo.  .unpreserve() (the session closed, or
 * the file removed, before a kexec) undoes .preserve(): the orphan is
 * detached and running exactly as before.
 *
 * In the next kernel, which must have loaded caretaker.ko before the
 * first open of /dev/liveupdate, .can_retrieve() says, before LUO uses
 * any session, whether this module understands the orphan (format
 * version, feature mask, control block version); if not, LUO uses none
 * of the sessions and passes them all on at the next kexec, the guest
 * running meanwhile.  .retrieve() rebuilds the orphan around the runtime
 * that still runs the guest (its pages restored from KHO, its CPUs those
 * the kernel left parked at boot, every guest page held by the orphan)
 * and returns a new caretaker fd, DETACHED: ATTACH from a new VMM adopts
 * it as usual, checking that the adopter's memslots map the very pages
 * the guest runs on.  A retrieve that fails leaves the guest running.
 * .can_finish() holds the session until the caretaker fd is retrieved:
 * before that nothing holds the guest's pages, and finishing frees memfd
 * pages nobody retrieved.  An orphan from the previous kernel must be
 * adopted before it can be preserved again (-EOPNOTSUPP).
 */

static bool caretaker_luo_registered;

/**
 * caretaker_ser_add() - append to the variable part of a serialized orphan
 * @b: the buffer
 * @src: what to copy, or NULL to leave zeroes (to be filled through
 *	caretaker_ser_ptr())
 * @len: its size
 *
 * Context: any context.
 * Return: its offset, 8-byte aligned.
 */
u64 caretaker_ser_add(struct caretaker_ser_buf *b, const void *src, size_t len)
{
	u64 off = ALIGN(b->size, 8);

	if (b->data && src && len)
		memcpy(b->data + off, src, len);
	b->size = off + len;
	return off;
}

/**
 * caretaker_ser_ptr() - where an offset of the variable part is
 * @b: the buffer
 * @off: an offset caretaker_ser_add() returned
 *
 * Context: any context.
 * Return: its address, or NULL while the buffer is only being sized.
 */
void *caretaker_ser_ptr(struct caretaker_ser_buf *b, u64 off)
{
	return b->data ? b->data + off : NULL;
}

static bool caretaker_luo_can_preserve(struct liveupdate_file_handler *handler,
				       struct file *file)
{
	return caretaker_file_is_orphan(file);
}

/**
 * struct caretaker_luo - an orphan preserved in a LUO session
 * @ser: the root, preserved (kho_alloc_preserve())
 * @data: its variable part, preserved (kho_preserve_vmalloc())
 * @nr_preserved: ranges of @data whose pages are preserved
 * @nr_handed: CPUs handed to the next kernel
 */
struct caretaker_luo {
	struct kvm_caretaker_ser *ser;
	void *data;
	u32 nr_preserved;
	u32 nr_handed;
};

static void caretaker_luo_serialize(struct caretaker_orphan *o, struct kvm_caretaker_ser *ser,
				    struct caretaker_ser_buf *b)
{
	struct kvm_caretaker_slot e;
	u64 *pfns;
	unsigned long p;
	u32 i;

	ser->version = KVM_CARETAKER_KHO_VERSION;
	ser->nr_slots = o->nr_slots;
	ser->slots_off = caretaker_ser_add(b, NULL, o->nr_slots * sizeof(e));
	for (i = 0; i < o->nr_slots; i++) {
		struct caretaker_mem_slot *ms = &o->slots[i];

		e = (struct kvm_caretaker_slot){
			.id = ms->id, .flags = ms->flags, .base_gfn = ms->base_gfn,
			.npages = ms->npages, .offset = ms->offset,
		};
		e.pfns_off = caretaker_ser_add(b, NULL, ms->npages * sizeof(u64));
		pfns = caretaker_ser_ptr(b, e.pfns_off);
		for (p = 0; pfns && p < ms->npages; p++)
			pfns[p] = ms->pfns[p];
		if (b->data)
			memcpy(caretaker_ser_ptr(b, ser->slots_off + i * sizeof(e)), &e, sizeof(e));
	}
	caretaker_arch_serialize(o, ser, b);
}

static const struct kvm_caretaker_range *caretaker_luo_ranges(struct caretaker_luo *l)
{
	return l->data + l->ser->ranges_off;
}

static void caretaker_luo_free(struct caretaker_orphan *o, struct caretaker_luo *l)
{
	const struct kvm_caretaker_range *r = caretaker_luo_ranges(l);
	u32 i;

	for (i = 0; i < l->nr_handed; i++)
		cpu_park_kho_remove(o->cpus[i]);
	for (i = 0; i < l->nr_preserved; i++)
		kho_unpreserve_pages(pfn_to_page(PHYS_PFN(r[i].phys)), r[i].nr_pages);
	if (l->ser->data_size)
		kho_unpreserve_vmalloc(&l->ser->data);
	vfree(l->data);
	kho_unpreserve_free(l->ser);
	kfree(l);
}

static int caretaker_luo_preserve(struct liveupdate_file_op_args *args)
{
	struct caretaker_orphan *o = args->file->private_data;
	struct caretaker_ser_buf b = {};
	const struct kvm_caretaker_range *r;
	struct caretaker_luo *l;
	int err;
	u32 i;

	guard(mutex)(&o->lock);
	if (o->state != KVM_CARETAKER_STATE_DETACHED) {
		pr_info_ratelimited("only a detached orphan can be preserved (state %u)\n",
				    o->state);
		return -EBUSY;
	}
	if (o->incoming) {
		pr_info_ratelimited("an orphan from the previous kernel must be adopted before another kexec\n");
		return -EOPNOTSUPP;
	}
	l = kzalloc_obj(*l, GFP_KERNEL_ACCOUNT);
	if (!l)
		return -ENOMEM;
	l->ser = kho_alloc_preserve(sizeof(*l->ser));
	if (IS_ERR(l->ser)) {
		err = PTR_ERR(l->ser);
		kfree(l);
		return err;
	}

	/* Size, then fill. */
	caretaker_luo_serialize(o, l->ser, &b);
	l->data = vzalloc(b.size);
	err = -ENOMEM;
	if (!l->data)
		goto err;
	b = (struct caretaker_ser_buf){ .data = l->data };
	memset(l->ser, 0, sizeof(*l->ser));
	caretaker_luo_serialize(o, l->ser, &b);
	l->ser->data_size = b.size;

	r = caretaker_luo_ranges(l);
	for (; l->nr_preserved < l->ser->nr_ranges; l->nr_preserved++) {
		i = l->nr_preserved;
		err = kho_preserve_pages(pfn_to_page(PHYS_PFN(r[i].phys)), r[i].nr_pages);
		if (err)
			goto err;
	}
	err = kho_preserve_vmalloc(l->data, &l->ser->data);
	if (err) {
		l->ser->data_size = 0;
		goto err;
	}
	for (; l->nr_handed < o->nr_vcpus; l->nr_handed++) {
		err = cpu_park_kho_add(o->cpus[l->nr_handed]);
		if (err)
			goto err;
	}

	o->state = KVM_CARETAKER_STATE_PRESERVED;
	args->serialized_data = virt_to_phys(l->ser);
	args->private_data = l;
	return 0;
err:
	pr_info_ratelimited("an orphan could not be preserved: %d\n", err);
	caretaker_luo_free(o, l);
	return err;
}

static void caretaker_luo_unpreserve(struct liveupdate_file_op_args *args)
{
	struct caretaker_orphan *o = args->file->private_data;

	guard(mutex)(&o->lock);
	caretaker_luo_free(o, args->private_data);
	args->private_data = NULL;
	o->state = KVM_CARETAKER_STATE_DETACHED;
}

static int caretaker_luo_freeze(struct liveupdate_file_op_args *args)
{
	struct caretaker_orphan *o = args->file->private_data;
	struct caretaker_luo *l = args->private_data;
	unsigned int f;
	u32 i;

	guard(mutex)(&o->lock);
	for (i = 0; i < o->nr_slots; i++) {
		struct caretaker_mem_slot *ms = &o->slots[i];

		for (f = 0; f < ms->nr_folios; f++) {
			if (kho_folio_is_preserved(ms->folios[f]))
				continue;
			pr_warn_ratelimited("memslot %u's memory is not preserved: preserve its memfd in a LUO session\n",
					    ms->id);
			return -EBUSY;
		}
	}
	l->ser->freeze_tsc = get_cycles();
	return 0;
}

#if IS_ENABLED(CONFIG_KVM_CARETAKER_TEST_HOOKS)
static bool test_refuse_kho;
module_param(test_refuse_kho, bool, 0444);
MODULE_PARM_DESC(test_refuse_kho,
		 "Test only: take no orphan from the previous kernel, as a kernel that does not understand its format");
#else
#define test_refuse_kho false
#endif

static bool caretaker_luo_understood(const struct kvm_caretaker_ser *ser)
{
	if (ser->version != KVM_CARETAKER_KHO_VERSION ||
	    (ser->features & ~KVM_CARETAKER_KHO_FEATURES) ||
	    !caretaker_arch_can_take(ser) || test_refuse_kho) {
		pr_err_ratelimited("orphan of format %u, features %#llx, runtime ABI %u: not understood%s, it runs on\n",
				   ser->version, ser->features, ser->rt_abi,
				   test_refuse_kho ? " (test_refuse_kho)" : "");
		return false;
	}
	return true;
}

/*
 * Before LUO uses any incoming session: if this module cannot take the
 * orphan, LUO leaves every session as it came and passes them on at the
 * next kexec, the guest running meanwhile, so that a kernel that
 * understands it may adopt it.
 */
static bool caretaker_luo_can_retrieve(struct liveupdate_file_handler *handler,
				       u64 serialized_data)
{
	if (!PAGE_ALIGNED(serialized_data) || !pfn_valid(PHYS_PFN(serialized_data))) {
		pr_err_ratelimited("the orphan's serialized data is not where it says: it runs on\n");
		return false;
	}
	return caretaker_luo_understood(phys_to_virt(serialized_data));
}

static int caretaker_luo_retrieve(struct liveupdate_file_op_args *args)
{
	struct kvm_caretaker_ser *ser = phys_to_virt(args->serialized_data);
	struct file *file;
	void *data;

	if (!caretaker_luo_understood(ser))
		return -EOPNOTSUPP;
	if (!ser->data_size || ser->data_size > (u64)ser->data.total_pages << PAGE_SHIFT) {
		pr_err_ratelimited("the orphan's serialized data is malformed: it runs on\n");
		return -EINVAL;
	}
	data = kho_restore_vmalloc(&ser->data);
	if (!data) {
		pr_err_ratelimited("the orphan's serialized data could not be restored: it runs on\n");
		return -ENOMEM;
	}
	file = caretaker_orphan_incoming(ser, data);
	vfree(data);
	if (IS_ERR(file))
		return PTR_ERR(file);
	kho_restore_free(ser);
	args->file = file;
	return 0;
}

/*
 * Not before the caretaker fd is retrieved: until then nothing holds the
 * guest's memory, and LUO's memfd handler frees the folios of a memfd
 * nobody retrieved at finish.  Once retrieved, the orphan holds every
 * page its guest runs on itself (caretaker_mem_hold()).
 */
static bool caretaker_luo_can_finish(struct liveupdate_file_op_args *args)
{
	return args->retrieve_status > 0;
}

static void caretaker_luo_finish(struct liveupdate_file_op_args *args)
{
}

static const struct liveupdate_file_ops caretaker_luo_ops = {
	.can_preserve = caretaker_luo_can_preserve,
	.preserve = caretaker_luo_preserve,
	.unpreserve = caretaker_luo_unpreserve,
	.freeze = caretaker_luo_freeze,
	.can_retrieve = caretaker_luo_can_retrieve,
	.retrieve = caretaker_luo_retrieve,
	.can_finish = caretaker_luo_can_finish,
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
