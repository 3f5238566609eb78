// SPDX-License-Identifier: GPL-2.0-only
/*
 * The caretaker uAPI: the opt-in, the feature mask, and every validation
 * path of KVM_CARETAKER_PREPARE and KVM_CARETAKER_ATTACH, each with its
 * exact errno and the reason the kernel logs for it.
 *
 * Several refusals share an errno, so each case also checks the reason
 * caretaker.ko wrote to the kernel log.  Every case starts from a VM that
 * qualifies and breaks exactly one thing; the control case checks that
 * such a VM gets through every check: PREPARE parks its CPU, and closing
 * the caretaker fd undoes it.  Detaching and adopting are
 * caretaker_orphan_test's.
 *
 * Each case runs in a child process, so a failed assertion fails that
 * case only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/kvm_caretaker.h>
#include <linux/memfd.h>

#include "kvm_util.h"
#include "processor.h"

#include "caretaker_util.h"
#include "ucall_common.h"

#define CT_CPU 1	/* a hotpluggable CPU of the test host */

/* ---- calls ---- */

static int prepare(struct kvm_vm *vm, const __u32 *cpus, __u32 nr)
{
	struct kvm_caretaker_prepare p = {
		.nr_cpus = nr,
		.cpus = (__u64)(unsigned long)cpus,
	};

	return __vm_ioctl(vm, KVM_CARETAKER_PREPARE, &p);
}

/*
 * Skip the case (in its child) when the test host lacks what it needs.
 * Not TEST_REQUIRE(): ksft_exit_skip() would print a TAP line of its own
 * inside the parent's plan.
 */
static void ct_require(bool cond, const char *what)
{
	if (cond)
		return;
	printf("# skip: %s\n", what);
	exit(KSFT_SKIP);
}

/* ---- VMs ---- */

static void guest_idle(void)
{
	for (;;)
		GUEST_SYNC(0);
}

/* A VM that opted in before its first vCPU. */
static struct kvm_vm *ct_vm_create(struct kvm_vcpu **vcpu, void *guest_code,
				   unsigned long type)
{
	struct vm_shape shape = VM_SHAPE_DEFAULT;
	struct kvm_vm *vm;

	shape.type = type;
	vm = __vm_create(shape, 1, 0);
	vm_enable_cap(vm, KVM_CAP_CARETAKER, 0);
	*vcpu = vm_vcpu_add(vm, 0, guest_code ? guest_code : guest_idle);
	return vm;
}

/*
 * The selftest library backs its memory with anonymous private mappings.
 * Move every memslot onto a shared memfd mapping at the same address, as
 * a VMM that wants to be carried must: the memslots stay as they are.
 */
static void ct_vm_back_with_memfd(struct kvm_vm *vm)
{
	struct userspace_mem_region *region;
	int bkt;

	hash_for_each(vm->regions.slot_hash, bkt, region, slot_node) {
		if (region->backing_src_type != VM_MEM_SRC_ANONYMOUS &&
		    region->backing_src_type != VM_MEM_SRC_ANONYMOUS_THP)
			continue;
		close(ct_region_to_memfd(region));
	}
}

/* A VM that qualifies for PREPARE: opted in, memfd-backed, one vCPU. */
static struct kvm_vm *ct_good_vm(struct kvm_vcpu **vcpu, void *guest_code)
{
	struct kvm_vm *vm = ct_vm_create(vcpu, guest_code, VM_TYPE_DEFAULT);

	ct_vm_back_with_memfd(vm);
	return vm;
}

static const __u32 one_cpu[] = { CT_CPU };

static bool cpu_online(int cpu)
{
	char path[64], c = 0;
	int fd;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	fd = open(path, O_RDONLY);
	TEST_ASSERT(fd >= 0, "open %s", path);
	TEST_ASSERT(read(fd, &c, 1) == 1, "read %s", path);
	close(fd);
	return c == '1';
}

/*
 * A VM that qualifies gets a caretaker fd, its CPUs parked (offline);
 * closing the fd undoes PREPARE and brings them back.
 */
