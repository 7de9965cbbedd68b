// Package freeport gives tests loopback ports to bind later. A port the
// kernel hands out for "127.0.0.1:0" lies in the ephemeral range, where any
// client socket on the machine (another test package running at the same
// time, a probe) may take it as its source port before the test binds it.
// The ports here come from below that range, which the kernel never picks
// on its own: once free, such a port stays free unless another test picks
// the same one.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/sockd/sockd/internal/portrange"
)

// lowest is the bottom of the range ports are drawn from.
const lowest = 10000

// Port returns a port on 127.0.0.1 that is free for network ("tcp" or
// "udp", 4 or 6 suffixes allowed) now.
func Port(tb testing.TB, network string) int {
	tb.Helper()
	p, err := find(network)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func find(network string) (int, error) {
	top := ephemeralLow()
	if top <= lowest+100 {
		top = 65536
	}
	udp := strings.HasPrefix(network, "udp")
	for range 500 {
		p := lowest + rand.IntN(top-lowest)
		addr := "127.0.0.1:" + strconv.Itoa(p)
		if udp {
			c, err := net.ListenPacket("udp4", addr)
			if err != nil {
				continue
			}
			c.Close()
			return p, nil
		}
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("freeport: no free %s port found below %d", network, top)
}

// ephemeralLow is the first port of the kernel's ephemeral range, 32768
// when it cannot be read.
func ephemeralLow() int {
	if lo, _, ok := portrange.Ephemeral(); ok {
		return lo
	}
	return 32768
}
