package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/sockd/sockd/bench/loadgen"
)

// summaryRow is the median over rounds of one (group, case, server).
type summaryRow struct {
	Group  string `json:"group"`
	Case   string `json:"case"`
	Server string `json:"server"`
	// Rounds counts rounds with a result; Failed those with an error.
	Rounds int   `json:"rounds"`
	Failed int   `json:"failed_rounds,omitempty"`
	Errors int64 `json:"request_errors"`
	// Missed: open-loop requests not sent before the hard stop (summed).
	Missed int64 `json:"missed,omitempty"`
	// Medians over rounds. Latencies in µs.
	Throughput float64 `json:"throughput_per_s"`
	MiBps      float64 `json:"mib_per_s,omitempty"`
	P50        float64 `json:"p50_us"`
	P90        float64 `json:"p90_us"`
	P99        float64 `json:"p99_us"`
	P999       float64 `json:"p99_9_us"`
	Max        float64 `json:"max_us"`
	CPUOwn     float64 `json:"server_cpu_own_ms_per_1k,omitempty"`
	CPUAll     float64 `json:"server_cpu_with_children_ms_per_1k,omitempty"`
	// Bulk: CPU seconds per GiB of the proxy process and of the machine,
	// and the machine's busy share (see measurement).
	CPUPerGiB        float64 `json:"server_cpu_s_per_gib,omitempty"`
	MachineCPUPerGiB float64 `json:"machine_cpu_s_per_gib,omitempty"`
	MachineBusyPct   float64 `json:"machine_busy_pct,omitempty"`
	RSSKiB           float64 `json:"server_rss_kib,omitempty"`
	HWMKiB           float64 `json:"server_rss_peak_kib,omitempty"`
	StartupMs        float64 `json:"startup_ms,omitempty"`
	IdleCPUPct       float64 `json:"server_idle_cpu_pct,omitempty"`
	// OthersCPUPct: median share of the machine's CPU used by processes
	// outside the benchmark while it measured.
	OthersCPUPct float64 `json:"others_cpu_pct"`
	// Metric is the figure Ratio compares; Ratio = Ref's value / this one's
	// (for a rate >1 means Ref is faster; for a latency <1 means Ref is
	// faster).
	Metric string  `json:"metric,omitempty"`
	Ref    string  `json:"ref,omitempty"`
	Ratio  float64 `json:"ratio,omitempty"`
	// FloorPct: inetd rates as a percentage of the C floor's.
	FloorPct  float64 `json:"floor_pct,omitempty"`
	Skipped   string  `json:"skipped,omitempty"`
	LastError string  `json:"last_error,omitempty"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// primary returns the metric compared across servers for a case and
// whether higher is better.
func primary(group, cs string) (name string, get func(*summaryRow) float64) {
	switch {
	case strings.HasPrefix(cs, "rate"):
		return "req/s", func(r *summaryRow) float64 { return r.Throughput }
	case strings.HasPrefix(cs, "bulk"):
		return "MiB/s", func(r *summaryRow) float64 { return r.MiBps }
	case strings.Contains(cs, "open"):
		return "p99", func(r *summaryRow) float64 { return r.P99 }
	}
	return "p50", func(r *summaryRow) float64 { return r.P50 }
}

func refServer(group string) string {
	switch group {
	case "proxy":
		return "direct"
	case "scale":
		return "sockd 1 sockets"
	}
	return "sockd"
}

// summarize groups measurements by (group, case, server) in first-seen order
// and takes medians.
func summarize(ms []*measurement) []*summaryRow {
	type key struct{ g, c, s string }
	var order []key
	byKey := map[key][]*measurement{}
	for _, m := range ms {
		k := key{m.Group, m.Case, m.Server}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], m)
	}
	var rows []*summaryRow
	index := map[key]*summaryRow{}
	for _, k := range order {
		row := &summaryRow{Group: k.g, Case: k.c, Server: k.s}
		var thr, mib, p50, p90, p99, p999, mx, cpuO, cpuA, rss, hwm, st, idle, noise, gibO, gibM, busy []float64
		for _, m := range byKey[k] {
			if m.Skipped != "" {
				row.Skipped = m.Skipped
				continue
			}
			if m.Error != "" {
				row.Failed++
				row.LastError = m.Error
				if m.Result == nil {
					continue
				}
			}
			res := m.Result
			if res == nil {
				continue
			}
			row.Rounds++
			row.Errors += res.Errors.Total()
			row.Missed += res.Missed
			thr = append(thr, res.Throughput)
			mib = append(mib, res.MiBps)
			p50 = append(p50, res.Latency.P50)
			p90 = append(p90, res.Latency.P90)
			p99 = append(p99, res.Latency.P99)
			p999 = append(p999, res.Latency.P999)
			mx = append(mx, res.Latency.Max)
			cpuO = append(cpuO, m.CPUOwnMsPer1k)
			cpuA = append(cpuA, m.CPUAllMsPer1k)
			rss = append(rss, float64(m.RSSKiB))
			hwm = append(hwm, float64(m.HWMKiB))
			st = append(st, m.StartupMs)
			idle = append(idle, m.IdleCPUPct)
			noise = append(noise, m.OthersCPUPct)
			gibO = append(gibO, m.CPUSecPerGiB)
			gibM = append(gibM, m.MachineCPUSecPerGiB)
			busy = append(busy, m.MachineBusyPct)
			if row.LastError == "" && res.Errors.Total() > 0 {
				for _, kind := range loadgen.ErrorKinds {
					if msg, ok := res.ErrorExamples[kind]; ok {
						row.LastError = msg
						break
					}
				}
			}
		}
		row.Throughput, row.MiBps = median(thr), median(mib)
		if k.g == "first" || strings.HasPrefix(k.c, "bulk") {
			row.Throughput = 0 // samples or streams per second mean nothing here
		}
		row.P50, row.P90, row.P99, row.P999, row.Max = median(p50), median(p90), median(p99), median(p999), median(mx)
		row.CPUOwn, row.CPUAll = median(cpuO), median(cpuA)
		row.RSSKiB, row.HWMKiB, row.StartupMs, row.IdleCPUPct = median(rss), median(hwm), median(st), median(idle)
		row.OthersCPUPct = median(noise)
		row.CPUPerGiB, row.MachineCPUPerGiB, row.MachineBusyPct = median(gibO), median(gibM), median(busy)
		rows = append(rows, row)
		index[k] = row
	}
	for _, row := range rows {
		if row.Rounds == 0 {
			continue
		}
		metric, get := primary(row.Group, row.Case)
		row.Metric = metric
		ref := refServer(row.Group)
		if rr, ok := index[key{row.Group, row.Case, ref}]; ok && rr.Rounds > 0 && get(row) > 0 {
			row.Ref = ref
			row.Ratio = get(rr) / get(row)
		}
		if row.Group == "inetd" && strings.HasPrefix(row.Case, "rate") {
			if fr, ok := index[key{row.Group, row.Case, "floor"}]; ok && fr.Throughput > 0 {
				row.FloorPct = 100 * row.Throughput / fr.Throughput
			}
		}
	}
	return rows
}

var groupTitles = map[string]string{
	"inetd":   "inetd mode: hello per connection (rate: closed loop at C; open: fixed arrival rate, latency from the intended send time)",
	"handoff": "handoff mode: steady-state echo latency over kept connections once the server runs",
	"first":   "handoff mode: first-connection latency (server not running; a fresh daemon per sample; connect -> first byte)",
	"proxy":   "proxy mode: bulk throughput and echo latency through the proxy",
	"scale":   "scale: one sockd holding N listening Unix sockets (inetd hello jobs), or N-1 timer jobs and one socket",
	"control": "control: one sockd holding N inetd jobs; hello on the TCP probe job at a fixed rate alone, while `sockd list --json` loops, and while the driver's own list request loops (req/s: lists/s)",
	"upgrade": "upgrade: `sockd upgrade` of a sockd holding N sockets (inetd hello jobs), request to the new image's answer, with a hello probe every 5 ms throughout",
}

var groupOrder = []string{"inetd", "handoff", "first", "proxy", "scale", "control", "upgrade"}

// writeSummary prints one table per group.
func writeSummary(w io.Writer, rows []*summaryRow) {
	for _, g := range groupOrder {
		if g == "upgrade" {
			continue // writeUpgrade
		}
		var gr []*summaryRow
		for _, r := range rows {
			if r.Group == g {
				gr = append(gr, r)
			}
		}
		if len(gr) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n== %s\n", groupTitles[g])
		writeGroupTable(w, g, gr)
	}
}

type column struct {
	head string
	get  func(*summaryRow) string
	used func(*summaryRow) bool
}

func writeGroupTable(w io.Writer, group string, rows []*summaryRow) {
	num := func(f func(*summaryRow) float64, format string) (func(*summaryRow) string, func(*summaryRow) bool) {
		return func(r *summaryRow) string {
				v := f(r)
				if v == 0 {
					return "-"
				}
				return fmt.Sprintf(format, v)
			}, func(r *summaryRow) bool {
				return f(r) != 0
			}
	}
	lat := func(f func(*summaryRow) float64) (func(*summaryRow) string, func(*summaryRow) bool) {
		return func(r *summaryRow) string { return loadgen.FormatDuration(f(r)) }, func(r *summaryRow) bool { return f(r) != 0 }
	}
	mk := func(head string, g func(*summaryRow) string, u func(*summaryRow) bool) column {
		return column{head, g, u}
	}
	always := func(*summaryRow) bool { return true }
	var cols []column
	cols = append(cols, mk("case", func(r *summaryRow) string { return r.Case }, always))
	cols = append(cols, mk("server", func(r *summaryRow) string { return r.Server }, always))
	cols = append(cols, mk("rounds", func(r *summaryRow) string {
		if r.Failed > 0 {
			return fmt.Sprintf("%d (+%d failed)", r.Rounds, r.Failed)
		}
		return fmt.Sprint(r.Rounds)
	}, always))
	g, u := num(func(r *summaryRow) float64 { return r.Throughput }, "%.0f")
	cols = append(cols, mk("req/s", g, u))
	g, u = num(func(r *summaryRow) float64 { return r.MiBps }, "%.0f")
	cols = append(cols, mk("MiB/s", g, u))
	for _, p := range []struct {
		h string
		f func(*summaryRow) float64
	}{
		{"p50", func(r *summaryRow) float64 { return r.P50 }},
		{"p90", func(r *summaryRow) float64 { return r.P90 }},
		{"p99", func(r *summaryRow) float64 { return r.P99 }},
		{"p99.9", func(r *summaryRow) float64 { return r.P999 }},
		{"max", func(r *summaryRow) float64 { return r.Max }},
	} {
		g, u := lat(p.f)
		cols = append(cols, mk(p.h, g, u))
	}
	cols = append(cols, mk("errors", func(r *summaryRow) string { return fmt.Sprint(r.Errors) }, always))
	cols = append(cols, mk("missed", func(r *summaryRow) string { return fmt.Sprint(r.Missed) }, func(r *summaryRow) bool { return r.Missed != 0 }))
	g, u = num(func(r *summaryRow) float64 { return r.CPUOwn }, "%.0f")
	cols = append(cols, mk("cpu ms/1k", g, u))
	g, u = num(func(r *summaryRow) float64 { return r.CPUAll }, "%.0f")
	cols = append(cols, mk("+children", g, u))
	g, u = num(func(r *summaryRow) float64 { return r.CPUPerGiB }, "%.3f")
	cols = append(cols, mk("cpu s/GiB", g, u))
	g, u = num(func(r *summaryRow) float64 { return r.MachineCPUPerGiB }, "%.3f")
	cols = append(cols, mk("machine s/GiB", g, u))
	g, u = num(func(r *summaryRow) float64 { return r.MachineBusyPct }, "%.0f%%")
	cols = append(cols, mk("busy", g, u))
	g, u = num(func(r *summaryRow) float64 { return r.RSSKiB / 1024 }, "%.1f")
	cols = append(cols, mk("RSS MiB", g, u))
	g, u = num(func(r *summaryRow) float64 { return r.StartupMs }, "%.0fms")
	cols = append(cols, mk("startup", g, u))
	timers := func(r *summaryRow) bool { return strings.HasSuffix(r.Server, " timers") }
	cols = append(cols, mk("idle cpu", func(r *summaryRow) string {
		if !timers(r) {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", r.IdleCPUPct) // 0 is a result: no tick in the idle time
	}, timers))
	cols = append(cols, mk("others%", func(r *summaryRow) string { return fmt.Sprintf("%.0f", r.OthersCPUPct) }, always))
	ref := refServer(group)
	cols = append(cols, mk(ref+"/this", func(r *summaryRow) string {
		if r.Ratio == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f (%s)", r.Ratio, r.Metric)
	}, func(r *summaryRow) bool { return r.Ratio != 0 }))
	g, u = num(func(r *summaryRow) float64 { return r.FloorPct }, "%.0f%%")
	cols = append(cols, mk("of floor", g, u))

	var used []column
	for _, c := range cols {
		for _, r := range rows {
			if r.Skipped == "" && c.used(r) {
				used = append(used, c)
				break
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var head []string
	for _, c := range used {
		head = append(head, c.head)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, r := range rows {
		if r.Skipped != "" {
			continue
		}
		var cells []string
		for _, c := range used {
			cells = append(cells, c.get(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
	for _, r := range rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "  skipped: %s / %s: %s\n", r.Case, r.Server, r.Skipped)
		}
		if r.LastError != "" {
			fmt.Fprintf(w, "  note: %s / %s: %s\n", r.Case, r.Server, firstLine(r.LastError))
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
