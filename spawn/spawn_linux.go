//go:build linux && cgo

package spawn

/*
#cgo CFLAGS: -O2 -Wall -Wextra -Wno-unused-parameter
#include <stdlib.h>
#include "spawn_linux.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/privilege"
	"github.com/sockd/sockd/job"
)

// Template is everything fixed at load for one job's process. It is
// immutable after NewTemplate and safe for concurrent Starts.
type Template struct {
	label string
	path  string

	// argv as a flat buffer of NUL-terminated strings, and as words for
	// EnableGlobbing (expanded per start).
	argbuf []byte
	argc   int
	argv   []string
	glob   bool
	home   string          // ~ in globbing
	fcreds *privilege.Cred // globbing as the job's user (root sockd, UserName set)

	// The environment: flat buffer, offsets of each entry, name -> entry.
	envbuf   []byte
	envOff   []uint32
	envIndex map[string]int

	strs   []byte                  // path, root, cwd and standard paths, NUL-terminated
	groups []uint32                // supplementary groups when credentials are set
	rnames []string                // launchd names of rl[i]
	rl     []C.struct_sockd_rlimit // resource limits; nil for most jobs
	req    C.struct_sockd_req
}

// rlPtr is the C pointer to the first resource limit, or nil.
func rlPtr(rl []C.struct_sockd_rlimit) *C.struct_sockd_rlimit {
	if len(rl) == 0 {
		return nil
	}
	return &rl[0]
}

// Label is the job's label.
func (t *Template) Label() string { return t.label }

// sharedEnv is one environment, shared by every template that has it: the
// same environment is held once however many jobs use it (10,000 jobs with
// sockd's environment cost one copy, not 10,000). The buffers are never
// written after they are built.
type sharedEnv struct {
	buf   []byte
	off   []uint32
	index map[string]int
}

var (
	envCacheMu sync.Mutex
	envCache   = map[string]*sharedEnv{}
	// envBuilt remembers, for the inputs of an environment, which shared
	// environment they gave: with thousands of jobs on one base
	// environment, building each from scratch (to find it in envCache)
	// was most of the templates' cost and much of start-up's garbage.
	envBuilt = map[envInputs]*sharedEnv{}
)

// envInputs identifies what a template's environment is built from. The
// base environment counts by identity (its backing array and length):
// Options.BaseEnv is not modified once used.
type envInputs struct {
	base              *string
	baseLen           int
	user, home, shell string
	vars              string // the job's variables, NUL-separated
}

// templateEnv returns the shared environment for base, the user's
// variables and the job's.
func templateEnv(base []string, u *userEnv, jobVars [][2]string) ([]byte, []uint32, map[string]int) {
	key := envInputs{base: unsafe.SliceData(base), baseLen: len(base)}
	if u != nil {
		key.user, key.home, key.shell = u.name, u.home, u.shell
	}
	if len(jobVars) > 0 {
		var b strings.Builder
		for _, nv := range jobVars {
			b.WriteString(nv[0])
			b.WriteByte(0)
			b.WriteString(nv[1])
			b.WriteByte(0)
		}
		key.vars = b.String()
	}
	envCacheMu.Lock()
	e, ok := envBuilt[key]
	envCacheMu.Unlock()
	if ok {
		return e.buf, e.off, e.index
	}
	env := buildEnv(base, u, jobVars)
	var flat []byte
	var off []uint32
	for _, kv := range env.kv {
		if noNUL(kv) != nil {
			continue // cannot be passed; os.Environ never has one
		}
		off = append(off, uint32(len(flat)))
		flat = append(append(flat, kv...), 0)
	}
	buf, off, index := internEnv(flat, off)
	envCacheMu.Lock()
	if len(envBuilt) >= 256 {
		// Many distinct inputs (callers passing a fresh os.Environ() each
		// time, or hundreds of jobs with variables of their own): start
		// over rather than grow without bound; it only costs rebuilds.
		clear(envBuilt)
	}
	envBuilt[key] = &sharedEnv{buf: buf, off: off, index: index}
	envCacheMu.Unlock()
	return buf, off, index
}

// internEnv returns the shared copy of an environment (flat NUL-terminated
// entries at offsets off). Entries are never evicted: there are as many as
// distinct environments ever loaded, a handful in practice.
func internEnv(flat []byte, off []uint32) ([]byte, []uint32, map[string]int) {
	envCacheMu.Lock()
	defer envCacheMu.Unlock()
	if e, ok := envCache[string(flat)]; ok {
		return e.buf, e.off, e.index
	}
	e := &sharedEnv{buf: flat, off: off, index: make(map[string]int, len(off))}
	for i, o := range off {
		e.index[envName(envValueEntry(flat, o))] = i
	}
	envCache[string(flat)] = e
	return e.buf, e.off, e.index
}

// envValueEntry is the NAME=value entry at offset o of a flat buffer.
func envValueEntry(flat []byte, o uint32) string {
	end := bytes.IndexByte(flat[o:], 0)
	return string(flat[o : int(o)+end])
}

// Path is the executable started.
func (t *Template) Path() string { return t.path }

// Env returns a copy of the environment every start gets (before the
// per-start variables).
func (t *Template) Env() []string {
	out := make([]string, 0, len(t.envOff))
	for _, off := range t.envOff {
		end := bytes.IndexByte(t.envbuf[off:], 0)
		out = append(out, string(t.envbuf[int(off):int(off)+end]))
	}
	return out
}

const (
	prioMin = -20
	prioMax = 20
)

// keyError is a failure of one job key.
type keyError struct {
	key string
	err error
}

// ownCredentials checks a job for a sockd not running as root, which runs
// it as itself: a UserName other than sockd's own user, a GroupName other
// than its own group, or a RootDirectory would run it wider than its file
// says, so the job is refused. It returns the user UserName names.
func ownCredentials(userName, groupName, rootDir string) (*userInfo, *keyError) {
	var u *userInfo
	if userName != "" {
		info, err := lookupUser(userName)
		if err != nil {
			return nil, &keyError{"UserName", err}
		}
		if int(info.uid) != os.Geteuid() {
			return nil, &keyError{"UserName", fmt.Errorf("%q is not the user sockd runs as (uid %d), and sockd is not running as root, so it cannot run the job as that user", userName, os.Geteuid())}
		}
		u = &info
	}
	if groupName != "" {
		gid, err := lookupGroup(groupName)
		if err != nil {
			return nil, &keyError{"GroupName", err}
		}
		if int(gid) != os.Getegid() {
			return nil, &keyError{"GroupName", fmt.Errorf("%q is not the group sockd runs with (gid %d), and sockd is not running as root, so it cannot run the job with that group", groupName, os.Getegid())}
		}
	}
	if rootDir != "" {
		return nil, &keyError{"RootDirectory", fmt.Errorf("%q needs a sockd running as root (chroot(2))", rootDir)}
	}
	return u, nil
}

// NewTemplate prepares the start of j's process: argv, environment, user
// and group lookups, limits. It returns warnings for attributes it ignores.
func NewTemplate(j *job.Job, opts Options) (*Template, []string, error) {
	if j == nil {
		return nil, nil, errors.New("spawn: nil job")
	}
	t := &Template{label: j.Label, glob: j.EnableGlobbing}
	var warns []string
	warn := func(format string, a ...any) {
		warns = append(warns, fmt.Sprintf("job %s: ", j.Label)+fmt.Sprintf(format, a...))
	}
	fail := func(key string, err error) (*Template, []string, error) {
		return nil, warns, fmt.Errorf("job %s: %s: %w", j.Label, key, err)
	}

	// argv and path.
	argv := j.Argv
	if len(argv) == 0 {
		argv = j.ProgramArguments
	}
	if len(argv) == 0 && j.Program != "" {
		argv = []string{j.Program}
	}
	if len(argv) == 0 {
		return fail("ProgramArguments", errors.New("no Program or ProgramArguments"))
	}
	t.path = j.Path
	if t.path == "" {
		name := j.Program
		if name == "" {
			name = argv[0]
		}
		p, err := exec.LookPath(name)
		if err != nil {
			return fail("Program", err)
		}
		t.path = p
	}
	for i, a := range argv {
		if err := noNUL(a); err != nil {
			return fail(fmt.Sprintf("ProgramArguments[%d]", i), err)
		}
	}
	t.argv = append([]string(nil), argv...)
	for _, a := range argv {
		t.argbuf = append(append(t.argbuf, a...), 0)
	}
	t.argc = len(argv)

	// Credentials.
	req := &t.req
	userName, groupName := j.UserName, j.GroupName
	var uenv *userEnv
	rootDir := j.RootDirectory
	if !opts.AsRoot {
		u, err := ownCredentials(userName, groupName, rootDir)
		if err != nil {
			return fail(err.key, err.err)
		}
		if u != nil {
			uenv = &userEnv{name: userName, home: u.home, shell: u.shell}
		}
	} else {
		if groupName != "" && userName == "" {
			userName = "root" // launchd: GroupName alone makes the user root
		}
		if userName != "" {
			u, err := lookupUser(userName)
			if err != nil {
				return fail("UserName", err)
			}
			gid := u.gid
			if groupName != "" {
				g, err := lookupGroup(groupName)
				if err != nil {
					return fail("GroupName", err)
				}
				gid = g
			}
			groups := []uint32{gid}
			if j.InitGroups {
				if groups, err = groupList(userName, gid); err != nil {
					return fail("InitGroups", err)
				}
			}
			t.groups = groups
			req.uid, req.gid = C.uint32_t(u.uid), C.uint32_t(gid)
			req.ngroups = C.int32_t(len(groups))
			req.flags |= C.SOCKD_CREDS
			uenv = &userEnv{name: userName, home: u.home, shell: u.shell}
			if j.EnableGlobbing && opts.AsRoot {
				t.fcreds = &privilege.Cred{UID: u.uid, GID: gid, Groups: groups}
			}
		}
	}
	if uenv != nil {
		t.home = uenv.home
	}

	// Environment.
	jobVars := make([][2]string, 0, len(j.EnvironmentVariables))
	for _, v := range j.EnvironmentVariables {
		if v.Name == "" || strings.ContainsAny(v.Name, "=\x00") {
			return fail("EnvironmentVariables", fmt.Errorf("bad variable name %q", v.Name))
		}
		if err := noNUL(v.Value); err != nil {
			return fail("EnvironmentVariables."+v.Name, err)
		}
		jobVars = append(jobVars, [2]string{v.Name, v.Value})
	}
	t.envbuf, t.envOff, t.envIndex = templateEnv(opts.BaseEnv, uenv, jobVars)
	if t.home == "" {
		if i, ok := t.envIndex["HOME"]; ok {
			t.home = envValueAt(t.envbuf, t.envOff[i])
		}
	}

	// Strings the child needs.
	addStr := func(key, s string) (C.int32_t, error) {
		if s == "" {
			return -1, nil
		}
		if err := noNUL(s); err != nil {
			return -1, fmt.Errorf("job %s: %s: %w", j.Label, key, err)
		}
		off := len(t.strs)
		t.strs = append(append(t.strs, s...), 0)
		return C.int32_t(off), nil
	}
	var err error
	if req.path_off, err = addStr("Program", t.path); err != nil {
		return nil, warns, err
	}
	if req.root_off, err = addStr("RootDirectory", rootDir); err != nil {
		return nil, warns, err
	}
	if req.cwd_off, err = addStr("WorkingDirectory", j.WorkingDirectory); err != nil {
		return nil, warns, err
	}
	if req.stdin_off, err = addStr("StandardInPath", j.StandardInPath); err != nil {
		return nil, warns, err
	}
	if req.stdout_off, err = addStr("StandardOutPath", j.StandardOutPath); err != nil {
		return nil, warns, err
	}
	if req.stderr_off, err = addStr("StandardErrorPath", j.StandardErrorPath); err != nil {
		return nil, warns, err
	}

	// Process attributes.
	if j.SessionCreate {
		req.flags |= C.SOCKD_SETSID
	}
	if j.Nice != nil {
		if n := *j.Nice; n < prioMin || n > prioMax {
			warn("Nice %d ignored: outside %d..%d", n, prioMin, prioMax)
		} else {
			req.flags |= C.SOCKD_NICE
			req.nice = C.int32_t(n)
		}
	}
	if j.Umask != nil {
		req.flags |= C.SOCKD_UMASK
		req.umask = C.uint32_t(*j.Umask & 0o777)
	}
	if err := t.setLimits(j); err != nil {
		return fail("ResourceLimits", err)
	}
	return t, warns, nil
}

// setLimits merges SoftResourceLimits and HardResourceLimits by resource,
// in the order first seen.
func (t *Template) setLimits(j *job.Job) error {
	find := func(l job.RLimit) (*C.struct_sockd_rlimit, error) {
		for i := range t.rl {
			if int(t.rl[i].resource) == l.Resource {
				return &t.rl[i], nil
			}
		}
		if len(t.rl) == C.SOCKD_MAX_RLIMITS {
			return nil, fmt.Errorf("too many resource limits")
		}
		if l.Resource < 0 || l.Resource > math.MaxInt32 {
			return nil, fmt.Errorf("%s: bad resource %d", l.Name, l.Resource)
		}
		t.rl = append(t.rl, C.struct_sockd_rlimit{resource: C.int32_t(l.Resource)})
		name := l.Name
		if name == "" {
			name = fmt.Sprintf("resource %d", l.Resource)
		}
		t.rnames = append(t.rnames, name)
		t.req.nrlimits = C.int32_t(len(t.rl))
		return &t.rl[len(t.rl)-1], nil
	}
	for _, l := range j.SoftResourceLimits {
		r, err := find(l)
		if err != nil {
			return err
		}
		r.set_soft, r.soft = 1, C.uint64_t(l.Value)
	}
	for _, l := range j.HardResourceLimits {
		r, err := find(l)
		if err != nil {
			return err
		}
		r.set_hard, r.hard = 1, C.uint64_t(l.Value)
	}
	return nil
}

// inheritedIgnored holds the job-control signals sockd inherited as
// SIG_IGN. The Go runtime installs no handler for them (unless notified)
// and does not record them as ignored, so they are read once here.
var inheritedIgnored = func() uint64 {
	var m uint64
	for _, sig := range []unix.Signal{unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU} {
		var old [4]uint64 // kernel struct sigaction; the handler comes first
		_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0)
		if e == 0 && old[0] == 1 { // SIG_IGN
			m |= 1 << (uint(sig) - 1)
		}
	}
	return m
}()

// ignoredSignals is the set of signals that are SIG_IGN in sockd (bit s-1
// for signal s): the child resets them to SIG_DFL. Handled signals are
// reset by the kernel (CLONE_CLEAR_SIGHAND). Every other signal of a Go
// program is either handled by the runtime or recorded by os/signal as
// ignored (signal.Ignore, or SIGHUP/SIGINT inherited ignored).
func ignoredSignals() uint64 {
	m := inheritedIgnored
	for sig := 1; sig < 65; sig++ {
		if signal.Ignored(syscall.Signal(sig)) {
			m |= 1 << (uint(sig) - 1)
		}
	}
	return m
}

// asyncStuck counts the asynchronous-start slots still held (for tests).
func asyncStuck() int { return int(C.sockd_async_stuck()) }

// fallbackForced reports setForceFallback(true) (tests).
func fallbackForced() bool { return C.sockd_force_fallback != 0 }

// setForceFallback makes starts use clone with the full signal reset
// instead of clone3 with CLONE_CLEAR_SIGHAND (for tests).
func setForceFallback(on bool) {
	if on {
		C.sockd_force_fallback = 1
	} else {
		C.sockd_force_fallback = 0
	}
}

// scratch is the per-start working memory, pooled so that a start does
// not allocate beyond its Process.
type scratch struct {
	req    C.struct_sockd_req
	fds    []int32
	argbuf []byte
	words  []string
	extra  []byte
	ent    []uint32
	skip   []bool
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxFds bounds the descriptors handed to one child.
const maxFds = 1 << 16

// Start starts one process. fds[i] becomes fd i in the child; fds 0, 1 and
// 2 must be given (pass an fd of /dev/null where nothing is wanted). The
// descriptors' open file status flags (O_NONBLOCK) are left as they are.
// extraEnv are "NAME=value" strings added last, replacing a variable of the
// same name; listenPID adds LISTEN_PID=<child pid>.
//
// A failure in the child before or at execve returns a *StartError; the
// child has then been reaped already.
func (t *Template) Start(fds []int, extraEnv []string, listenPID bool) (*Process, error) {
	return t.start(fds, extraEnv, listenPID, false)
}

// StartAsync is Start without waiting for the child's execve: it returns
// once the child exists, so the caller's thread is not suspended for the
// length of the exec (CLONE_VFORK), and the caller may close the fds it
// passed at once. A failure in the child before or at execve is not
// returned here: the child exits with status 127 and Reap reports the
// failure in ExitStatus.StartErr. Warnings about StandardIn/Out/ErrorPath
// are not reported. Where an asynchronous start is not possible (no
// clone3) it is made synchronously, with Start's error reporting.
func (t *Template) StartAsync(fds []int, extraEnv []string) (*Process, error) {
	return t.start(fds, extraEnv, false, true)
}

// expand globs the template's argv into s.words, with the job's
// credentials (privilege.RunAs) when it runs as another user: sockd lists
// directories only as the job could.
func (t *Template) expand(s *scratch) error {
	glob := func() {
		s.words = s.words[:0]
		for _, w := range t.argv {
			s.words = globWord(s.words, w, t.home, lookupHome)
		}
	}
	if t.fcreds == nil {
		glob()
		return nil
	}
	return privilege.RunAs(*t.fcreds, glob)
}

func (t *Template) start(fds []int, extraEnv []string, listenPID, async bool) (*Process, error) {
	if len(fds) < 3 || len(fds) > maxFds {
		return nil, &StartError{Label: t.label, Path: t.path, Stage: "fd layout", Err: fmt.Errorf("%d fds given, need 3..%d", len(fds), maxFds)}
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.req = t.req

	s.fds = s.fds[:0]
	for _, fd := range fds {
		if fd < 0 || fd > math.MaxInt32 {
			return nil, &StartError{Label: t.label, Path: t.path, Stage: "fd layout", Err: unix.EBADF}
		}
		s.fds = append(s.fds, int32(fd))
	}
	// Shared fd table: the child copies only the low fds, so the sources
	// above them are first put on reserved low slots.
	set := lowSlots.take(s.fds)
	if set != nil {
		defer lowSlots.give(set)
		s.req.flags |= C.SOCKD_SHARED_FILES
		s.req.unshare_from = C.int32_t(lowSlots.limit)
	}

	argbuf, argc := t.argbuf, t.argc
	if t.glob {
		if err := t.expand(s); err != nil {
			return nil, &StartError{Label: t.label, Path: t.path, Stage: "EnableGlobbing", Err: err}
		}
		s.argbuf = s.argbuf[:0]
		for _, w := range s.words {
			s.argbuf = append(append(s.argbuf, w...), 0)
		}
		argbuf, argc = s.argbuf, len(s.words)
		clear(s.words)
	}

	// Environment: the template's entries not replaced by an extra one,
	// then the extras.
	s.extra = s.extra[:0]
	s.ent = s.ent[:0]
	if cap(s.skip) < len(t.envOff) {
		s.skip = make([]bool, len(t.envOff))
	}
	s.skip = s.skip[:len(t.envOff)]
	nskip := 0
	for _, kv := range extraEnv {
		name := envName(kv)
		if name == kv || name == "" || (listenPID && name == "LISTEN_PID") {
			continue
		}
		if i, ok := t.envIndex[name]; ok && !s.skip[i] {
			s.skip[i] = true
			nskip++
		}
	}
	for i, off := range t.envOff {
		if nskip > 0 && s.skip[i] {
			continue
		}
		s.ent = append(s.ent, off)
	}
	if nskip > 0 {
		clear(s.skip)
	}
	for _, kv := range extraEnv {
		name := envName(kv)
		if name == kv || name == "" || (listenPID && name == "LISTEN_PID") {
			continue
		}
		if err := noNUL(kv); err != nil {
			return nil, &StartError{Label: t.label, Path: t.path, Stage: "environment", Err: err}
		}
		if len(s.extra) >= C.SOCKD_ENV_EXTRA {
			return nil, &StartError{Label: t.label, Path: t.path, Stage: "environment", Err: unix.E2BIG}
		}
		s.ent = append(s.ent, uint32(len(s.extra))|C.SOCKD_ENV_EXTRA)
		s.extra = append(append(s.extra, kv...), 0)
	}

	s.req.argc = C.int32_t(argc)
	s.req.envc = C.int32_t(len(s.ent))
	s.req.nfds = C.int32_t(len(s.fds))
	if listenPID {
		s.req.flags |= C.SOCKD_LISTEN_PID
	}
	s.req.sigign = C.uint64_t(ignoredSignals())
	if async {
		s.req.flags |= C.SOCKD_ASYNC
	}
	s.req.strs_len = C.uint32_t(len(t.strs))
	s.req.arg_len = C.uint32_t(len(argbuf))
	s.req.envbase_len = C.uint32_t(len(t.envbuf))
	s.req.extra_len = C.uint32_t(len(s.extra))

	rc := C.sockd_spawn(&s.req,
		(*C.char)(bytesPtr(t.strs)),
		(*C.char)(bytesPtr(argbuf)),
		(*C.char)(bytesPtr(t.envbuf)),
		(*C.char)(bytesPtr(s.extra)),
		(*C.uint32_t)(u32Ptr(s.ent)),
		(*C.int32_t)(unsafe.Pointer(&s.fds[0])),
		(*C.uint32_t)(u32Ptr(t.groups)),
		rlPtr(t.rl))
	if rc != 0 {
		if int(s.req.stage) == C.SOCKD_ST_UNSHARE_FILES {
			// A kernel without CLOSE_RANGE_UNSHARE (before 5.9): copy the
			// whole table from now on.
			lowSlots.disable()
			return t.start(fds, extraEnv, listenPID, async)
		}
		return nil, &StartError{Label: t.label, Path: t.path, Stage: t.stageName(int(s.req.stage), int(s.req.rl_index)), Err: unix.Errno(s.req.err)}
	}
	p := &Process{Pid: int(s.req.pid), Started: time.Now(), pidfd: int(s.req.pidfd), slot: -1}
	if s.req.slot >= 0 {
		p.slot, p.gen, p.tmpl = int32(s.req.slot), uint32(s.req.gen), t
	}
	for i := 0; i < 3; i++ {
		if st := int(s.req.warn_stage[i]); st != 0 {
			p.Warnings = append(p.Warnings, &StartError{Label: t.label, Path: t.path, Stage: t.stageName(st, -1), Err: unix.Errno(s.req.warn_err[i])})
		}
	}
	return p, nil
}

// stageName describes a failed stage of the C spawner.
func (t *Template) stageName(stage, rl int) string {
	str := func(off C.int32_t) string {
		if off < 0 {
			return ""
		}
		end := bytes.IndexByte(t.strs[off:], 0)
		return string(t.strs[int(off) : int(off)+end])
	}
	switch stage {
	case C.SOCKD_ST_UNSHARE_FILES:
		return "unshare fd table"
	case C.SOCKD_ST_CLONE:
		return "clone"
	case C.SOCKD_ST_SIGMASK:
		return "sigprocmask"
	case C.SOCKD_ST_SETSID:
		return "setsid"
	case C.SOCKD_ST_SETPGID:
		return "setpgid"
	case C.SOCKD_ST_NICE:
		return fmt.Sprintf("setpriority %d", int(t.req.nice))
	case C.SOCKD_ST_GETRLIMIT, C.SOCKD_ST_SETRLIMIT:
		name := "resource limit"
		if rl >= 0 && rl < len(t.rnames) {
			name = t.rnames[rl]
		}
		if stage == C.SOCKD_ST_GETRLIMIT {
			return "getrlimit " + name
		}
		return "setrlimit " + name
	case C.SOCKD_ST_CHROOT:
		return "chroot " + str(t.req.root_off)
	case C.SOCKD_ST_CHDIR_ROOT:
		return "chdir / in RootDirectory"
	case C.SOCKD_ST_SETGROUPS:
		return "setgroups"
	case C.SOCKD_ST_SETGID:
		return fmt.Sprintf("setresgid %d", uint32(t.req.gid))
	case C.SOCKD_ST_SETUID:
		return fmt.Sprintf("setresuid %d", uint32(t.req.uid))
	case C.SOCKD_ST_CHDIR:
		return "chdir " + str(t.req.cwd_off)
	case C.SOCKD_ST_DUP, C.SOCKD_ST_DUP2:
		return "fd layout"
	case C.SOCKD_ST_STDIN:
		return "open StandardInPath " + str(t.req.stdin_off)
	case C.SOCKD_ST_STDOUT:
		return "open StandardOutPath " + str(t.req.stdout_off)
	case C.SOCKD_ST_STDERR:
		return "open StandardErrorPath " + str(t.req.stderr_off)
	case C.SOCKD_ST_CLOSE_RANGE:
		return "close_range"
	case C.SOCKD_ST_EXEC:
		return "execve"
	case C.SOCKD_ST_NOMEM:
		return "malloc"
	}
	return fmt.Sprintf("stage %d", stage)
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func u32Ptr(b []uint32) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func noNUL(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return errors.New("contains a NUL byte")
		}
	}
	return nil
}

func envValueAt(buf []byte, off uint32) string {
	end := bytes.IndexByte(buf[off:], 0)
	kv := string(buf[int(off) : int(off)+end])
	_, v, _ := cutEq(kv)
	return v
}

func cutEq(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// Process is one started process.
type Process struct {
	Pid int
	// Started is when the process had exec'd, or, for StartAsync, when
	// it was created (monotonic clock reading included).
	Started time.Time
	// Warnings are non-fatal start problems: a StandardInPath,
	// StandardOutPath or StandardErrorPath that could not be opened (the
	// descriptor then keeps what the caller passed, as in launchd).
	Warnings []error

	mu     sync.Mutex
	pidfd  int // -1 once reaped
	status ExitStatus
	reaped bool

	// An asynchronous start: the spawner slot that holds the outcome of
	// the child's exec, its generation, and the template (for messages).
	slot int32
	gen  uint32
	tmpl *Template
}

// Pidfd is the process's pidfd: readable (epoll) when the process exits.
// It is -1 once Reap has collected the status.
func (p *Process) Pidfd() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pidfd
}

// Signal sends sig to the process through its pidfd. It returns nil when
// the process has already exited.
func (p *Process) Signal(sig unix.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd < 0 {
		return nil
	}
	if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("pid %d: pidfd_send_signal %v: %w", p.Pid, unix.SignalName(sig), err)
	}
	return nil
}

// SignalGroup sends sig to the process group the process leads (every
// child is started in a group of its own). A group that no longer exists
// is not an error.
func (p *Process) SignalGroup(sig unix.Signal) error {
	if err := unix.Kill(-p.Pid, sig); err != nil && err != unix.ESRCH {
		return fmt.Errorf("process group %d: kill %v: %w", p.Pid, unix.SignalName(sig), err)
	}
	return nil
}

// sigchldInfo is struct siginfo_t as waitid fills it for a child.
type sigchldInfo struct {
	Signo  int32
	Errno  int32
	Code   int32
	_      int32
	Pid    int32
	UID    uint32
	Status int32
	_      [100]byte
}

const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// Reap collects the exit status without blocking: done is false while the
// process still runs. Once the status is collected the pidfd is closed and
// later calls return the same status.
func (p *Process) Reap() (ExitStatus, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return p.status, true, nil
	}
	var info sigchldInfo
	for {
		err := unix.Waitid(unix.P_PIDFD, p.pidfd, (*unix.Siginfo)(unsafe.Pointer(&info)), unix.WEXITED|unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ExitStatus{}, false, fmt.Errorf("pid %d: waitid: %w", p.Pid, err)
		}
		break
	}
	if info.Pid == 0 {
		return ExitStatus{}, false, nil
	}
	switch info.Code {
	case cldExited:
		p.status = ExitStatus{Code: int(info.Status)}
	case cldKilled, cldDumped:
		p.status = ExitStatus{Code: -1, Signal: unix.Signal(info.Status), CoreDumped: info.Code == cldDumped}
	default:
		p.status = ExitStatus{Code: int(info.Status)}
	}
	if p.slot >= 0 && p.status.Code == 127 {
		// The child of an asynchronous start exits 127 when it failed
		// before execve; its slot says whether it did.
		var stage, errno, rl C.int32_t
		C.sockd_async_result(C.int32_t(p.slot), C.uint32_t(p.gen), &stage, &errno, &rl)
		if stage != 0 {
			t := p.tmpl
			p.status.StartErr = &StartError{Label: t.label, Path: t.path, Stage: t.stageName(int(stage), int(rl)), Err: unix.Errno(errno)}
		}
	}
	p.tmpl = nil
	p.reaped = true
	unix.Close(p.pidfd)
	p.pidfd = -1
	return p.status, true, nil
}

// ---------------------------------------------------------------------------
// User database.

type userInfo struct {
	uid, gid    uint32
	home, shell string
}

func lookupUser(name string) (userInfo, error) {
	var u userInfo
	if err := noNUL(name); err != nil {
		return u, err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	home := make([]byte, 4096)
	shell := make([]byte, 4096)
	var uid, gid C.uint32_t
	rc := C.sockd_lookup_user(cname, &uid, &gid,
		(*C.char)(unsafe.Pointer(&home[0])), C.int(len(home)),
		(*C.char)(unsafe.Pointer(&shell[0])), C.int(len(shell)))
	switch {
	case rc == C.int(unix.ENOENT):
		return u, user.UnknownUserError(name)
	case rc != 0:
		return u, fmt.Errorf("looking up user %q: %w", name, unix.Errno(rc))
	}
	u.uid, u.gid = uint32(uid), uint32(gid)
	u.home = string(home[:bytes.IndexByte(home, 0)])
	u.shell = string(shell[:bytes.IndexByte(shell, 0)])
	return u, nil
}

func lookupGroup(name string) (uint32, error) {
	if err := noNUL(name); err != nil {
		return 0, err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var gid C.uint32_t
	rc := C.sockd_lookup_group(cname, &gid)
	switch {
	case rc == C.int(unix.ENOENT):
		return 0, user.UnknownGroupError(name)
	case rc != 0:
		return 0, fmt.Errorf("looking up group %q: %w", name, unix.Errno(rc))
	}
	return uint32(gid), nil
}

// groupList is initgroups(3)'s supplementary list for name with gid.
func groupList(name string, gid uint32) ([]uint32, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	groups := make([]uint32, 64)
	for tries := 0; tries < 4; tries++ {
		n := int(C.sockd_grouplist(cname, C.uint32_t(gid), (*C.uint32_t)(unsafe.Pointer(&groups[0])), C.int(len(groups))))
		if n < 0 {
			return nil, fmt.Errorf("getgrouplist %q: failed", name)
		}
		if n <= len(groups) {
			return groups[:n], nil
		}
		groups = make([]uint32, n+16)
	}
	return nil, fmt.Errorf("getgrouplist %q: list keeps growing", name)
}

// lookupHome resolves ~name in globbing.
func lookupHome(name string) (string, bool) {
	u, err := lookupUser(name)
	if err != nil {
		return "", false
	}
	return u.home, true
}

// QuietChildExits gives SIGCHLD its default disposition: the kernel
// discards it at once, and children still wait as zombies until they are
// reaped. Supervisors of this package learn of every exit from the child's
// pidfd, so the signal did nothing but wake some thread of the process and
// run the Go runtime's handler, once per exit — on the per-connection path,
// once per connection. It also undoes an inherited SIG_IGN, under which the
// kernel would reap children itself and their exit status would be lost.
// Call it once at start-up, in a process that does not use os/signal for
// SIGCHLD.
func QuietChildExits() error {
	if e := C.sockd_default_sigchld(); e != 0 {
		return fmt.Errorf("sigaction SIGCHLD: %w", syscall.Errno(e))
	}
	return nil
}

// Adopt takes over a child of this process that an earlier image of sockd
// started before it re-executed itself in place (sockd upgrade): the pid
// is still this process's child, unreaped, so its pidfd reports its exit
// and Reap collects its status as for any start. started is when it
// started, as the earlier image knew it.
func Adopt(pid int, started time.Time) (*Process, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pid %d: pidfd_open: %w", pid, err)
	}
	return &Process{Pid: pid, Started: started, pidfd: fd, slot: -1}, nil
}