static void __expect_prepared(int fd, const __u32 *cpus, __u32 nr, const char *call)
{
	__u32 i;

	TEST_ASSERT(fd >= 0, "%s: expected a caretaker fd, got errno %d (%s)",
		    call, errno, strerror(errno));
	for (i = 0; i < nr; i++)
		TEST_ASSERT(!cpu_online(cpus[i]), "%s: CPU %u online while parked",
			    call, cpus[i]);
	close(fd);
	for (i = 0; i < nr; i++)
		TEST_ASSERT(cpu_online(cpus[i]), "%s: CPU %u not back online",
			    call, cpus[i]);
}

#define EXPECT_PREPARED(call, cpus, nr) __expect_prepared(call, cpus, nr, #call)

/* ---- cases ---- */

static void test_feature_mask(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int f;

	TEST_ASSERT(!system("modprobe -r caretaker"), "rmmod caretaker");
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_CARETAKER), 0);
	/* The opt-in works without the module; the ioctls do not exist. */
	vm = ct_vm_create(&vcpu, NULL, VM_TYPE_DEFAULT);
	TEST_ASSERT(prepare(vm, one_cpu, 1) == -1 && errno == ENOTTY,
		    "PREPARE without the module: errno %d", errno);
	kvm_vm_free(vm);

	TEST_ASSERT(!system("modprobe caretaker"), "modprobe caretaker");
	f = kvm_check_cap(KVM_CAP_CARETAKER);
	TEST_ASSERT(f & KVM_CARETAKER_FEAT_IOCTLS, "features %#x", f);
	TEST_ASSERT(f & KVM_CARETAKER_FEAT_VMM_RESTART, "features %#x", f);
	TEST_ASSERT(f & KVM_CARETAKER_FEAT_ATTACH_PREPARE, "features %#x", f);
	/*
	 * The test host boots with liveupdate=on unless told otherwise; kexec
	 * goes with LUO (the kexec boot of tests/kexec/ proves it).
	 */
	if (getenv("CT_EXPECT_NO_LUO"))
		TEST_ASSERT(!(f & (KVM_CARETAKER_FEAT_LUO | KVM_CARETAKER_FEAT_KEXEC)),
			    "features %#x", f);
	else
		TEST_ASSERT((f & KVM_CARETAKER_FEAT_LUO) && (f & KVM_CARETAKER_FEAT_KEXEC),
			    "features %#x", f);
}

static void test_opt_in(void)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_CARETAKER };
	struct kvm_vm *vm = vm_create_barebones();

	cap.flags = 1;
	TEST_ASSERT(__vm_ioctl(vm, KVM_ENABLE_CAP, &cap) == -1 && errno == EINVAL,
		    "flags: errno %d", errno);
	cap.flags = 0;
	cap.args[3] = 1;
	TEST_ASSERT(__vm_ioctl(vm, KVM_ENABLE_CAP, &cap) == -1 && errno == EINVAL,
		    "args: errno %d", errno);
	cap.args[3] = 0;
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_ENABLE_CAP, &cap), 0);
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_ENABLE_CAP, &cap), 0);
	kvm_vm_free(vm);

	/* Too late once a vCPU exists. */
	vm = vm_create(1);
	vm_vcpu_add(vm, 0, guest_idle);
	TEST_ASSERT(__vm_ioctl(vm, KVM_ENABLE_CAP, &cap) == -1 && errno == EINVAL,
		    "after KVM_CREATE_VCPU: errno %d", errno);
	kvm_vm_free(vm);
}

static void test_control(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_good_vm(&vcpu, NULL);

	/* Runs, then qualifies: every check passes, the CPU is parked. */
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_SYNC);
	EXPECT_PREPARED(prepare(vm, one_cpu, 1), one_cpu, 1);
	/* ... and after the fd is closed, the guest still runs under KVM. */
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_SYNC);
	kvm_vm_free(vm);
}

