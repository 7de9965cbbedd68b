// The interface between spawn_linux.go and the C spawner in spawn_linux.c.

#ifndef SOCKD_SPAWN_LINUX_H
#define SOCKD_SPAWN_LINUX_H

#include <stdint.h>

// Flags of struct sockd_req.flags.
enum {
	SOCKD_SETSID     = 1 << 0, // setsid() instead of setpgid(0, 0)
	SOCKD_NICE       = 1 << 1, // setpriority(PRIO_PROCESS, 0, nice)
	SOCKD_UMASK      = 1 << 2, // umask(umask)
	SOCKD_CREDS      = 1 << 3, // setgroups, setresgid, setresuid
	SOCKD_LISTEN_PID = 1 << 4, // add LISTEN_PID=<own pid> to the environment
	SOCKD_SHARED_FILES = 1 << 5, // clone with CLONE_FILES; the child unshares
	                             // keeping only fds below unshare_from
	SOCKD_ASYNC      = 1 << 6, // do not wait for the child's execve (see
	                           // sockd_spawn)
};

// Stages a start can fail at (struct sockd_req.stage). 0 means success.
enum {
	SOCKD_ST_OK = 0,
	SOCKD_ST_CLONE,
	SOCKD_ST_SIGMASK,
	SOCKD_ST_SETSID,
	SOCKD_ST_SETPGID,
	SOCKD_ST_NICE,
	SOCKD_ST_GETRLIMIT,
	SOCKD_ST_SETRLIMIT,
	SOCKD_ST_CHROOT,
	SOCKD_ST_CHDIR_ROOT,
	SOCKD_ST_SETGROUPS,
	SOCKD_ST_SETGID,
	SOCKD_ST_SETUID,
	SOCKD_ST_CHDIR,
	SOCKD_ST_DUP,
	SOCKD_ST_DUP2,
	SOCKD_ST_STDIN,
	SOCKD_ST_STDOUT,
	SOCKD_ST_STDERR,
	SOCKD_ST_CLOSE_RANGE,
	SOCKD_ST_EXEC,
	SOCKD_ST_NOMEM,
	SOCKD_ST_UNSHARE_FILES,
};

#define SOCKD_MAX_RLIMITS 16

// One resource limit to apply. set_soft/set_hard say which half is given;
// the other half is read from the current limit.
struct sockd_rlimit {
	int32_t resource;
	int32_t set_soft;
	int32_t set_hard;
	int32_t _pad;
	uint64_t soft;
	uint64_t hard;
};

// The request shared between the parent and the vfork child. It holds no
// pointers: strings live in the buffers passed beside it (offsets into the
// template string buffer, -1 when unset), so Go may pass it under the cgo
// pointer rules.
struct sockd_req {
	// Fixed at template build.
	int32_t path_off;
	int32_t root_off;
	int32_t cwd_off;
	int32_t stdin_off;
	int32_t stdout_off;
	int32_t stderr_off;
	int32_t flags;
	int32_t nice;
	uint32_t umask;
	uint32_t uid;
	uint32_t gid;
	int32_t ngroups;
	int32_t nrlimits; // entries of the rl array passed to sockd_spawn
	int32_t unshare_from; // SOCKD_SHARED_FILES: first fd the child does not copy

	// Per start.
	int32_t argc;  // NUL-terminated strings in argbuf
	int32_t envc;  // entries in envent
	int32_t nfds;  // fds[i] becomes fd i
	int32_t _pad2;
	uint64_t sigign; // bit s-1: signal s is SIG_IGN in the parent
	// Sizes of the buffers passed to sockd_spawn (SOCKD_ASYNC copies them).
	uint32_t strs_len;
	uint32_t arg_len;
	uint32_t envbase_len;
	uint32_t extra_len;

	// Results.
	int32_t pid;
	int32_t pidfd;
	int32_t stage;     // SOCKD_ST_*, 0 on success
	int32_t err;       // errno of the failed stage
	int32_t rl_index;  // which rlimit failed
	int32_t warn_stage[3]; // non-fatal StandardIn/Out/ErrorPath failures
	int32_t warn_err[3];
	int32_t slot;      // SOCKD_ASYNC start: the slot holding the child's
	uint32_t gen;      // copy of the request, and its generation; slot -1
	                   // when the start was made synchronously
};

// Env entries: an offset into envbase, or SOCKD_ENV_EXTRA|offset into
// envextra.
#define SOCKD_ENV_EXTRA 0x80000000u

// Tests: nonzero makes every start use clone and the full signal reset.
extern int sockd_force_fallback;

int sockd_spawn(struct sockd_req *r, const char *strs, const char *argbuf,
		const char *envbase, const char *envextra,
		const uint32_t *envent, const int32_t *fds, const uint32_t *groups,
		const struct sockd_rlimit *rl);

// sockd_async_result collects the outcome of a SOCKD_ASYNC start whose
// child has exited: the stage and errno of a failure before execve (stage
// 0 when the child exec'd, or when the slot was already reused, which only
// happens after a successful execve). It frees the slot.
void sockd_async_result(int32_t slot, uint32_t gen, int32_t *stage, int32_t *err, int32_t *rl_index);

// Tests: slots whose child has not exec'd or whose failure is uncollected.
int sockd_async_stuck(void);

// User database lookups for template building (not the hot path).
// Return 0, ENOENT when the name is unknown, or an errno.
int sockd_lookup_user(const char *name, uint32_t *uid, uint32_t *gid,
		      char *home, int homelen, char *shell, int shelllen);
int sockd_lookup_group(const char *name, uint32_t *gid);
// sockd_grouplist is initgroups(3)'s list: gid plus every group listing
// the user. Returns the count (may exceed max: call again larger) or -1.
int sockd_grouplist(const char *name, uint32_t gid, uint32_t *groups, int max);

// sockd_default_sigchld sets SIGCHLD to SIG_DFL. Returns 0 or an errno.
int sockd_default_sigchld(void);

#endif
