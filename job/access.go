package job

import (
	"fmt"
	"net/netip"
	"strings"
)

// mappedSpace is ::ffff:0:0/96, where an IPv6 socket that also takes IPv4
// clients (a dual-stack socket) shows them: ::ffff:a.b.c.d.
var mappedSpace = netip.MustParsePrefix("::ffff:0.0.0.0/96")

// ParseAccess parses one SockdLimits Allow or Deny entry exactly as the
// supervisor matches it (net/netip): an IP address, which stands for
// itself, or a CIDR prefix. A form the supervisor could not use is an
// error here, so no entry is ever dropped at run time: a leading zero in
// the prefix length ("10.0.0.0/08"), an address with a zone ("fe80::1%eth0":
// client addresses are matched without theirs, so the entry would admit or
// refuse the address on every interface).
func ParseAccess(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix sockd can match (%v): write it as 192.0.2.0/24 or 2001:db8::/32, the length in decimal without leading zeros", s, unquoteErr(err))
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix (e.g. 192.0.2.0/24)", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has a zone: sockd matches client addresses without their zone, so it would match %s on every interface; write the address without %%%s", s, a.WithZone(""), a.Zone())
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unquoteErr drops the "netip.ParsePrefix(...): " head of a netip error.
func unquoteErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "): "); i >= 0 {
		return msg[i+3:]
	}
	return msg
}

// AccessForms returns what an Allow or Deny entry becomes for the
// supervisor, which matches an IPv4 client in its IPv4 form even where a
// dual-stack IPv6 socket shows it IPv4-mapped (::ffff:a.b.c.d): an entry in
// ::ffff:0:0/96 becomes its IPv4 form (::ffff:127.0.0.2 is 127.0.0.2,
// ::ffff:127.0.0.0/120 is 127.0.0.0/24), and an IPv6 prefix that covers all
// of ::ffff:0:0/96 (::/0, ::/64) covers every IPv4 client too, so
// 0.0.0.0/0 is added after it. Any other entry is returned as written.
func AccessForms(s string) ([]string, error) {
	p, err := ParseAccess(s)
	if err != nil {
		return nil, err
	}
	a := p.Addr()
	switch {
	case a.Is4():
		return []string{s}, nil
	case p.Bits() >= mappedSpace.Bits() && a.Is4In6():
		v4 := netip.PrefixFrom(a.Unmap(), p.Bits()-mappedSpace.Bits())
		if v4.IsSingleIP() {
			return []string{v4.Addr().String()}, nil
		}
		return []string{v4.Masked().String()}, nil
	case p.Bits() < mappedSpace.Bits() && p.Masked().Contains(mappedSpace.Addr()):
		return []string{s, "0.0.0.0/0"}, nil
	}
	return []string{s}, nil
}

// NamesIPv4 reports whether an Allow or Deny entry written in IPv6 names
// IPv4 clients (AccessForms gives it an IPv4 form).
func NamesIPv4(s string) bool {
	p, err := ParseAccess(s)
	if err != nil || p.Addr().Is4() {
		return false
	}
	forms, _ := AccessForms(s)
	return len(forms) > 1 || forms[0] != s
}

// accessList applies AccessForms to every entry of list; bad names the
// entries that are not usable (each with its error).
func accessList(list []string) (out []string, bad map[int]error) {
	seen := map[string]bool{}
	for i, s := range list {
		forms, err := AccessForms(s)
		if err != nil {
			if bad == nil {
				bad = map[int]error{}
			}
			bad[i] = err
			continue
		}
		for _, f := range forms {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out, bad
}
