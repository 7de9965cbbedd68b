package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortIsFreeAndBelowEphemeral(t *testing.T) {
	low := ephemeralLow()
	for _, network := range []string{"tcp", "udp"} {
		for range 20 {
			p := Port(t, network)
			if p < lowest || (low > lowest+100 && p >= low) {
				t.Fatalf("%s port %d outside [%d, %d)", network, p, lowest, low)
			}
			addr := "127.0.0.1:" + strconv.Itoa(p)
			if network == "udp" {
				c, err := net.ListenPacket("udp4", addr)
				if err != nil {
					t.Fatalf("port %d not free: %v", p, err)
				}
				c.Close()
				continue
			}
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				t.Fatalf("port %d not free: %v", p, err)
			}
			l.Close()
		}
	}
}