static void test_prepare_args(void)
{
	struct kvm_caretaker_prepare p = { .nr_cpus = 1,
					   .cpus = (__u64)(unsigned long)one_cpu };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_good_vm(&vcpu, NULL);

	p.flags = 1;
	EXPECT_REFUSED(__vm_ioctl(vm, KVM_CARETAKER_PREPARE, &p), EINVAL,
		       "flags not zero");
	p.flags = 0;
	p.reserved[3] = 1;
	EXPECT_REFUSED(__vm_ioctl(vm, KVM_CARETAKER_PREPARE, &p), EINVAL,
		       "reserved fields not zero");
	p.reserved[3] = 0;
	p.cpus = 8;	/* unmapped */
	TEST_ASSERT(__vm_ioctl(vm, KVM_CARETAKER_PREPARE, &p) == -1 && errno == EFAULT,
		    "bad cpus pointer: errno %d", errno);
	TEST_ASSERT(__vm_ioctl(vm, KVM_CARETAKER_PREPARE,
			       (struct kvm_caretaker_prepare *)8) == -1 &&
		    errno == EFAULT, "bad argument pointer: errno %d", errno);
	kvm_vm_free(vm);
}

static void test_no_cap_sys_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_good_vm(&vcpu, NULL);

	TEST_ASSERT(!syscall(SYS_capget, &h, d), "capget");
	d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	TEST_ASSERT(!syscall(SYS_capset, &h, d), "capset");
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EPERM, "CAP_SYS_ADMIN is required");
	kvm_vm_free(vm);
}

static void test_not_opted_in(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_idle);

	ct_vm_back_with_memfd(vm);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EPERM, "the VM did not opt in");
	kvm_vm_free(vm);
}

static void set_cpu_online(int cpu, bool online)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	fd = open(path, O_WRONLY);
	TEST_ASSERT(fd >= 0, "open %s", path);
	TEST_ASSERT(write(fd, online ? "1" : "0", 1) == 1, "write %s", path);
	close(fd);
}

static void test_cpus(void)
{
	const __u32 dup[] = { CT_CPU, CT_CPU }, boot[] = { 0 };
	const __u32 far[] = { 4096 }, two[] = { 1, 2 };
	struct kvm_vcpu *vcpu, *vcpu1;
	struct kvm_vm *vm = ct_good_vm(&vcpu, NULL);

	EXPECT_REFUSED(prepare(vm, one_cpu, 0), EINVAL, "fewer physical CPUs than vCPUs");
	EXPECT_REFUSED(prepare(vm, two, 2), EINVAL, "more physical CPUs than vCPUs");
	EXPECT_REFUSED(prepare(vm, far, 1), EINVAL, "physical CPU out of range");
	EXPECT_REFUSED(prepare(vm, boot, 1), EINVAL, "cannot be taken offline");
	kvm_vm_free(vm);

	/* Two vCPUs. */
	vm = __vm_create(VM_SHAPE_DEFAULT, 2, 0);
	vm_enable_cap(vm, KVM_CAP_CARETAKER, 0);
	vcpu = vm_vcpu_add(vm, 0, guest_idle);
	vcpu1 = vm_vcpu_add(vm, 1, guest_idle);
	(void)vcpu1;
	ct_vm_back_with_memfd(vm);
	EXPECT_REFUSED(prepare(vm, dup, 2), EINVAL, "physical CPU given twice");
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EINVAL, "fewer physical CPUs than vCPUs");
	EXPECT_PREPARED(prepare(vm, two, 2), two, 2);

	set_cpu_online(2, false);
	kmsg_mark();
	errno = 0;
	prepare(vm, two, 2);
	set_cpu_online(2, true);
	TEST_ASSERT(errno == EINVAL && kmsg_has("physical CPU is offline"),
		    "offline CPU: errno %d", errno);
	kvm_vm_free(vm);
}

static void test_anonymous_memory(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_vm_create(&vcpu, NULL, VM_TYPE_DEFAULT);

	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EOPNOTSUPP,
		       "not backed by a shared mapping of a memfd");
	kvm_vm_free(vm);
}

/*
 * A file on tmpfs is shmem too, but it has a name: LUO's memfd handler
 * preserves only unlinked shmem files, so PREPARE must refuse it.
 */
