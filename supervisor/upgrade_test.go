//go:build linux

package supervisor

import "testing"

// TestStatsHandover: a job's counters survive the handover document,
// those of a job that never counted anything too (written as nothing).
func TestStatsHandover(t *testing.T) {
	var busy jobStats
	busy.accepted, busy.refused, busy.spawned, busy.exits, busy.deferred = 7, 3, 6, 5, 1
	busy.refusedBy[1], busy.exitKinds[0] = 3, 5
	for _, js := range []jobStats{{}, busy} {
		h := js.handover()
		if got := statsFrom(h); got != js {
			t.Errorf("statsFrom(handover(%+v)) = %+v", js, got)
		}
		if js == (jobStats{}) && (h.RefusedBy != nil || h.ExitKinds != nil) {
			t.Errorf("idle job's counts written: %+v", h)
		}
	}
}
