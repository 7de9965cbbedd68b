//go:build linux && cgo

// The process spawner of package spawn: what glibc's posix_spawn does
// (CLONE_VM|CLONE_VFORK on a private stack) plus the launchd job attributes,
// applied in launchd's order in the child between clone and execve.
//
// Signals. The child must not run any of the parent's signal handlers (it
// shares the parent's memory) and must exec with every disposition at
// SIG_DFL and an empty mask. On amd64 and arm64 with Linux >= 5.5 the child
// is made with clone3(CLONE_CLEAR_SIGHAND): the kernel resets every handled
// signal to SIG_DFL, so the child only has to reset the signals that are
// SIG_IGN (the parent passes that set: Go's record of ignored signals plus
// job-control signals sockd inherited ignored), a few system calls instead
// of 62. Elsewhere it falls back to posix_spawn's way: clone with every
// signal blocked in the parent, and the child resets all 62 dispositions
// before it unblocks.
//
// The child shares the parent's memory and TLS, so it may use raw system
// calls only (KSYS, which leaves errno alone): no malloc, no stdio, no glibc
// credential wrappers (those broadcast SIGSETXID to the threads of the
// parent), no locks. It reports a failure by writing the stage and errno
// into its request and exiting with status 127. In a synchronous start the
// parent, resumed by the kernel once the child has exec'd or exited, reaps a
// failed child at once; an asynchronous start (SOCKD_ASYNC, further down)
// returns at once and the failure is collected when the child is reaped.

#define _GNU_SOURCE
#include "spawn_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <linux/futex.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define SOCKD_CLONE_CLEAR_SIGHAND 0x100000000ULL

// struct clone_args of clone3(2), version 0 (CLONE_ARGS_SIZE_VER0).
struct sockd_clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
};

// sockd_raw_clone3 calls clone3(args, size); in the child it runs fn(arg)
// on the new stack and exits with its result. It returns the child's pid,
// or -errno.
#if defined(__x86_64__)
#define HAVE_RAW_CLONE3 1
long sockd_raw_clone3(struct sockd_clone_args *args, unsigned long size,
		      int (*fn)(void *), void *arg) __attribute__((visibility("hidden")));
__asm__(
	".text\n"
	".globl sockd_raw_clone3\n"
	".hidden sockd_raw_clone3\n"
	".type sockd_raw_clone3,@function\n"
	"sockd_raw_clone3:\n"
	"	mov %rcx, %r8\n"       // arg survives the syscall in r8; fn in rdx
	"	mov $435, %eax\n"      // __NR_clone3
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"                 // parent (pid) or error (-errno)
	"1:	xor %ebp, %ebp\n"     // child, on its own stack
	"	and $-16, %rsp\n"
	"	mov %r8, %rdi\n"
	"	call *%rdx\n"
	"	mov %eax, %edi\n"
	"	mov $231, %eax\n"      // __NR_exit_group
	"	syscall\n"
	"	hlt\n"
	".size sockd_raw_clone3, .-sockd_raw_clone3\n");
#elif defined(__aarch64__)
#define HAVE_RAW_CLONE3 1
long sockd_raw_clone3(struct sockd_clone_args *args, unsigned long size,
		      int (*fn)(void *), void *arg) __attribute__((visibility("hidden")));
__asm__(
	".text\n"
	".globl sockd_raw_clone3\n"
	".hidden sockd_raw_clone3\n"
	".type sockd_raw_clone3,%function\n"
	"sockd_raw_clone3:\n"
	"	mov x8, #435\n"        // __NR_clone3
	"	svc #0\n"
	"	cbz x0, 1f\n"
	"	ret\n"
	"1:	mov x29, #0\n"
	"	mov x30, #0\n"
	"	mov x0, x3\n"
	"	blr x2\n"
	"	mov x8, #94\n"         // __NR_exit_group
	"	svc #0\n"
	"	brk #0\n"
	".size sockd_raw_clone3, .-sockd_raw_clone3\n");
#else
#define HAVE_RAW_CLONE3 0
#endif

// clone3_state: 0 untried, 1 works, -1 unavailable (ENOSYS, or EINVAL for
// CLONE_CLEAR_SIGHAND before Linux 5.5). sockd_force_fallback makes every
// start take the clone path (tests).
static int clone3_state;
int sockd_force_fallback;

