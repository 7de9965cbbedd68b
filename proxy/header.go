package proxy

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
)

// v2Signature starts every PROXY protocol v2 header.
var v2Signature = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// PROXY protocol v2 constants (haproxy proxy-protocol.txt, section 2.2).
const (
	v2CmdLocal  = 0x20 // version 2, LOCAL
	v2CmdProxy  = 0x21 // version 2, PROXY
	v2FamUnspec = 0x00
	v2Inet      = 0x10
	v2Inet6     = 0x20
	v2Stream    = 0x01
	v2Dgram     = 0x02
)

// inetPair returns the client (src) and local (dst) addresses of a
// TCP or UDP peer pair in one family: both IPv4 when both are IPv4 or
// v4-mapped, both IPv6 otherwise. ok is false for non-inet addresses.
func inetPair(src, dst net.Addr) (s, d netip.AddrPort, v4, ok bool) {
	s, ok1 := addrPort(src)
	d, ok2 := addrPort(dst)
	if !ok1 || !ok2 {
		return s, d, false, false
	}
	sa, da := s.Addr().Unmap(), d.Addr().Unmap()
	if sa.Is4() && da.Is4() {
		return netip.AddrPortFrom(sa, s.Port()), netip.AddrPortFrom(da, d.Port()), true, true
	}
	sa16, da16 := netip.AddrFrom16(s.Addr().As16()), netip.AddrFrom16(d.Addr().As16())
	return netip.AddrPortFrom(sa16, s.Port()), netip.AddrPortFrom(da16, d.Port()), false, true
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		if a == nil {
			return netip.AddrPort{}, false
		}
		return a.AddrPort(), a.IP != nil
	case *net.UDPAddr:
		if a == nil {
			return netip.AddrPort{}, false
		}
		return a.AddrPort(), a.IP != nil
	}
	return netip.AddrPort{}, false
}

// streamHeader builds the PROXY header for a stream connection from src (the
// client) to dst (sockd's public address). Non-inet clients (Unix sockets)
// get "PROXY UNKNOWN" (v1) or a LOCAL command (v2).
func streamHeader(version string, src, dst net.Addr) []byte {
	if version == "v1" {
		return v1Header(src, dst)
	}
	return v2Header(src, dst, v2Stream)
}

// v1Header: "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n".
func v1Header(src, dst net.Addr) []byte {
	s, d, v4, ok := inetPair(src, dst)
	if !ok {
		return []byte("PROXY UNKNOWN\r\n")
	}
	fam := "TCP6"
	if v4 {
		fam = "TCP4"
	}
	b := make([]byte, 0, 108)
	b = append(b, "PROXY "...)
	b = append(b, fam...)
	b = append(b, ' ')
	b = s.Addr().AppendTo(b)
	b = append(b, ' ')
	b = d.Addr().AppendTo(b)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(s.Port()), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(d.Port()), 10)
	return append(b, "\r\n"...)
}

// v2Header builds a binary header; transport is v2Stream or v2Dgram.
func v2Header(src, dst net.Addr, transport byte) []byte {
	s, d, v4, ok := inetPair(src, dst)
	b := make([]byte, 16, 16+36)
	copy(b, v2Signature[:])
	if !ok {
		b[12] = v2CmdLocal
		b[13] = v2FamUnspec
		return b // length 0
	}
	b[12] = v2CmdProxy
	if v4 {
		b[13] = v2Inet | transport
		binary.BigEndian.PutUint16(b[14:], 12)
		sa, da := s.Addr().As4(), d.Addr().As4()
		b = append(b, sa[:]...)
		b = append(b, da[:]...)
	} else {
		b[13] = v2Inet6 | transport
		binary.BigEndian.PutUint16(b[14:], 36)
		sa, da := s.Addr().As16(), d.Addr().As16()
		b = append(b, sa[:]...)
		b = append(b, da[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, s.Port())
	return binary.BigEndian.AppendUint16(b, d.Port())
}
