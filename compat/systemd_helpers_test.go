package compat

import (
	"fmt"
	"os"
	"strings"
)

// offlineSystemd is the host of the offline systemd tests: root's system
// manager on host "debian"; root is uid 0, nobody 65534, and every other
// user and group name resolves to 4242 (so that results do not depend on
// the users this machine has); no environment file exists, and programs
// named without a directory are found in /usr/bin.
func offlineSystemd() *sdHost {
	return &sdHost{
		uid: 0, user: "root", group: "root", home: "/root", shell: "/bin/bash", gid: 0,
		runtime: "/run", state: "/var/lib", cache: "/var/cache", logs: "/var/log", config: "/etc",
		hostname: "debian.example", machineID: "0123456789abcdef0123456789abcdef", arch: "x86-64",
		lookupUser: func(name string) (int, int, string, error) {
			switch name {
			case "root":
				return 0, 0, "/root", nil
			case "nobody":
				return 65534, 65534, "/nonexistent", nil
			}
			if name == "" || strings.ContainsAny(name, "@ ") {
				return 0, 0, "", fmt.Errorf("unknown user %s", name)
			}
			return 4242, 4242, "/home/" + name, nil
		},
		lookupUserID: func(id int) (string, error) {
			switch id {
			case 0:
				return "root", nil
			case 65534:
				return "nobody", nil
			}
			return "", fmt.Errorf("unknown userid %d", id)
		},
		lookupGroup: func(name string) (int, error) {
			switch name {
			case "root":
				return 0, nil
			case "nogroup":
				return 65534, nil
			}
			if name == "" || strings.ContainsAny(name, "@ ") {
				return 0, fmt.Errorf("unknown group %s", name)
			}
			return 4242, nil
		},
		lookupGroupID: func(id int) (string, error) {
			if id == 0 {
				return "root", nil
			}
			return "", fmt.Errorf("unknown groupid %d", id)
		},
		exists: func(p string) bool {
			if strings.HasPrefix(p, "/etc/default/") || strings.HasPrefix(p, "/etc/sysconfig/") || p == "/etc/rpcbind.conf" {
				return false
			}
			if strings.HasPrefix(p, "/usr/bin/") && !strings.Contains(p, "nosuch") {
				return true
			}
			_, err := os.Stat(p)
			return err == nil
		},
	}
}
