// Package launch gives services started by sockd their sockets by name, in
// the shape of launchd's launch_activate_socket(3): a Sockets key of the job
// file in, every socket of that key out (one per address family when the job
// did not pin a family).
//
// sockd passes a handoff job's sockets as fds 3, 4, ... with the systemd
// variables (sd_listen_fds(3)):
//
//	LISTEN_FDS=3
//	LISTEN_PID=<the service's own pid>
//	LISTEN_FDNAMES=Admin:Listeners:Listeners
//
// and the LAUNCH_ variables, for programs that want one key's fds without
// parsing LISTEN_FDNAMES (shell scripts, nginx's NGINX variable, ...):
//
//	LAUNCH_JOB_LABEL=org.example.web
//	LAUNCH_SOCKETS=Admin:Listeners
//	LAUNCH_SOCKET_ADMIN=3
//	LAUNCH_SOCKET_LISTENERS=4,5
//
// This package reads LISTEN_FDNAMES (exact names) and checks LISTEN_PID, so
// a variable inherited by a grandchild is ignored. As with launchd, a name
// can be activated once per process: the fds then belong to the caller.
package launch

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors, matching launch_activate_socket's errno values.
var (
	// ErrNotManaged (ESRCH): the process was not started by sockd (or the
	// variables were meant for another process).
	ErrNotManaged = fmt.Errorf("launch: process not started by sockd with sockets: %w", syscall.ESRCH)
	// ErrNoSocket (ENOENT): the job has no socket of that name.
	ErrNoSocket = fmt.Errorf("launch: no socket with that name: %w", syscall.ENOENT)
	// ErrAlreadyActivated (EALREADY): the name was activated before.
	ErrAlreadyActivated = fmt.Errorf("launch: socket already activated: %w", syscall.EALREADY)
)

const firstFD = 3

var (
	mu        sync.Mutex
	activated = map[string]bool{}
)

// Label returns the label of the job this process was started for, or "".
func Label() string { return os.Getenv("LAUNCH_JOB_LABEL") }

// IdleTimeout returns the job's TimeOut (LAUNCH_TIMEOUT, 30 s unless the job
// file sets it), the idle time after which an on-demand service may exit:
// sockd then watches its sockets and starts it again on the next client, as
// launchd's check-in TimeOut means. ok is false outside a sockd handoff.
func IdleTimeout() (d time.Duration, ok bool) {
	n, err := strconv.Atoi(os.Getenv("LAUNCH_TIMEOUT"))
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// Names returns the Sockets keys passed to this process, in fd order,
// without activating anything.
func Names() ([]string, error) {
	names, err := fdNames()
	if err != nil {
		return nil, err
	}
	return uniq(names), nil
}

// fdNames validates the environment and returns one name per passed fd.
func fdNames() ([]string, error) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, ErrNotManaged
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, ErrNotManaged
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	if len(names) != n {
		return nil, fmt.Errorf("launch: LISTEN_FDNAMES has %d names for LISTEN_FDS=%d: %w", len(names), n, ErrNotManaged)
	}
	return names, nil
}

// ActivateSocket returns every socket of the named Sockets key as files, in
// hand-off order, and marks them close-on-exec. It succeeds once per name.
func ActivateSocket(name string) ([]*os.File, error) {
	names, err := fdNames()
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if activated[name] {
		return nil, fmt.Errorf("%w: %q", ErrAlreadyActivated, name)
	}
	var files []*os.File
	for i, n := range names {
		if n != name {
			continue
		}
		fd := firstFD + i
		closeOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), name))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: %q (passed: %s)", ErrNoSocket, name, strings.Join(uniq(names), ", "))
	}
	activated[name] = true
	return files, nil
}

// Listeners activates the named key and returns its stream sockets as
// net.Listeners (TCP, Unix stream or seqpacket).
func Listeners(name string) ([]net.Listener, error) {
	files, err := ActivateSocket(name)
	if err != nil {
		return nil, err
	}
	var out []net.Listener
	var errs []error
	for _, f := range files {
		fd := f.Fd()
		l, err := net.FileListener(f)
		f.Close() // FileListener made its own dup
		if err != nil {
			errs = append(errs, fmt.Errorf("launch: socket %q fd %d: %w", name, fd, err))
			continue
		}
		out = append(out, l)
	}
	return out, errors.Join(errs...)
}

// PacketConns activates the named key and returns its datagram sockets as
// net.PacketConns (UDP or Unix datagram).
func PacketConns(name string) ([]net.PacketConn, error) {
	files, err := ActivateSocket(name)
	if err != nil {
		return nil, err
	}
	var out []net.PacketConn
	var errs []error
	for _, f := range files {
		fd := f.Fd()
		c, err := net.FilePacketConn(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("launch: socket %q fd %d: %w", name, fd, err))
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

func uniq(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
