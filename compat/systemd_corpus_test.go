package compat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockd/sockd/job"
)

// What each corpus directory of systemd units becomes, read as a unit
// directory (sockd serve --systemd DIR) for root's system manager on the
// offline host (offlineSystemd). A row with a label is a job: its mode, its
// sockets in hand-off order and its user ("" runs as root, as in systemd;
// a port alone or [::] is systemd's one dual-stack socket, a ListenFIFO= a
// fifo); a row with refused is a unit that gives no job, with the directive of
// its first error ("" for the unit as a whole).
var systemdCorpus = []struct {
	dir                  string
	label, mode, sockets string
	user                 string
	refused, why         string
}{
	// dir                            label                                    mode            sockets                                                                 user
	{"clearlinux-openssh", "systemd.sshd.socket", "inetd-nowait", "tcp6 [::]:22 dual-stack", "", "", ""},
	{"debian-acpid", "", "", "", "", "acpid.socket", "ConditionVirtualization"},
	{"debian-atftpd", "", "", "", "", "atftpd.service", "DynamicUser"},
	{"debian-avahi-daemon", "systemd.avahi-daemon.service", "handoff", "unix /run/avahi-daemon/socket", "", "", ""},
	{"debian-clamav-daemon", "", "", "", "", "clamav-daemon.socket", "ConditionPathExistsGlob"},
	{"debian-cockpit-ws", "systemd.cockpit-wsinstance-http.service", "handoff", "unix /run/cockpit/wsinstance/http.sock", "cockpit-wsinstance", "", ""},
	{"debian-cockpit-ws", "systemd.cockpit.service", "handoff", "tcp6 [::]:9090 dual-stack", "cockpit-ws", "", ""},
	{"debian-cockpit-ws", "", "", "", "", "cockpit-wsinstance-https-factory@.service", ""}, // the connection as fd 3
	{"debian-cups-daemon", "systemd.cups.service", "handoff", "unix /run/cups/cups.sock", "", "", ""},
	{"debian-dbus-system", "systemd.dbus.service", "handoff", "unix /run/dbus/system_bus_socket", "", "", ""},
	{"debian-dbus-user-session", "systemd.dbus.service", "handoff", "unix /run/bus", "", "", ""}, // a user unit, read for root's manager
	{"debian-dmeventd", "systemd.dm-event.service", "handoff", "fifo /run/dmeventd-server, fifo /run/dmeventd-client", "", "", ""},
	{"debian-docker.io", "systemd.docker.service", "handoff", "unix /run/docker.sock", "", "", ""},
	{"debian-dovecot-core", "systemd.dovecot.service", "handoff", "tcp4 0.0.0.0:143, tcp6 [::]:143, tcp4 0.0.0.0:993, tcp6 [::]:993", "", "", ""},
	{"debian-gpg-agent", "systemd.gpg-agent.service", "handoff", "unix /run/gnupg/S.gpg-agent.browser, unix /run/gnupg/S.gpg-agent.extra, unix /run/gnupg/S.gpg-agent.ssh, unix /run/gnupg/S.gpg-agent", "", "", ""},
	{"debian-libvirt-daemon-system", "systemd.libvirtd.service", "handoff", "unix /run/libvirt/libvirt-admin-sock, unix /run/libvirt/libvirt-sock-ro, tcp6 [::]:16509 dual-stack, tcp6 [::]:16514 dual-stack, unix /run/libvirt/libvirt-sock", "", "", ""},
	{"debian-libvirt-daemon-system", "systemd.virtlockd.service", "handoff", "unix /run/libvirt/virtlockd-admin-sock, unix /run/libvirt/virtlockd-sock", "", "", ""},
	{"debian-libvirt-daemon-system", "systemd.virtlogd.service", "handoff", "unix /run/libvirt/virtlogd-admin-sock, unix /run/libvirt/virtlogd-sock", "", "", ""},
	{"debian-lvm2", "systemd.lvm2-lvmpolld.service", "handoff", "unix /run/lvm/lvmpolld.socket", "", "", ""},
	{"debian-multipath-tools", "", "", "", "", "multipathd.socket", "ConditionKernelCommandLine"},
	{"debian-oidentd", "systemd.oidentd.socket", "inetd-nowait", "tcp6 [::]:113 dual-stack", "", "", ""},
	{"debian-open-iscsi", "", "", "", "", "iscsid.service", "ConditionVirtualization"},
	{"debian-openssh-8.8-sonic", "", "", "", "", "ssh.socket", "ConditionPathExists"},
	{"debian-openssh-server", "", "", "", "", "ssh.socket", "ConditionPathExists"},
	{"debian-pcscd", "systemd.pcscd.service", "handoff", "unix /run/pcscd/pcscd.comm", "", "", ""},
	{"debian-pipewire", "", "", "", "", "pipewire.socket", "ConditionUser"},
	{"debian-podman", "systemd.podman.service", "handoff", "unix /run/podman/podman.sock", "", "", ""},
	{"debian-proftpd-core", "systemd.proftpd.socket", "inetd-nowait", "tcp6 [::]:21 dual-stack", "", "", ""},
	{"debian-rpcbind", "systemd.rpcbind.service", "handoff", "unix /run/rpcbind.sock, tcp4 0.0.0.0:111, udp4 0.0.0.0:111, tcp6 [::]:111, udp6 [::]:111", "", "", ""},
	{"debian-sane-utils", "", "", "", "", "saned@.service", "StandardInput"},   // the connection as fd 3
	{"debian-spice-vdagent", "", "", "", "", "spice-vdagentd.service", "Type"}, // Type=forking
	{"debian-systemd", "systemd.systemd-fsckd.service", "handoff", "unix /run/systemd/fsck.progress", "", "", ""},
	{"debian-systemd", "systemd.systemd-journald.service", "handoff", "unixgram /run/systemd/journal/dev-log, unixgram /run/systemd/journal/socket, unix /run/systemd/journal/stdout", "", "", ""},
	{"debian-systemd", "systemd.systemd-initctl.service", "handoff", "fifo /run/initctl", "", "", ""},
	{"debian-systemd", "", "", "", "", "systemd-journald-audit.socket", "ConditionSecurity"},
	{"debian-systemd", "", "", "", "", "systemd-networkd.socket", "ConditionCapability"},
	{"debian-systemd", "", "", "", "", "systemd-rfkill.socket", "ListenSpecial"},
	{"debian-systemd", "", "", "", "", "syslog.socket", ""},                      // syslog.service is not in the directory
	{"debian-systemd-coredump", "", "", "", "", "systemd-coredump@.service", ""}, // the connection as fd 3
	{"debian-systemd-journal-remote", "", "", "", "", "systemd-journal-gatewayd.service", "DynamicUser"},
	{"debian-systemd-journal-remote", "", "", "", "", "systemd-journal-remote.service", "PrivateNetwork"},
	{"debian-systemd-userdbd", "systemd.systemd-userdbd.service", "handoff", "unix /run/systemd/userdb/io.systemd.Multiplexer", "", "", ""},
	{"debian-udev", "", "", "", "", "systemd-udevd-control.socket", "ConditionPathIsReadWrite"},
	{"debian-udev", "", "", "", "", "systemd-udevd-kernel.socket", "ConditionPathIsReadWrite"},
	{"debian-uuid-runtime", "systemd.uuidd.service", "handoff", "unix /run/uuidd/request", "uuidd", "", ""},
	{"rsync-upstream", "systemd.rsync.socket", "inetd-nowait", "tcp6 [::]:873 dual-stack", "", "", ""},
}

