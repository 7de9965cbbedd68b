//go:build linux && cgo

package spawn

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// TestMain runs a helper command instead of the tests when the test binary
// is started as a child by a test (GO_WANT_HELPER_PROCESS=1).
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") == "1" {
		os.Exit(helperMain(os.Args[1:]))
	}
	if err := ReserveLowFds(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	removeStatic()
	os.Exit(code)
}

// fdInfo is one open descriptor as the helper sees it.
type fdInfo struct {
	Fd      int
	Dev     uint64
	Ino     uint64
	FdFlags int // F_GETFD
	FlFlags int // F_GETFL
	Link    string
}

// report is what the "report" helper prints on fd 1.
type report struct {
	Args      []string
	Env       []string
	Pid       int
	Ppid      int
	Pgid      int
	Sid       int
	Cwd       string
	Fds       []fdInfo
	ListenPID string
	ActFiles  int
	ActNames  []string
	ActSocket []bool
}

// listFds lists /proc/self/fd with raw system calls, leaving out the
// descriptor used to read it.
func listFds() ([]fdInfo, error) {
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	var fds []int
	buf := make([]byte, 4096)
	for range 100 {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		for off := 0; off < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			name := buf[off+19 : off+reclen]
			off += reclen
			end := 0
			for end < len(name) && name[end] != 0 {
				end++
			}
			fd, err := strconv.Atoi(string(name[:end]))
			if err != nil || fd == dfd {
				continue
			}
			fds = append(fds, fd)
		}
	}
	var out []fdInfo
	for _, fd := range fds {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, fmt.Errorf("fstat %d: %w", fd, err)
		}
		fdf, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		flf, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		out = append(out, fdInfo{Fd: fd, Dev: st.Dev, Ino: st.Ino, FdFlags: fdf, FlFlags: flf, Link: link})
	}
	return out, nil
}

func helperMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "helper: no command")
		return 2
	}
	switch cmd := args[0]; cmd {
	case "report", "activation":
		fds, err := listFds()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 3
		}
		r := report{Args: os.Args, Env: os.Environ(), Pid: os.Getpid(), Ppid: os.Getppid(), Fds: fds}
		r.Pgid, _ = unix.Getpgid(0)
		r.Sid, _ = unix.Getsid(0)
		r.Cwd, _ = os.Getwd()
		r.ListenPID = os.Getenv("LISTEN_PID")
		if cmd == "activation" {
			files := activation.Files(true)
			r.ActFiles = len(files)
			for _, f := range files {
				r.ActNames = append(r.ActNames, f.Name())
				var st unix.Stat_t
				isSock := unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK
				r.ActSocket = append(r.ActSocket, isSock)
			}
		}
		b, err := json.Marshal(&r)
		if err != nil {
			return 4
		}
		if _, err := os.Stdout.Write(b); err != nil {
			return 5
		}
		return 0
	case "exit":
		n, _ := strconv.Atoi(args[1])
		return n
	case "die":
		// Die by a signal with its default action (the Go runtime would
		// otherwise turn SIGSEGV into a panic and exit 2).
		n, _ := strconv.Atoi(args[1])
		sig := syscall.Signal(n)
		var act [4]uint64 // struct sigaction with SIG_DFL
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
		var empty uint64
		unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&empty)), 0, 8, 0, 0)
		unix.Tgkill(os.Getpid(), unix.Gettid(), sig)
		time.Sleep(5 * time.Second)
		return 6
	case "sleep":
		time.Sleep(30 * time.Second)
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: unknown command", args[0])
	return 2
}
