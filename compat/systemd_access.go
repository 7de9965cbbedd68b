package compat

import (
	"fmt"
	"net/netip"
	"strings"
)

// IPAddressAllow= and IPAddressDeny= of a socket unit, as SockdLimits Allow
// and Deny.
//
// systemd admits a client whose address matches IPAddressAllow=, else
// refuses one that matches IPAddressDeny=, else admits it: Allow wins.
// sockd admits a client only if it matches Allow (when Allow is not empty)
// and does not match Deny: Deny wins. sdAccess computes lists for sockd
// that admit exactly the clients systemd admits.

var (
	v4All     = netip.MustParsePrefix("0.0.0.0/0")
	v6All     = netip.MustParsePrefix("::/0")
	v4Mapped  = netip.MustParsePrefix("::ffff:0.0.0.0/96")
	sdKeyword = map[string][]netip.Prefix{
		"any":        {v4All, v6All},
		"localhost":  {netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		"link-local": {netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/64")},
		"multicast":  {netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("ff00::/8")},
	}
)

// sdPrefixes parses one IPAddressAllow= or IPAddressDeny= value: blank
// separated addresses, prefixes and the keywords any, localhost,
// link-local and multicast (which systemd defines as fixed prefixes).
func sdPrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, w := range strings.Fields(v) {
		if ps, ok := sdKeyword[w]; ok {
			out = append(out, ps...)
			continue
		}
		if strings.Contains(w, "/") {
			p, err := netip.ParsePrefix(w)
			if err != nil || p.Addr().Zone() != "" {
				return nil, fmt.Errorf("%q is not an address prefix sockd can match (want an address, a prefix such as 10.0.0.0/8, or any, localhost, link-local, multicast)", w)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(w)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an address sockd can match (want an address, a prefix such as 10.0.0.0/8, or any, localhost, link-local, multicast)", w)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// subtract returns p less q, as prefixes.
func subtract(p, q netip.Prefix) []netip.Prefix {
	if p.Addr().Is4() != q.Addr().Is4() || !p.Overlaps(q) {
		return []netip.Prefix{p}
	}
	if q.Bits() <= p.Bits() {
		return nil // q covers p
	}
	// Split p in halves; keep the one without q, recurse into the other.
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	hiAddr := p.Addr()
	b := hiAddr.AsSlice()
	bit := p.Bits()
	b[bit/8] |= 0x80 >> (bit % 8)
	hiAddr, _ = netip.AddrFromSlice(b)
	hi := netip.PrefixFrom(hiAddr, p.Bits()+1)
	if lo.Overlaps(q) {
		return append(subtract(lo, q), hi)
	}
	return append([]netip.Prefix{lo}, subtract(hi, q)...)
}

// minus returns the prefixes of set less every prefix of cut.
func minus(set, cut []netip.Prefix) []netip.Prefix {
	out := append([]netip.Prefix(nil), set...)
	for _, c := range cut {
		var next []netip.Prefix
		for _, p := range out {
			next = append(next, subtract(p, c)...)
		}
		out = next
	}
	return out
}

// family returns the prefixes of ps of one family.
func family(ps []netip.Prefix, v4 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == v4 {
			out = append(out, p)
		}
	}
	return out
}

// covers reports whether ps covers all of q.
func covers(ps []netip.Prefix, q netip.Prefix) bool {
	return len(minus([]netip.Prefix{q}, ps)) == 0
}

// noMapped drops ::ffff:0:0/96 from IPv6 prefixes that cover it: sockd
// matches an IPv4 client against such a prefix as against 0.0.0.0/0, which
// systemd does not.
func noMapped(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is6() && p.Bits() <= v4Mapped.Bits() && p.Contains(v4Mapped.Addr()) {
			out = append(out, subtract(p, v4Mapped)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// sdAccess turns systemd's allow and deny lists into sockd's. Per family,
// systemd admits everything (no deny entry), exactly the allow entries (a
// deny entry covers the family), or everything but the deny entries less
// the allow entries. When both families admit only their allow entries,
// sockd gets them as Allow; otherwise every refused range goes into Deny
// (a family that admits only its allow entries refuses the rest of it).
func sdAccess(allow, deny []netip.Prefix) (sAllow, sDeny []string) {
	var cut, only []netip.Prefix
	allowOnly := 0
	for _, all := range []netip.Prefix{v4All, v6All} {
		v4 := all.Addr().Is4()
		a, d := family(allow, v4), family(deny, v4)
		switch {
		case len(d) == 0:
		case covers(d, all):
			allowOnly++
			only = append(only, a...)
			cut = append(cut, minus([]netip.Prefix{all}, a)...)
		default:
			cut = append(cut, minus(d, a)...)
		}
	}
	if allowOnly == 2 {
		if len(only) == 0 {
			// Nobody is admitted: an empty Allow would admit everyone.
			return nil, []string{v4All.String(), v6All.String()}
		}
		return prefixStrings(noMapped(only)), nil
	}
	return nil, prefixStrings(noMapped(cut))
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
