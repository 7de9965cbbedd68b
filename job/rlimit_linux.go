package job

import "golang.org/x/sys/unix"

// rlimitNames maps launchd's resource-limit keys to setrlimit resources.
var rlimitNames = []struct {
	name     string
	resource int
}{
	{"Core", unix.RLIMIT_CORE},
	{"CPU", unix.RLIMIT_CPU},
	{"Data", unix.RLIMIT_DATA},
	{"FileSize", unix.RLIMIT_FSIZE},
	{"MemoryLock", unix.RLIMIT_MEMLOCK},
	{"NumberOfFiles", unix.RLIMIT_NOFILE},
	{"NumberOfProcesses", unix.RLIMIT_NPROC},
	{"ResidentSetSize", unix.RLIMIT_RSS},
	{"Stack", unix.RLIMIT_STACK},
	{"AddressSpace", unix.RLIMIT_AS}, // sockd extension (xinetd rlimit_as)
}
