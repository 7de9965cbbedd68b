// Package portrange reads the kernel's range of ephemeral ports: the ports
// it picks as the source of outgoing connections, which a listener that
// binds late may find taken.
package portrange

import (
	"os"
	"strconv"
	"strings"
)

// Ephemeral returns the range of net.ipv4.ip_local_port_range; ok is false
// where it cannot be read.
func Ephemeral() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && 0 < lo && lo <= hi
}
