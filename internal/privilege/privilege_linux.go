package privilege

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func geteuid() int { return unix.Geteuid() }

// groups are the effective and supplementary gids of this process.
func groups() []int {
	gs, err := unix.Getgroups()
	if err != nil {
		return nil
	}
	return append(gs, unix.Getegid())
}

// effectiveCaps is this process's effective capability set; none when it
// cannot be read.
func effectiveCaps() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	c, err := parseCapEff(string(b))
	if err != nil {
		return 0
	}
	return c
}

// currentNice is this process's nice value (getpriority returns 20-nice).
func currentNice() int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return 20 - p
}

// limitResources are the limits children inherit that the checks read:
// every one a job can set, and RLIMIT_NICE, which bounds Nice.
var limitResources = []int{
	unix.RLIMIT_CORE, unix.RLIMIT_CPU, unix.RLIMIT_DATA, unix.RLIMIT_FSIZE,
	unix.RLIMIT_MEMLOCK, unix.RLIMIT_NOFILE, unix.RLIMIT_NPROC, unix.RLIMIT_RSS,
	unix.RLIMIT_STACK, unix.RLIMIT_AS, unix.RLIMIT_NICE,
}

func currentLimits() map[int]Rlimit {
	m := make(map[int]Rlimit, len(limitResources))
	for _, r := range limitResources {
		var rl unix.Rlimit
		if err := unix.Prlimit(0, r, nil, &rl); err == nil {
			m[r] = Rlimit{Cur: rl.Cur, Max: rl.Max}
		}
	}
	return m
}

func nrOpen() uint64 {
	n, _ := strconv.ParseUint(readSysctl("/proc/sys/fs/nr_open"), 10, 64)
	return n
}

// unprivilegedPortStart is net.ipv4.ip_unprivileged_port_start (1024 when
// it cannot be read, the kernel's default).
func unprivilegedPortStart() int {
	n, err := strconv.Atoi(readSysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start"))
	if err != nil {
		return 1024
	}
	return n
}

func readSysctl(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
