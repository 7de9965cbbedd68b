//go:build linux

package supervisor

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestWatchdogInterval(t *testing.T) {
	const pid = 4711
	for _, c := range []struct {
		usec, wpid string
		want       time.Duration
		err        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"400000", "4711", 400 * time.Millisecond, false},
		{"400000", "1", 0, false}, // another process's watchdog
		{"0", "", 0, true},
		{"soon", "", 0, true},
		{"400000", "x", 0, true},
		{"", "4711", 0, false},
	} {
		env := map[string]string{"WATCHDOG_USEC": c.usec, "WATCHDOG_PID": c.wpid}
		got, err := watchdogInterval(func(k string) string { return env[k] }, pid)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v, error %v", c.usec, c.wpid, got, err, c.want, c.err)
		}
	}
}

// TestWatchdogPings: with WATCHDOG_USEC, WATCHDOG=1 reaches the notify
// socket from the loop at least every half interval; with another
// process's WATCHDOG_PID, none does.
func TestWatchdogPings(t *testing.T) {
	for _, mine := range []bool{true, false} {
		ns := filepath.Join(t.TempDir(), "notify")
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("NOTIFY_SOCKET", ns)
		t.Setenv("WATCHDOG_USEC", "300000")
		if mine {
			t.Setenv("WATCHDOG_PID", "")
		} else {
			t.Setenv("WATCHDOG_PID", "1")
		}
		j := shellJob(t, "test.idle", "exit 0", "")
		s := runOneJob(t, j, Config{Log: zap.NewNop(), Notify: true})

		var pings []time.Time
		ready := time.Time{}
		end := time.Now().Add(1500 * time.Millisecond)
		buf := make([]byte, 256)
		for len(pings) < 100 && time.Now().Before(end) {
			_ = c.SetReadDeadline(end)
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			switch string(buf[:n]) {
			case "WATCHDOG=1":
				pings = append(pings, time.Now())
			case "READY=1":
				ready = time.Now()
			}
		}
		c.Close()
		if ready.IsZero() {
			t.Fatal("no READY=1")
		}
		if !mine {
			if len(pings) != 0 {
				t.Errorf("WATCHDOG_PID of another process: %d pings", len(pings))
			}
			continue
		}
		// 1.5 s at one per 100 ms: 15, less start-up and scheduling.
		if len(pings) < 10 {
			t.Fatalf("%d pings in 1.5 s, want one every 100 ms", len(pings))
		}
		for i := 1; i < len(pings); i++ {
			if gap := pings[i].Sub(pings[i-1]); gap > 150*time.Millisecond {
				t.Errorf("ping %d came %v after the one before (half the interval: 150ms)", i, gap)
			}
		}

		// A wedged loop sends nothing: the manager's watchdog fires.
		_ = os.Remove(ns) // the closed socket's name
		c, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		wedged := make(chan time.Time, 1)
		s.loop.post(func() {
			time.Sleep(600 * time.Millisecond)
			wedged <- time.Now()
		})
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		var during, after int
		var free time.Time
		for after < 3 {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("after the wedge: %v", err)
			}
			if string(buf[:n]) != "WATCHDOG=1" {
				continue
			}
			select {
			case free = <-wedged:
			default:
			}
			if free.IsZero() {
				during++
			} else {
				after++
			}
		}
		c.Close()
		if during > 1 { // one may have been sent as the wedge began
			t.Errorf("%d pings while the loop was wedged", during)
		}
	}
}
