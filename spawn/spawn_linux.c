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
// calls only: no malloc, no stdio, no glibc credential wrappers (those
// broadcast SIGSETXID to the threads of the parent), no locks. It reports a
// failure by writing the stage and errno into the request and exiting with
// status 127; the parent, resumed by the kernel once the child has exec'd or
// exited, reaps it.

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
};

struct krlimit {
	uint64_t cur, max;
};

__attribute__((noreturn)) static void child_fail(struct sockd_req *r, int stage, int err) {
	r->stage = stage;
	r->err = err;
	for (;;)
		syscall(SYS_exit_group, 127);
}

// open_onto opens path and makes it fd target (without FD_CLOEXEC).
static int open_onto(const char *path, int flags, int target) {
	long fd = syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0666);
	if (fd < 0)
		return errno;
	if (fd != target) {
		long rc = syscall(SYS_dup3, fd, target, 0);
		int e = errno;
		syscall(SYS_close, fd);
		if (rc < 0)
			return e;
	} else if (syscall(SYS_fcntl, fd, F_SETFD, 0) < 0) {
		return errno;
	}
	return 0;
}

// cloexec_from marks every fd >= lo close-on-exec.
static int cloexec_from(unsigned lo) {
	if (syscall(SYS_close_range, lo, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	if (errno == EINVAL) { // kernel 5.9/5.10: no CLOSE_RANGE_CLOEXEC
		if (syscall(SYS_close_range, lo, ~0U, 0) == 0)
			return 0;
	}
	if (errno != ENOSYS && errno != EINVAL)
		return errno;
	// Before 5.9: walk /proc/self/fd.
	long dfd = syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno;
	char buf[1024];
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
		if (n < 0) {
			int e = errno;
			syscall(SYS_close, dfd);
			return e;
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
				syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
		}
	}
	syscall(SYS_close, dfd);
	return 0;
}

static int child_main(void *arg) {
	struct child_ctx *c = arg;
	struct sockd_req *r = c->r;
	const char *strs = c->strs;

	// Started with CLONE_FILES: the fd table is still the parent's. Take a
	// private copy of only the low fds (0..unshare_from-1, where the parent
	// put every fd this child needs), so a daemon holding 10,000 sockets does
	// not copy and then close 10,000 fds per start. Nothing before this line
	// may touch an fd.
	if ((r->flags & SOCKD_SHARED_FILES) &&
	    syscall(SYS_close_range, (unsigned)r->unshare_from, ~0U, CLOSE_RANGE_UNSHARE) < 0)
		child_fail(r, SOCKD_ST_UNSHARE_FILES, errno);

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
				syscall(SYS_rt_sigaction, s, act, NULL, KSIGSET_SIZE);
			}
		} else {
			uint64_t ign = r->sigign;
			for (int s = 1; ign != 0 && s < KNSIG; s++, ign >>= 1) {
				if ((ign & 1) && s != SIGKILL && s != SIGSTOP)
					syscall(SYS_rt_sigaction, s, act, NULL, KSIGSET_SIZE);
			}
		}
		uint64_t empty = 0;
		if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, KSIGSET_SIZE) < 0)
			child_fail(r, SOCKD_ST_SIGMASK, errno);
	}

	if (r->flags & SOCKD_SETSID) {
		if (syscall(SYS_setsid) < 0)
			child_fail(r, SOCKD_ST_SETSID, errno);
	} else if (syscall(SYS_setpgid, 0, 0) < 0) {
		child_fail(r, SOCKD_ST_SETPGID, errno);
	}

	if ((r->flags & SOCKD_NICE) && syscall(SYS_setpriority, PRIO_PROCESS, 0, r->nice) < 0)
		child_fail(r, SOCKD_ST_NICE, errno);

	for (int i = 0; i < r->nrlimits; i++) {
		const struct sockd_rlimit *l = &c->rl[i];
		struct krlimit k = {l->soft, l->hard};
		if (!l->set_soft || !l->set_hard) {
			struct krlimit cur;
			if (syscall(SYS_prlimit64, 0, l->resource, NULL, &cur) < 0) {
				r->rl_index = i;
				child_fail(r, SOCKD_ST_GETRLIMIT, errno);
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
		if (syscall(SYS_prlimit64, 0, l->resource, &k, NULL) < 0) {
			r->rl_index = i;
			child_fail(r, SOCKD_ST_SETRLIMIT, errno);
		}
	}

	if (r->root_off >= 0) {
		if (syscall(SYS_chroot, strs + r->root_off) < 0)
			child_fail(r, SOCKD_ST_CHROOT, errno);
		if (syscall(SYS_chdir, "/") < 0)
			child_fail(r, SOCKD_ST_CHDIR_ROOT, errno);
	}

	if (r->flags & SOCKD_CREDS) {
		if (syscall(SYS_SETGROUPS, (long)r->ngroups, c->groups) < 0)
			child_fail(r, SOCKD_ST_SETGROUPS, errno);
		if (syscall(SYS_SETRESGID, (long)r->gid, (long)r->gid, (long)r->gid) < 0)
			child_fail(r, SOCKD_ST_SETGID, errno);
		if (syscall(SYS_SETRESUID, (long)r->uid, (long)r->uid, (long)r->uid) < 0)
			child_fail(r, SOCKD_ST_SETUID, errno);
	}

	if (r->flags & SOCKD_UMASK)
		syscall(SYS_umask, (long)r->umask);

	if (r->cwd_off >= 0 && syscall(SYS_chdir, strs + r->cwd_off) < 0)
		child_fail(r, SOCKD_ST_CHDIR, errno);

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
			long t = syscall(SYS_fcntl, (long)c->fds[i], F_DUPFD_CLOEXEC, (long)n);
			if (t < 0)
				child_fail(r, SOCKD_ST_DUP, errno);
			tmp[i] = (int)t;
		}
		for (int i = 0; i < n; i++)
			if (syscall(SYS_dup3, (long)tmp[i], (long)i, 0L) < 0)
				child_fail(r, SOCKD_ST_DUP2, errno);
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
		long pid = syscall(SYS_getpid);
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

	syscall(SYS_execve, strs + r->path_off, c->argv, c->envp);
	child_fail(r, SOCKD_ST_EXEC, errno);
	return 127;
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
	const char *p = argbuf;
	for (int i = 0; i < argc; i++) {
		argv[i] = (char *)p;
		p += strlen(p) + 1;
	}
	argv[argc] = NULL;
	char **envp = argv + argc + 1;
	int k = 0;
	for (int i = 0; i < envc; i++) {
		uint32_t e = envent[i];
		envp[k++] = (char *)((e & SOCKD_ENV_EXTRA) ? envextra + (e & ~SOCKD_ENV_EXTRA) : envbase + e);
	}
	char lpslot[48] = "LISTEN_PID=";
	if (r->flags & SOCKD_LISTEN_PID)
		envp[k++] = lpslot;
	envp[k] = NULL;

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
