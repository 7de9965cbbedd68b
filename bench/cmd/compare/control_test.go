package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestWriteControl: the control group's table has a row per server and
// round, with the p99 ratio of the listing phase to the alone phase.
func TestWriteControl(t *testing.T) {
	var ms []*measurement
	for round := 1; round <= 3; round++ {
		for _, c := range []struct {
			cs  string
			p99 float64
		}{{ctlProbeAlone, 1000}, {ctlProbeCmd, 2000}, {ctlProbeRaw, 4000}} {
			ms = append(ms, &measurement{Group: "control", Case: c.cs, Server: "sockd 10 jobs", Round: round, Result: res(200, 500, c.p99), OthersCPUPct: float64(round)})
		}
		ss := []listSample{{wall: 80 * time.Millisecond}, {wall: 90 * time.Millisecond}}
		ms = append(ms, &measurement{Group: "control", Case: ctlListCmd, Server: "sockd 10 jobs", Round: round,
			Result: durResult("x", ss, time.Second, func(s listSample) time.Duration { return s.wall })})
	}
	var buf bytes.Buffer
	writeControl(&buf, ms)
	out := buf.String()
	for _, want := range []string{"sockd 10 jobs  3", "2.00", "4.00", "median p99 ratio over rounds, while list --json loops / alone 2.00", "80.0ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if rows := summarize(ms); len(rows) != 4 {
		t.Errorf("%d summary rows, want 4", len(rows))
	}
}
