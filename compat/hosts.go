package compat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
)

// Files an import reads from the host besides the configuration itself.
const (
	hostsPath      = "/etc/hosts"
	hostsAllowPath = "/etc/hosts.allow"
	hostsDenyPath  = "/etc/hosts.deny"
)

// sysInfo is what an import learns from the host: how inetd host prefixes
// resolve, the /etc/hosts table for xinetd's names (never DNS: a converted
// file must not depend on what a name server said that day), the
// addresses of a network interface (for the message about an interface
// name) and the TCP wrappers' tables. Tests and fuzzing use one that reads
// nothing.
type sysInfo struct {
	lookup     resolver
	hosts      *hostsTable
	ifaceAddrs func(name string) ([]netip.Addr, bool)
	wrap       *wrapRules
}

// systemInfo reads the host's files.
func systemInfo() sysInfo {
	data, _ := readHostFile(hostsPath) // unreadable: no name resolves
	return sysInfo{
		lookup:     systemResolver,
		hosts:      parseHosts(data),
		ifaceAddrs: interfaceAddrs,
		wrap:       readWrapRules(hostsAllowPath, hostsDenyPath),
	}
}

// maxHostFile bounds a host file read (an /etc/hosts holding a block list
// can be large).
const maxHostFile = 64 << 20

// readHostFile reads a host file; a missing one reads as empty.
func readHostFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxHostFile+1))
	if err == nil && len(data) > maxHostFile {
		err = fmt.Errorf("%s: larger than %d bytes", path, maxHostFile)
	}
	return data, err
}

// hostsEntry is one line of /etc/hosts.
type hostsEntry struct {
	addr  netip.Addr
	names []string
}

// hostsTable is /etc/hosts as the C library's "files" source reads it.
type hostsTable struct {
	entries []hostsEntry
}

// parseHosts parses hosts(5) text: an address, then names; '#' starts a
// comment. Lines whose first field is not an address are skipped.
func parseHosts(data []byte) *hostsTable {
	t := &hostsTable{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		t.entries = append(t.entries, hostsEntry{addr: a.Unmap(), names: f[1:]})
	}
	return t
}

// addrs returns the addresses of name (any letter case), in file order,
// each once.
func (t *hostsTable) addrs(name string) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, e := range t.entries {
		for _, n := range e.names {
			if strings.EqualFold(n, name) && !seen[e.addr] {
				seen[e.addr] = true
				out = append(out, e.addr)
			}
		}
	}
	return out
}

// canonical returns the name a reverse lookup of a gives through
// /etc/hosts: the first name of the first line with a ("" when none).
func (t *hostsTable) canonical(a netip.Addr) string {
	for _, e := range t.entries {
		if e.addr == a {
			return e.names[0]
		}
	}
	return ""
}

// ofFamily keeps the IPv4 addresses when v4 and the IPv6 ones when v6.
func ofFamily(addrs []netip.Addr, v4, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if a.Is4() && v4 || a.Is6() && v6 {
			out = append(out, a)
		}
	}
	return out
}

// interfaceAddrs returns the addresses of the network interface name.
func interfaceAddrs(name string) ([]netip.Addr, bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, false
	}
	list, _ := ifi.Addrs()
	var out []netip.Addr
	for _, a := range list {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, true
}

// joinAddrs renders addresses for a message.
func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
