//go:build !linux

package job

// rlimitNames lists launchd's resource-limit keys; sockd runs on Linux
// only, so elsewhere the resources are unknown (-1) and ignored.
var rlimitNames = []struct {
	name     string
	resource int
}{
	{"Core", -1},
	{"CPU", -1},
	{"Data", -1},
	{"FileSize", -1},
	{"MemoryLock", -1},
	{"NumberOfFiles", -1},
	{"NumberOfProcesses", -1},
	{"ResidentSetSize", -1},
	{"Stack", -1},
	{"AddressSpace", -1},
}