static void test_linked_shmem_memory(void)
{
	const size_t size = 16 * getpagesize();
	struct kvm_userspace_memory_region r;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	void *mem;
	int fd;

	fd = open("/tmp/caretaker-linked", O_RDWR | O_CREAT | O_TRUNC, 0600);
	TEST_ASSERT(fd >= 0, "open /tmp/caretaker-linked");
	TEST_ASSERT(!ftruncate(fd, size), "ftruncate");
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TEST_ASSERT(mem != MAP_FAILED, "mmap");

	vm = ct_good_vm(&vcpu, NULL);
	r = (struct kvm_userspace_memory_region) {
		.slot = 10,
		.guest_phys_addr = 1ULL << 32,
		.memory_size = size,
		.userspace_addr = (unsigned long)mem,
	};
	vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EOPNOTSUPP,
		       "not backed by a shared mapping of a memfd");

	/* Unlinked, the same file is what LUO preserves: it qualifies. */
	TEST_ASSERT(!unlink("/tmp/caretaker-linked"), "unlink");
	EXPECT_PREPARED(prepare(vm, one_cpu, 1), one_cpu, 1);
	kvm_vm_free(vm);
	close(fd);
}

static int free_hugepages(void)
{
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");
	int n = -1;

	TEST_ASSERT(f, "open /proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

static bool reserve_hugepages(int n)
{
	char buf[16];
	int fd = open("/proc/sys/vm/nr_hugepages", O_RDWR);

	if (fd < 0)
		return false;
	snprintf(buf, sizeof(buf), "%d", n);
	if (write(fd, buf, strlen(buf)) < 0) {
		close(fd);
		return false;
	}
	close(fd);
	return free_hugepages() >= n;
}

static void test_hugetlb_memory(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	TEST_ASSERT(reserve_hugepages(4), "cannot reserve 2 MiB huge pages");
	vm = ct_good_vm(&vcpu, NULL);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_SHARED_HUGETLB, 1ULL << 32, 10,
				    512, 0);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EOPNOTSUPP, "hugetlb");
	kvm_vm_free(vm);
	reserve_hugepages(0);
}

static void test_dirty_logging(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_good_vm(&vcpu, NULL);

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_SHMEM, 1ULL << 32, 10, 16,
				    KVM_MEM_LOG_DIRTY_PAGES);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EBUSY, "dirty logging");
	kvm_vm_free(vm);
}

static void test_dirty_ring(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	ct_require(kvm_has_cap(KVM_CAP_DIRTY_LOG_RING), "no KVM_CAP_DIRTY_LOG_RING");
	vm = __vm_create(VM_SHAPE_DEFAULT, 1, 0);
	vm_enable_cap(vm, KVM_CAP_CARETAKER, 0);
	vm_enable_dirty_ring(vm, 0x10000);
	vcpu = vm_vcpu_add(vm, 0, guest_idle);
	(void)vcpu;
	ct_vm_back_with_memfd(vm);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EOPNOTSUPP, "dirty ring");
	kvm_vm_free(vm);
}

static void test_protected_vm(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	ct_require(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM),
		   "no KVM_X86_SW_PROTECTED_VM");
	vm = ct_vm_create(&vcpu, NULL, KVM_X86_SW_PROTECTED_VM);
	ct_vm_back_with_memfd(vm);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EOPNOTSUPP, "confidential or protected");
	kvm_vm_free(vm);
}

static void guest_nested_on(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
	guest_idle();
}

static void test_nested_in_use(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	ct_require(kvm_cpu_has(X86_FEATURE_SVM), "no nested SVM");
	vm = ct_good_vm(&vcpu, guest_nested_on);
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_SYNC);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EBUSY, "nested virtualization");
	kvm_vm_free(vm);
}

static void test_guest_debug(void)
{
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_good_vm(&vcpu, NULL);

	vcpu_guest_debug_set(vcpu, &dbg);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EBUSY, "guest debugging");
	kvm_vm_free(vm);
}

static void test_smm(void)
{
	struct kvm_vcpu_events ev;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	ct_require(kvm_has_cap(KVM_CAP_X86_SMM), "no KVM_CAP_X86_SMM");
	vm = ct_good_vm(&vcpu, NULL);
	vcpu_events_get(vcpu, &ev);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	ev.smi.smm = 1;
	vcpu_events_set(vcpu, &ev);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EBUSY, "in SMM");
	kvm_vm_free(vm);
}

static void guest_port_in(void)
{
	u8 v;

	/* An IN exits to userspace, which must complete it. */
	__asm__ __volatile__("inb %%dx, %%al" : "=a"(v) : "d"((u16)0x80));
	guest_idle();
}