// 32-bit credential calls on architectures that still have 16-bit ones.
#ifdef SYS_setresuid32
#define SYS_SETRESUID SYS_setresuid32
#define SYS_SETRESGID SYS_setresgid32
#define SYS_SETGROUPS SYS_setgroups32
#else
#define SYS_SETRESUID SYS_setresuid
#define SYS_SETRESGID SYS_setresgid
#define SYS_SETGROUPS SYS_setgroups
#endif

#define CHILD_STACK (64 * 1024)
#define GUARD (4096)
#define KSIGSET_SIZE 8 // the kernel's sigset_t: 64 signals
#define KNSIG 65

// ---------------------------------------------------------------------------
// Per-thread child stack, mapped once per OS thread with a guard page below
// it. A thread runs at most one clone at a time (it is suspended until the
// child execs), so one stack per thread is enough.

static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;
static int stack_key_ok;

static void free_stack(void *p) {
	if (p != NULL)
		munmap((char *)p - GUARD, CHILD_STACK + GUARD);
}

static void make_stack_key(void) {
	stack_key_ok = pthread_key_create(&stack_key, free_stack) == 0;
}

static char *thread_stack(void) {
	pthread_once(&stack_once, make_stack_key);
	if (!stack_key_ok)
		return NULL;
	char *s = pthread_getspecific(stack_key);
	if (s != NULL)
		return s;
	char *m = mmap(NULL, CHILD_STACK + GUARD, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	s = m + GUARD;
	if (mprotect(m, GUARD, PROT_NONE) != 0 || pthread_setspecific(stack_key, s) != 0) {
		munmap(m, CHILD_STACK + GUARD);
		return NULL;
	}
	return s;
}

// ---------------------------------------------------------------------------
// Child side.

struct child_ctx {
	struct sockd_req *r;
	const char *strs;
	char *const *argv;
	char *const *envp;
	const int32_t *fds;
	const uint32_t *groups;
	const struct sockd_rlimit *rl; // r->nrlimits entries
	int *tmp;      // nfds ints of scratch for the fd layout
	char *lpslot;  // "LISTEN_PID=" followed by room for the digits
	int full_reset; // reset all 62 dispositions (no CLONE_CLEAR_SIGHAND)
	int32_t *unshared_word; // asynchronous start: see wake_unshared
};

struct krlimit {
	uint64_t cur, max;
};

// Child-side system calls. The child shares the parent's memory and thread
// pointer, so glibc's syscall(), which stores errno in the calling
// thread's TLS, would write into the parent thread's errno while that
// thread runs on (an asynchronous start does not suspend it). KSYS returns
// the result or -errno and touches no memory.
#if defined(__x86_64__)
static inline long ksys6(long n, long a, long b, long c, long d, long e, long f) {
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
static inline long ksys6(long n, long a, long b, long c, long d, long e, long f) {
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc #0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}
#else
// No asynchronous starts here: the parent is suspended while the child
// runs, so errno may be used.
static long ksys6(long n, long a, long b, long c, long d, long e, long f) {
	long r = syscall(n, a, b, c, d, e, f);
	return r < 0 ? -errno : r;
}
#endif
#define KSYS_N(n, a, b, c, d, e, f, ...) \
	ksys6((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define KSYS(...) KSYS_N(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

// wake_unshared tells a parent waiting in an asynchronous start with a
// shared fd table that the child no longer uses that table: the tid word
// of its slot goes from 1 to 2 (the kernel sets it to 0 when the child
// execs or exits, which also wakes the parent).
static void wake_unshared(int32_t *w) {
	__atomic_store_n(w, 2, __ATOMIC_RELEASE);
	KSYS(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

__attribute__((noreturn)) static void child_fail(struct sockd_req *r, int stage, int err) {
	r->stage = stage;
	r->err = err;
	for (;;)
		KSYS(SYS_exit_group, 127);
}

// open_onto opens path and makes it fd target (without FD_CLOEXEC).
static int open_onto(const char *path, int flags, int target) {
	long fd = KSYS(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0666);
	if (fd < 0)
		return (int)-fd;
	if (fd != target) {
		long rc = KSYS(SYS_dup3, fd, target, 0);
		KSYS(SYS_close, fd);
		if (rc < 0)
			return (int)-rc;
	} else {
		long rc = KSYS(SYS_fcntl, fd, F_SETFD, 0);
		if (rc < 0)
			return (int)-rc;
	}
	return 0;
}

// cloexec_from marks every fd >= lo close-on-exec.
static int cloexec_from(unsigned lo) {
	long rc = KSYS(SYS_close_range, lo, ~0U, CLOSE_RANGE_CLOEXEC);
	if (rc == 0)
		return 0;
	if (rc == -EINVAL) { // kernel 5.9/5.10: no CLOSE_RANGE_CLOEXEC
		rc = KSYS(SYS_close_range, lo, ~0U, 0);
		if (rc == 0)
			return 0;
	}
	if (rc != -ENOSYS && rc != -EINVAL)
		return (int)-rc;
	// Before 5.9: walk /proc/self/fd.
	long dfd = KSYS(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return (int)-dfd;
	char buf[1024];
	for (;;) {
		long n = KSYS(SYS_getdents64, dfd, buf, sizeof buf);
		if (n < 0) {
			KSYS(SYS_close, dfd);
			return (int)-n;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			// struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name
			unsigned short reclen;
			memcpy(&reclen, buf + off + 16, sizeof reclen);
			const char *name = buf + off + 19;
			off += reclen;
			if (name[0] < '0' || name[0] > '9')
				continue;
			long fd = 0;
			for (const char *p = name; *p >= '0' && *p <= '9'; p++)
				fd = fd * 10 + (*p - '0');
			if (fd >= (long)lo && fd != dfd)
				KSYS(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
		}
	}
	KSYS(SYS_close, dfd);
	return 0;
}

static int child_main(void *arg) {
	struct child_ctx *c = arg;
	struct sockd_req *r = c->r;
	const char *strs = c->strs;
	long ke;

	// Started with CLONE_FILES: the fd table is still the parent's. Take a
	// private copy of only the low fds (0..unshare_from-1, where the parent
	// put every fd this child needs), so a daemon holding 10,000 sockets does
	// not copy and then close 10,000 fds per start. Nothing before this line
	// may touch an fd.
	if (r->flags & SOCKD_SHARED_FILES) {
		if ((ke = KSYS(SYS_close_range, (unsigned)r->unshare_from, ~0U, CLOSE_RANGE_UNSHARE)) < 0)
			child_fail(r, SOCKD_ST_UNSHARE_FILES, (int)-ke);
		if (r->flags & SOCKD_ASYNC)
			wake_unshared(c->unshared_word);
	}

	// Signals: every disposition back to SIG_DFL, then an empty mask.
	// With CLONE_CLEAR_SIGHAND the kernel has reset the handled ones and
	// only ignored ones remain; without it every signal is blocked (by the
	// parent) until all are reset, so no handler of the parent runs here.
	{
		long act[8] = {0}; // a kernel struct sigaction with SIG_DFL
		if (c->full_reset) {
			for (int s = 1; s < KNSIG; s++) {
				if (s == SIGKILL || s == SIGSTOP)
					continue;
				KSYS(SYS_rt_sigaction, s, act, NULL, KSIGSET_SIZE);
			}
		} else {
			uint64_t ign = r->sigign;
			for (int s = 1; ign != 0 && s < KNSIG; s++, ign >>= 1) {
				if ((ign & 1) && s != SIGKILL && s != SIGSTOP)
					KSYS(SYS_rt_sigaction, s, act, NULL, KSIGSET_SIZE);
			}
		}
		uint64_t empty = 0;
		if ((ke = KSYS(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, KSIGSET_SIZE)) < 0)
			child_fail(r, SOCKD_ST_SIGMASK, (int)-ke);
	}

	if (r->flags & SOCKD_SETSID) {
		if ((ke = KSYS(SYS_setsid)) < 0)
			child_fail(r, SOCKD_ST_SETSID, (int)-ke);
	} else if ((ke = KSYS(SYS_setpgid, 0, 0)) < 0) {
		child_fail(r, SOCKD_ST_SETPGID, (int)-ke);
	}

	if ((r->flags & SOCKD_NICE) && (ke = KSYS(SYS_setpriority, PRIO_PROCESS, 0, r->nice)) < 0)
		child_fail(r, SOCKD_ST_NICE, (int)-ke);

	for (int i = 0; i < r->nrlimits; i++) {
		const struct sockd_rlimit *l = &c->rl[i];
		struct krlimit k = {l->soft, l->hard};
		if (!l->set_soft || !l->set_hard) {
			struct krlimit cur;
			if ((ke = KSYS(SYS_prlimit64, 0, l->resource, NULL, &cur)) < 0) {
				r->rl_index = i;
				child_fail(r, SOCKD_ST_GETRLIMIT, (int)-ke);
			}
			if (!l->set_soft)
				k.cur = cur.cur;
			if (!l->set_hard)
				k.max = cur.max;
			// A soft limit above the kept hard limit cannot be set;
			// launchd's setrlimit fails the same way, but lowering the
			// hard limit below the kept soft one must work.
			if (l->set_hard && !l->set_soft && k.cur > k.max)
				k.cur = k.max;
		}
		if ((ke = KSYS(SYS_prlimit64, 0, l->resource, &k, NULL)) < 0) {
			r->rl_index = i;
			child_fail(r, SOCKD_ST_SETRLIMIT, (int)-ke);
		}
	}

	if (r->root_off >= 0) {
		if ((ke = KSYS(SYS_chroot, strs + r->root_off)) < 0)
			child_fail(r, SOCKD_ST_CHROOT, (int)-ke);
		if ((ke = KSYS(SYS_chdir, "/")) < 0)
			child_fail(r, SOCKD_ST_CHDIR_ROOT, (int)-ke);
	}

	if (r->flags & SOCKD_CREDS) {
		if ((ke = KSYS(SYS_SETGROUPS, (long)r->ngroups, c->groups)) < 0)
			child_fail(r, SOCKD_ST_SETGROUPS, (int)-ke);
		if ((ke = KSYS(SYS_SETRESGID, (long)r->gid, (long)r->gid, (long)r->gid)) < 0)
			child_fail(r, SOCKD_ST_SETGID, (int)-ke);
		if ((ke = KSYS(SYS_SETRESUID, (long)r->uid, (long)r->uid, (long)r->uid)) < 0)
			child_fail(r, SOCKD_ST_SETUID, (int)-ke);
	}

	if (r->flags & SOCKD_UMASK)
		KSYS(SYS_umask, (long)r->umask);

	if (r->cwd_off >= 0 && (ke = KSYS(SYS_chdir, strs + r->cwd_off)) < 0)
		child_fail(r, SOCKD_ST_CHDIR, (int)-ke);

	// fd layout: child fd i is fds[i]. Every source below n is first
	// copied above the target range (close-on-exec), so overlapping numbers
	// are safe; then dup3 onto i, which leaves i without FD_CLOEXEC. The file
	// descriptions (and so O_NONBLOCK) are shared, never changed.
	{
		const int n = r->nfds;
		int *tmp = c->tmp;
		for (int i = 0; i < n; i++) {
			if (c->fds[i] >= n) {
				// Above the target range: nothing clobbers it.
				tmp[i] = c->fds[i];
				continue;
			}
			int j;
			for (j = 0; j < i; j++)
				if (c->fds[j] == c->fds[i])
					break;
			if (j < i) {
				tmp[i] = tmp[j];
				continue;
			}
			long t = KSYS(SYS_fcntl, (long)c->fds[i], F_DUPFD_CLOEXEC, (long)n);
			if (t < 0)
				child_fail(r, SOCKD_ST_DUP, (int)-t);
			tmp[i] = (int)t;
		}
		for (int i = 0; i < n; i++)
			if ((ke = KSYS(SYS_dup3, (long)tmp[i], (long)i, 0L)) < 0)
				child_fail(r, SOCKD_ST_DUP2, (int)-ke);
	}

	// Standard paths replace what the layout put on 0, 1 and 2; opened
	// after the privilege drop and umask. A failure is only a warning, as
	// in launchd: the descriptor keeps what the layout gave it.
	if (r->stdin_off >= 0) {
		int e = open_onto(strs + r->stdin_off, O_RDONLY, 0);
		if (e != 0) {
			r->warn_stage[0] = SOCKD_ST_STDIN;
			r->warn_err[0] = e;
		}
	}
	if (r->stdout_off >= 0) {
		int e = open_onto(strs + r->stdout_off, O_WRONLY | O_CREAT | O_APPEND, 1);
		if (e != 0) {
			r->warn_stage[1] = SOCKD_ST_STDOUT;
			r->warn_err[1] = e;
		}
	}
	if (r->stderr_off >= 0) {
		int e = open_onto(strs + r->stderr_off, O_WRONLY | O_CREAT | O_APPEND, 2);
		if (e != 0) {
			r->warn_stage[2] = SOCKD_ST_STDERR;
			r->warn_err[2] = e;
		}
	}

	{
		int e = cloexec_from((unsigned)r->nfds);
		if (e != 0)
			child_fail(r, SOCKD_ST_CLOSE_RANGE, e);
	}

	if (r->flags & SOCKD_LISTEN_PID) {
		long pid = KSYS(SYS_getpid);
		char digits[24];
		int nd = 0;
		do {
			digits[nd++] = (char)('0' + pid % 10);
			pid /= 10;
		} while (pid > 0);
		char *p = c->lpslot + sizeof("LISTEN_PID=") - 1;
		while (nd > 0)
			*p++ = digits[--nd];
		*p = '\0';
	}

	long e = KSYS(SYS_execve, strs + r->path_off, c->argv, c->envp);
	child_fail(r, SOCKD_ST_EXEC, (int)-e);
	return 127;
}


// build_vectors fills argv (r->argc strings from argbuf, then NULL) and
// envp (r->envc entries of envent resolved against envbase and envextra,
// then lpslot when LISTEN_PID is asked for, then NULL).
static void build_vectors(const struct sockd_req *r, char **argv, char **envp,
			  const char *argbuf, const char *envbase, const char *envextra,
			  const uint32_t *envent, char *lpslot) {
	const char *p = argbuf;
	for (int i = 0; i < r->argc; i++) {
		argv[i] = (char *)p;
		p += strlen(p) + 1;
	}
	argv[r->argc] = NULL;
	int k = 0;
	for (int i = 0; i < r->envc; i++) {
		uint32_t e = envent[i];
		envp[k++] = (char *)((e & SOCKD_ENV_EXTRA) ? envextra + (e & ~SOCKD_ENV_EXTRA) : envbase + e);
	}
	if (r->flags & SOCKD_LISTEN_PID)
		envp[k++] = lpslot;
	envp[k] = NULL;
}

// ---------------------------------------------------------------------------
// Asynchronous starts (SOCKD_ASYNC).
//
// A synchronous start suspends the calling thread until the child has
// exec'd (CLONE_VFORK), tens of microseconds per start during which the Go
// runtime counts the thread as blocked in a system call. An asynchronous
// start returns as soon as the child exists: the child runs on a stack of
// its own and reads only private copies of the request, the strings, the
// environment and the fd list, all in its slot, so nothing the caller frees
// or reuses after the call is touched by the child. The kernel clears
// slot->tid (CLONE_CHILD_CLEARTID) when the child execs or exits; a later
// start then reuses the slot, unless the child failed before execve: its
// slot keeps the stage and errno until sockd_async_result collects them.

#define SLOT_DATA (64 * 1024)
#define MAX_SLOTS 1024

struct slot {
	char *stack;          // CHILD_STACK bytes above a guard page
	char *data;           // SLOT_DATA bytes
	int32_t tid;          // nonzero until the child has exec'd or exited
	int busy;
	int settled;          // the starting parent is done with tid (see acquire_slot)
	uint32_t gen;
	struct sockd_req req; // the child's copy
	struct child_ctx ctx;
};

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots[MAX_SLOTS];
static int nslots;

static struct slot *new_slot(void) {
	size_t len = GUARD + CHILD_STACK + SLOT_DATA;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	struct slot *s = calloc(1, sizeof *s);
	if (s == NULL || mprotect(m, GUARD, PROT_NONE) != 0) {
		free(s);
		munmap(m, len);
		return NULL;
	}
	s->stack = m + GUARD;
	s->data = m + GUARD + CHILD_STACK;
	return s;
}

// acquire_slot returns a free slot, marked busy, or NULL when every slot
// holds a child that has not exec'd yet (or an uncollected failure).
static struct slot *acquire_slot(int *idx) {
	struct slot *found = NULL;
	pthread_mutex_lock(&slot_mu);
	for (int i = 0; i < nslots; i++) {
		struct slot *s = slots[i];
		// Reusable once the child exec'd (or was killed before) and the
		// parent that started it has stopped waiting on tid: a slot
		// taken while that parent still waits would set tid back to 1
		// under it, and the parent would sleep through the new child's
		// wake-ups for good.
		if (s->busy && __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE) == 0 && s->req.stage == 0 &&
		    __atomic_load_n(&s->settled, __ATOMIC_ACQUIRE))
			s->busy = 0;
		if (!s->busy) {
			found = s;
			*idx = i;
			break;
		}
	}
	if (found == NULL && nslots < MAX_SLOTS && (found = new_slot()) != NULL) {
		*idx = nslots;
		slots[nslots++] = found;
	}
	if (found != NULL) {
		found->busy = 1;
		found->settled = 0;
		found->gen++;
		__atomic_store_n(&found->tid, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&slot_mu);
	return found;
}

static void release_slot(struct slot *s) {
	pthread_mutex_lock(&slot_mu);
	s->busy = 0;
	s->req.stage = 0;
	pthread_mutex_unlock(&slot_mu);
}

void sockd_async_result(int32_t idx, uint32_t gen, int32_t *stage, int32_t *err, int32_t *rl_index) {
	*stage = 0;
	*err = 0;
	*rl_index = -1;
	pthread_mutex_lock(&slot_mu);
	if (idx >= 0 && idx < nslots) {
		struct slot *s = slots[idx];
		if (s->busy && s->gen == gen && __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE) == 0) {
			*stage = s->req.stage;
			*err = s->req.err;
			*rl_index = s->req.rl_index;
			s->busy = 0;
			s->req.stage = 0;
		}
	}
	pthread_mutex_unlock(&slot_mu);
}

int sockd_async_stuck(void) {
	int n = 0;
	pthread_mutex_lock(&slot_mu);
	for (int i = 0; i < nslots; i++) {
		struct slot *s = slots[i];
		if (s->busy && (__atomic_load_n(&s->tid, __ATOMIC_ACQUIRE) != 0 || s->req.stage != 0))
			n++;
	}
	pthread_mutex_unlock(&slot_mu);
	return n;
}

// carve takes n bytes (8-aligned) from the slot's data area.
static void *carve(char **p, char *end, size_t n) {
	char *q = *p;
	n = (n + 7) & ~(size_t)7;
	if ((size_t)(end - q) < n)
		return NULL;
	*p = q + n;
	return q;
}

static const char *copy_in(char **p, char *end, const char *src, size_t n) {
	if (src == NULL || n == 0)
		return src;
	char *d = carve(p, end, n);
	if (d != NULL)
		memcpy(d, src, n);
	return d;
}

// spawn_async starts the child without waiting for its execve. It returns
// 0 on success, -1 on failure (stage and errno in r), or -2 when the start
// must be made synchronously instead (no clone3, no free slot, or data
// larger than a slot).
static int spawn_async(struct sockd_req *r, const char *strs, const char *argbuf,
		       const char *envbase, const char *envextra,
		       const uint32_t *envent, const int32_t *fds, const uint32_t *groups,
		       const struct sockd_rlimit *rl) {
#if !HAVE_RAW_CLONE3
	return -2;
#else
	int state = __atomic_load_n(&clone3_state, __ATOMIC_RELAXED);
	if (state < 0 || sockd_force_fallback)
		return -2;
	int idx = -1;
	struct slot *sl = acquire_slot(&idx);
	if (sl == NULL)
		return -2;

	const int argc = r->argc, envc = r->envc, nfds = r->nfds;
	char *p = sl->data, *end = sl->data + SLOT_DATA;
	char **argv = carve(&p, end, ((size_t)argc + 1) * sizeof(char *));
	char **envp = carve(&p, end, ((size_t)envc + 2) * sizeof(char *));
	int *tmp = carve(&p, end, (size_t)nfds * sizeof(int));
	int32_t *cfds = carve(&p, end, (size_t)nfds * sizeof(int32_t));
	char *lpslot = carve(&p, end, 48);
	const char *cstrs = copy_in(&p, end, strs, r->strs_len);
	const char *cargs = copy_in(&p, end, argbuf, r->arg_len);
	const char *cbase = copy_in(&p, end, envbase, r->envbase_len);
	const char *cextra = copy_in(&p, end, envextra, r->extra_len);
	const uint32_t *cgroups = (const uint32_t *)copy_in(&p, end, (const char *)groups,
		(r->flags & SOCKD_CREDS) ? (size_t)r->ngroups * sizeof(uint32_t) : 0);
	const struct sockd_rlimit *crl = (const struct sockd_rlimit *)copy_in(&p, end, (const char *)rl,
		(size_t)r->nrlimits * sizeof(struct sockd_rlimit));
	if (argv == NULL || envp == NULL || (nfds > 0 && (tmp == NULL || cfds == NULL)) || lpslot == NULL ||
	    (strs != NULL && r->strs_len > 0 && cstrs == NULL) || (argbuf != NULL && r->arg_len > 0 && cargs == NULL) ||
	    (envbase != NULL && r->envbase_len > 0 && cbase == NULL) || (envextra != NULL && r->extra_len > 0 && cextra == NULL) ||
	    (groups != NULL && (r->flags & SOCKD_CREDS) && r->ngroups > 0 && cgroups == NULL) ||
	    (rl != NULL && r->nrlimits > 0 && crl == NULL)) {
		release_slot(sl);
		return -2;
	}
	memcpy(cfds, fds, (size_t)nfds * sizeof(int32_t));
	memcpy(lpslot, "LISTEN_PID=", sizeof "LISTEN_PID=");
	build_vectors(r, argv, envp, cargs, cbase, cextra, envent, lpslot);

	sl->req = *r;
	sl->ctx = (struct child_ctx){
		.r = &sl->req,
		.strs = cstrs,
		.argv = argv,
		.envp = envp,
		.fds = cfds,
		.groups = cgroups,
		.rl = crl,
		.tmp = tmp,
		.lpslot = lpslot,
		.unshared_word = &sl->tid,
	};
	const unsigned long files = (r->flags & SOCKD_SHARED_FILES) ? CLONE_FILES : 0;
	int pidfd = -1;
	struct sockd_clone_args ca = {
		.flags = CLONE_VM | CLONE_PIDFD | CLONE_CHILD_CLEARTID | SOCKD_CLONE_CLEAR_SIGHAND | files,
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.child_tid = (uint64_t)(uintptr_t)&sl->tid,
		.exit_signal = SIGCHLD,
		.stack = (uint64_t)(uintptr_t)sl->stack,
		.stack_size = CHILD_STACK,
	};
	long rc = sockd_raw_clone3(&ca, sizeof ca, child_main, &sl->ctx);
	if (rc < 0) {
		release_slot(sl);
		if ((rc == -ENOSYS || rc == -EINVAL) && state == 0) {
			__atomic_store_n(&clone3_state, -1, __ATOMIC_RELAXED);
			return -2;
		}
		r->stage = SOCKD_ST_CLONE;
		r->err = (int)-rc;
		return -1;
	}
	if (state == 0)
		__atomic_store_n(&clone3_state, 1, __ATOMIC_RELAXED);
	if (files) {
		// The child still uses this fd table: the caller may close or
		// move the fds it passed only once the child has its own.
		// The child moves tid from 1 to 2 once it has its own table;
		// the kernel sets it to 0 if the child dies or execs first.
		while (__atomic_load_n(&sl->tid, __ATOMIC_ACQUIRE) == 1)
			syscall(SYS_futex, &sl->tid, FUTEX_WAIT, 1, NULL, NULL, 0);
	}
	r->pid = (int32_t)rc;
	r->pidfd = pidfd;
	r->slot = idx;
	r->gen = sl->gen;
	__atomic_store_n(&sl->settled, 1, __ATOMIC_RELEASE);
	return 0;
#endif
}

// ---------------------------------------------------------------------------
// Parent side.

int sockd_spawn(struct sockd_req *r, const char *strs, const char *argbuf,
		const char *envbase, const char *envextra,
		const uint32_t *envent, const int32_t *fds, const uint32_t *groups,
		const struct sockd_rlimit *rl) {
	r->pid = -1;
	r->pidfd = -1;
	r->stage = 0;
	r->err = 0;
	r->rl_index = -1;
	for (int i = 0; i < 3; i++) {
		r->warn_stage[i] = 0;
		r->warn_err[i] = 0;
	}
	r->slot = -1;
	r->gen = 0;
	if (r->flags & SOCKD_ASYNC) {
		int rc = spawn_async(r, strs, argbuf, envbase, envextra, envent, fds, groups, rl);
		if (rc != -2)
			return rc;
		r->flags &= ~SOCKD_ASYNC;
	}

	const int argc = r->argc, envc = r->envc, nfds = r->nfds;
	// argv, NULL, envp, LISTEN_PID, NULL, then nfds ints.
	size_t nptr = (size_t)argc + 1 + (size_t)envc + 2;
	size_t need = nptr * sizeof(char *) + (size_t)nfds * sizeof(int);
	void *local[512];
	void *heap = NULL;
	void *mem = local;
	if (need > sizeof local) {
		heap = malloc(need);
		if (heap == NULL) {
			r->stage = SOCKD_ST_NOMEM;
			r->err = ENOMEM;
			return -1;
		}
		mem = heap;
	}
	char **argv = mem;
	char **envp = argv + argc + 1;
	char lpslot[48] = "LISTEN_PID=";
	build_vectors(r, argv, envp, argbuf, envbase, envextra, envent, lpslot);

	struct child_ctx c = {
		.r = r,
		.strs = strs,
		.argv = argv,
		.envp = envp,
		.fds = fds,
		.groups = groups,
		.rl = rl,
		.tmp = (int *)((char **)mem + nptr),
		.lpslot = lpslot,
	};

	char *stack = thread_stack();
	if (stack == NULL) {
		r->stage = SOCKD_ST_CLONE;
		r->err = ENOMEM;
		free(heap);
		return -1;
	}

	int pidfd = -1;
	int pid = -1;
	int cerr = 0;
	const unsigned long files = (r->flags & SOCKD_SHARED_FILES) ? CLONE_FILES : 0;
	int state = __atomic_load_n(&clone3_state, __ATOMIC_RELAXED);
	if (HAVE_RAW_CLONE3 && state >= 0 && !sockd_force_fallback) {
#if HAVE_RAW_CLONE3
		struct sockd_clone_args ca = {
			.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SOCKD_CLONE_CLEAR_SIGHAND | files,
			.pidfd = (uint64_t)(uintptr_t)&pidfd,
			.exit_signal = SIGCHLD,
			.stack = (uint64_t)(uintptr_t)stack,
			.stack_size = CHILD_STACK,
		};
		long rc = sockd_raw_clone3(&ca, sizeof ca, child_main, &c);
		if (rc >= 0) {
			pid = (int)rc;
			if (state == 0)
				__atomic_store_n(&clone3_state, 1, __ATOMIC_RELAXED);
		} else if ((rc == -ENOSYS || rc == -EINVAL) && state == 0) {
			__atomic_store_n(&clone3_state, -1, __ATOMIC_RELAXED);
		} else {
			cerr = (int)-rc;
		}
#endif
	}
	if (pid < 0 && cerr == 0) {
		// posix_spawn's way: block every signal (raw, so glibc's
		// internal ones too) so no handler of the parent can run in the
		// child before it has reset them all.
		c.full_reset = 1;
		r->stage = 0;
		uint64_t all = ~(uint64_t)0, old = 0;
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, KSIGSET_SIZE);
		pid = clone(child_main, stack + CHILD_STACK,
			    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | files | SIGCHLD, &c, &pidfd);
		cerr = errno;
		syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, KSIGSET_SIZE);
	}
	free(heap);

	if (pid < 0) {
		r->stage = SOCKD_ST_CLONE;
		r->err = cerr;
		return -1;
	}
	r->pid = pid;
	if (r->stage != 0) {
		// The child failed and has exited: reap it now.
		siginfo_t si;
		while (syscall(SYS_waitid, P_PIDFD, (long)pidfd, &si, WEXITED, NULL) < 0 && errno == EINTR)
			;
		close(pidfd);
		return -1;
	}
	r->pidfd = pidfd;
	return 0;
}

// ---------------------------------------------------------------------------
// User database lookups (template building only).

static int copy_str(char *dst, int len, const char *src) {
	size_t n = strlen(src);
	if ((size_t)len <= n)
		return ERANGE;
	memcpy(dst, src, n + 1);
	return 0;
}

int sockd_lookup_user(const char *name, uint32_t *uid, uint32_t *gid,
		      char *home, int homelen, char *shell, int shelllen) {
	size_t size = 16384;
	for (int tries = 0; tries < 8; tries++, size *= 4) {
		char *buf = malloc(size);
		if (buf == NULL)
			return ENOMEM;
		struct passwd pw, *res = NULL;
		int e = getpwnam_r(name, &pw, buf, size, &res);
		if (e == ERANGE) {
			free(buf);
			continue;
		}
		if (e == 0 && res == NULL)
			e = ENOENT;
		if (e == 0) {
			*uid = pw.pw_uid;
			*gid = pw.pw_gid;
			e = copy_str(home, homelen, pw.pw_dir ? pw.pw_dir : "");
			if (e == 0)
				e = copy_str(shell, shelllen, pw.pw_shell ? pw.pw_shell : "");
		}
		free(buf);
		return e;
	}
	return ERANGE;
}

int sockd_lookup_group(const char *name, uint32_t *gid) {
	size_t size = 16384;
	for (int tries = 0; tries < 8; tries++, size *= 4) {
		char *buf = malloc(size);
		if (buf == NULL)
			return ENOMEM;
		struct group gr, *res = NULL;
		int e = getgrnam_r(name, &gr, buf, size, &res);
		if (e == ERANGE) {
			free(buf);
			continue;
		}
		if (e == 0 && res == NULL)
			e = ENOENT;
		if (e == 0)
			*gid = gr.gr_gid;
		free(buf);
		return e;
	}
	return ERANGE;
}

int sockd_grouplist(const char *name, uint32_t gid, uint32_t *groups, int max) {
	int n = max;
	if (getgrouplist(name, (gid_t)gid, (gid_t *)groups, &n) < 0)
		return n > max ? n : -1;
	return n;
}

// ---------------------------------------------------------------------------
// SIGCHLD disposition.

int sockd_default_sigchld(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGCHLD, &sa, NULL) == 0 ? 0 : errno;
}
