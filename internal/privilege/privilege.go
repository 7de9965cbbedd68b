// Package privilege describes what a sockd process may do on this machine:
// the uid it runs as, its effective capabilities, the nice value and
// resource limits its children inherit, and the kernel settings that bound
// unprivileged sockets and descriptors. The job-set loader judges every job
// against one View, so that check and serve reach the same verdict.
package privilege

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// Cap is a Linux capability number (capabilities(7)).
type Cap uint

// The capabilities the loader's checks depend on.
const (
	CapChown          Cap = 0
	CapSetgid         Cap = 6
	CapSetuid         Cap = 7
	CapNetBindService Cap = 10
	CapSysChroot      Cap = 18
	CapSysNice        Cap = 23
	CapSysResource    Cap = 24
)

var capNames = map[Cap]string{
	CapChown: "CAP_CHOWN", CapSetgid: "CAP_SETGID", CapSetuid: "CAP_SETUID",
	CapNetBindService: "CAP_NET_BIND_SERVICE", CapSysChroot: "CAP_SYS_CHROOT",
	CapSysNice: "CAP_SYS_NICE", CapSysResource: "CAP_SYS_RESOURCE",
}

func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return "capability " + strconv.Itoa(int(c))
}

// allCaps is the effective set assumed for a root sockd when it is not this
// process (CAP_LAST_CAP is 40 on Linux 6.x).
const allCaps = 1<<41 - 1

// Rlimit is one resource limit: the soft (Cur) and hard (Max) values.
type Rlimit struct{ Cur, Max uint64 }

// View is a sockd process as the loader judges jobs for it.
type View struct {
	// UID is the uid sockd runs as; User its name ("" when unknown).
	UID  int
	User string
	// GID is the gid sockd's children keep when sockd cannot change it
	// (its effective gid; for an assumed view the user's primary group;
	// -1 when unknown).
	GID int
	// Caps is the effective capability set (bit c for capability c).
	Caps uint64
	// Groups are the gids whose files sockd may give to a socket without
	// CAP_CHOWN (its effective and supplementary groups); nil: unknown.
	Groups []int
	// Nice is the nice value children start with; Limits the resource
	// limits they inherit, by RLIMIT_* resource.
	Nice   int
	Limits map[int]Rlimit
	// NrOpen is fs.nr_open, the ceiling of any NumberOfFiles limit (0:
	// unknown). PortStart is net.ipv4.ip_unprivileged_port_start.
	NrOpen    uint64
	PortStart int
	// Ports are ports below PortStart it may bind all the same: an admin's
	// grant to a user domain (sockd serve --domain-ports).
	Ports []int
	// Assumed says the view is not this process's: it is what a sockd
	// started as UID would most likely have (root: every capability;
	// another user: none; this process's nice value and limits).
	Assumed bool
}

// InGroup reports whether gid is one of the view's groups; known is false
// where the view does not know them.
func (v View) InGroup(gid int) (in, known bool) {
	if v.Groups == nil {
		return false, false
	}
	for _, g := range v.Groups {
		if g == gid {
			return true, true
		}
	}
	return false, true
}

// Has reports whether the view has capability c.
func (v View) Has(c Cap) bool { return v.Caps&(1<<c) != 0 }

// Root reports whether the view is root's.
func (v View) Root() bool { return v.UID == 0 }

// Current is this process's view.
func Current() View {
	v := View{UID: geteuid(), GID: os.Getegid(), Caps: effectiveCaps(), Groups: groups(), Nice: currentNice(), Limits: currentLimits(),
		NrOpen: nrOpen(), PortStart: unprivilegedPortStart()}
	v.User = userName(v.UID)
	return v
}

// For is the view of a sockd running as uid: this process's when uid is
// this process's euid, else an assumed one (see View.Assumed).
func For(uid int) View {
	v := Current()
	if uid == v.UID {
		return v
	}
	v.UID, v.User, v.GID, v.Assumed, v.Caps, v.Groups = uid, userName(uid), primaryGID(uid), true, 0, nil
	if uid == 0 {
		v.Caps = allCaps
	}
	return v
}

// String says whose view it is, for check's summary: "root",
// "uid 1000 (alice)", with the capabilities that matter where they differ
// from what that uid usually has, and whether they are assumed.
func (v View) String() string {
	who := "root"
	if !v.Root() {
		who = "uid " + strconv.Itoa(v.UID)
		if v.User != "" {
			who += " (" + v.User + ")"
		}
	}
	var notes []string
	for _, c := range []Cap{CapNetBindService, CapSysNice, CapSysResource, CapSysChroot, CapSetuid, CapSetgid, CapChown} {
		if v.Root() && !v.Has(c) {
			notes = append(notes, "without "+c.String())
		}
		if !v.Root() && v.Has(c) {
			notes = append(notes, "with "+c.String())
		}
	}
	if len(notes) > 0 {
		who += " " + strings.Join(notes, ", ")
	}
	if v.Assumed {
		who += ", capabilities and limits assumed"
	}
	return who
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return ""
}

// primaryGID is the primary group of uid in the user database, -1 when
// unknown.
func primaryGID(uid int) int {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		if g, err := strconv.Atoi(u.Gid); err == nil {
			return g
		}
	}
	return -1
}

// parseCapEff reads the CapEff line of /proc/PID/status.
func parseCapEff(status string) (uint64, error) {
	for _, ln := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(ln, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapEff line")
}

// Cred is a user's identity for RunAs: uid, primary gid and
// supplementary groups, and Caps, capabilities (bit c for capability c)
// the thread keeps in its effective set all the same (an admin's grant:
// CAP_NET_BIND_SERVICE for a user domain's privileged port).
type Cred struct {
	UID, GID uint32
	Groups   []uint32
	Caps     uint64
}