static void test_pending_userspace_exit(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_good_vm(&vcpu, guest_port_in);

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EBUSY,
		       "waiting for userspace to complete it");
	/* Completed, it qualifies again. */
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_SYNC);
	EXPECT_PREPARED(prepare(vm, one_cpu, 1), one_cpu, 1);
	kvm_vm_free(vm);
}

static void test_vfio_device(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_good_vm(&vcpu, NULL);

	/* x86 KVM always has the kvm-vfio device (KVM_VFIO). */
	TEST_ASSERT(__kvm_create_device(vm, KVM_DEV_TYPE_VFIO) >= 0,
		    "KVM_CREATE_DEVICE(kvm-vfio): %s", strerror(errno));
	EXPECT_REFUSED(prepare(vm, one_cpu, 1), EOPNOTSUPP, "VFIO device");
	kvm_vm_free(vm);
}

static void test_attach_args(void)
{
	struct kvm_caretaker_attach a = { };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = ct_good_vm(&vcpu, NULL), *plain;
	struct kvm_caretaker_op op = { };

	a.flags = 2;
	EXPECT_REFUSED(__vm_ioctl(vm, KVM_CARETAKER_ATTACH, &a), EINVAL, "flags not zero");
	a.flags = ~KVM_CARETAKER_ATTACH_PREPARE;
	EXPECT_REFUSED(__vm_ioctl(vm, KVM_CARETAKER_ATTACH, &a), EINVAL, "flags not zero");
	a.flags = 0;
	a.reserved[2] = 1;
	EXPECT_REFUSED(__vm_ioctl(vm, KVM_CARETAKER_ATTACH, &a), EINVAL,
		       "reserved fields not zero");
	a.reserved[2] = 0;
	a.caretaker_fd = -1;
	EXPECT_REFUSED(__vm_ioctl(vm, KVM_CARETAKER_ATTACH, &a), EBADF,
		       "not an open file");
	/* A VM fd is not a caretaker fd. */
	a.caretaker_fd = vm->fd;
	EXPECT_REFUSED(__vm_ioctl(vm, KVM_CARETAKER_ATTACH, &a), EINVAL,
		       "not a caretaker fd");

	/* The adopter must have opted in too. */
	plain = vm_create_barebones();
	EXPECT_REFUSED(__vm_ioctl(plain, KVM_CARETAKER_ATTACH, &a), EPERM,
		       "the VM did not opt in");
	kvm_vm_free(plain);

	/* The caretaker fd's ioctls are not VM ioctls. */
	TEST_ASSERT(__vm_ioctl(vm, KVM_CARETAKER_DETACH, &op) == -1 && errno == ENOTTY,
		    "DETACH on a VM fd: errno %d", errno);
	kvm_vm_free(vm);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "feature_mask", test_feature_mask },
	{ "opt_in", test_opt_in },
	{ "control", test_control },
	{ "prepare_args", test_prepare_args },
	{ "no_cap_sys_admin", test_no_cap_sys_admin },
	{ "not_opted_in", test_not_opted_in },
	{ "cpus", test_cpus },
	{ "anonymous_memory", test_anonymous_memory },
	{ "linked_shmem_memory", test_linked_shmem_memory },
	{ "hugetlb_memory", test_hugetlb_memory },
	{ "dirty_logging", test_dirty_logging },
	{ "dirty_ring", test_dirty_ring },
	{ "protected_vm", test_protected_vm },
	{ "nested_in_use", test_nested_in_use },
	{ "guest_debug", test_guest_debug },
	{ "smm", test_smm },
	{ "pending_userspace_exit", test_pending_userspace_exit },
	{ "vfio_device", test_vfio_device },
	{ "attach_args", test_attach_args },
};

int main(int argc, char *argv[])
{
	int i, planned = 0;

	/* With an argument, run only the case of that name. */
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		planned += argc < 2 || !strcmp(argv[1], cases[i].name);
	ksft_print_header();
	ksft_set_plan(planned);
	/* Loaded for the cases; feature_mask unloads and reloads it. */
	TEST_ASSERT(!system("modprobe caretaker"), "modprobe caretaker");

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name))
			continue;
		ct_run_case(cases[i].name, cases[i].fn);
	}
	ksft_finished();
}