// sdEndpoints are a job's endpoints as "network address", with
// "dual-stack" after an IPv6 wildcard that takes IPv4 clients too.
func sdEndpoints(j *job.Job) []string {
	var out []string
	for _, e := range j.Endpoints() {
		s := e.Network + " " + e.Address
		if e.DualStack() {
			s += " dual-stack"
		}
		out = append(out, s)
	}
	return out
}

// refusedUnits maps each unit that gives no job to the key of its first
// error.
func refusedUnits(diags job.Diags) map[string]string {
	out := map[string]string{}
	for _, d := range diags {
		i := strings.LastIndex(d.Msg, "; unit ")
		if d.Severity != job.Error || i < 0 {
			continue
		}
		u := strings.TrimSuffix(d.Msg[i+len("; unit "):], " skipped")
		if _, seen := out[u]; !seen {
			out[u] = d.Key
		}
	}
	return out
}

// TestSystemdCorpus reads every directory of the corpus as serve
// --systemd DIR does and compares with the table; every job converts to a
// job file that the launchd loader reads back as the same job.
func TestSystemdCorpus(t *testing.T) {
	root := filepath.Join(corpusRoot(t), "systemd")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	for _, c := range systemdCorpus {
		inTable[c.dir] = true
	}
	njobs, nrefused := 0, 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := e.Name()
		t.Run(dir, func(t *testing.T) {
			jobs, diags := loadSystemd([]string{filepath.Join(root, dir)}, SystemdOptions{Files: corpusFiles}, offlineSystemd())
			refusedGot := refusedUnits(diags)
			byLabel := map[string]*job.Job{}
			for _, j := range jobs {
				byLabel[j.Label] = j
			}
			wantJobs, wantRefused := 0, 0
			for _, c := range systemdCorpus {
				if c.dir != dir {
					continue
				}
				if c.refused != "" {
					wantRefused++
					why, ok := refusedGot[c.refused]
					if !ok || why != c.why {
						t.Errorf("%s: refused for %q (%t), want %q", c.refused, why, ok, c.why)
					}
					continue
				}
				wantJobs++
				j := byLabel[c.label]
				if j == nil {
					t.Errorf("no job %s among %v", c.label, labels(jobs))
					continue
				}
				if got := strings.Join(sdEndpoints(j), ", "); j.Mode().String() != c.mode || got != c.sockets || j.UserName != c.user {
					t.Errorf("%s: mode %s, sockets %s, user %q\n  want %s, %s, %q", c.label, j.Mode(), got, j.UserName, c.mode, c.sockets, c.user)
				}
			}
			if len(jobs) != wantJobs || len(refusedGot) != wantRefused {
				t.Errorf("%d jobs %v and refused %v; the table has %d and %d", len(jobs), labels(jobs), refusedGot, wantJobs, wantRefused)
			}
			for _, j := range jobs {
				if j.Source != "systemd" || !strings.HasPrefix(j.Label, "systemd.") || len(j.Endpoints()) == 0 || j.Path == "" {
					t.Errorf("%s: source %q, %d endpoints, path %q", j.Label, j.Source, len(j.Endpoints()), j.Path)
				}
				roundTrip(t, j)
			}
			njobs += len(jobs)
			nrefused += len(refusedGot)
		})
		if !inTable[dir] && dir != "nrpe" {
			t.Errorf("corpus directory %s is not in the table", dir)
		}
	}
	t.Logf("%d jobs, %d units refused", njobs, nrefused)
}

// TestSystemdCorpusEachFile reads every corpus file alone, as sockd check
// FILE and sockd convert do: nothing crashes, each file gives jobs or says
// why not.
func TestSystemdCorpusEachFile(t *testing.T) {
	root := filepath.Join(corpusRoot(t), "systemd")
	n := 0
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		jobs, diags := loadSystemd([]string{p}, SystemdOptions{Files: corpusFiles}, offlineSystemd())
		if len(jobs) == 0 && !diags.HasErrors() && unitType(p) == "socket" {
			t.Errorf("%s: no job and no error", p)
		}
		if unitType(p) != "socket" && (len(jobs) != 0 || !diags.HasErrors()) {
			t.Errorf("%s: not a socket unit, but %d jobs, diags %v", p, len(jobs), diags)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Errorf("only %d corpus files", n)
	}
}
