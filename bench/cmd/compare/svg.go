package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/sockd/sockd/bench/loadgen"
)

// panel is one grouped bar chart: for each category (a server) one bar per
// series (a concurrency, a percentile).
type panel struct {
	title  string
	unit   string
	cats   []string
	series []string
	vals   [][]float64 // [series][cat]; 0 = no value
	log    bool
	label  func(float64) string
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"}

const (
	svgWidth    = 960
	panelHeight = 320
	marginLeft  = 80
	marginRight = 20
	marginTop   = 62
	marginBot   = 60
)

// renderSVG draws the panels stacked vertically.
func renderSVG(title string, panels []panel) string {
	var b strings.Builder
	h := 40 + len(panels)*panelHeight
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, h, svgWidth, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", marginLeft, xmlEscape(title))
	for i, p := range panels {
		drawPanel(&b, p, 40+i*panelHeight)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func drawPanel(b *strings.Builder, p panel, y0 int) {
	plotW := float64(svgWidth - marginLeft - marginRight)
	plotH := float64(panelHeight - marginTop - marginBot)
	top := float64(y0 + marginTop)
	bottom := top + plotH
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", marginLeft, y0+22, xmlEscape(p.title))

	lo, hi := math.Inf(1), 0.0
	for _, s := range p.vals {
		for _, v := range s {
			if v > 0 {
				lo = math.Min(lo, v)
				hi = math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		fmt.Fprintf(b, `<text x="%d" y="%.0f" fill="#888">no data</text>`+"\n", marginLeft+10, top+plotH/2)
		return
	}
	var scale func(float64) float64 // value -> y
	var ticks []float64
	if p.log {
		a, c := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if c == a {
			c = a + 1
		}
		scale = func(v float64) float64 {
			if v <= 0 {
				return bottom
			}
			return bottom - (math.Log10(v)-a)/(c-a)*plotH
		}
		for e := a; e <= c; e++ {
			ticks = append(ticks, math.Pow(10, e))
		}
	} else {
		step := niceStep(hi * 1.1 / 5)
		maxV := math.Ceil(hi*1.1/step) * step
		scale = func(v float64) float64 { return bottom - v/maxV*plotH }
		for v := 0.0; v <= maxV+step/2; v += step {
			ticks = append(ticks, v)
		}
	}
	// Axes and grid.
	for _, t := range ticks {
		y := scale(t)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginLeft, y, svgWidth-marginRight, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", marginLeft-6, y+4, xmlEscape(p.label(t)))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333"/>`+"\n", marginLeft, bottom, svgWidth-marginRight, bottom)
	fmt.Fprintf(b, `<text x="16" y="%.1f" transform="rotate(-90 16 %.1f)" text-anchor="middle" fill="#444">%s</text>`+"\n",
		top+plotH/2, top+plotH/2, xmlEscape(p.unit))

	groupW := plotW / float64(len(p.cats))
	barW := groupW * 0.8 / float64(max(1, len(p.series)))
	for ci, cat := range p.cats {
		gx := float64(marginLeft) + float64(ci)*groupW + groupW*0.1
		for si := range p.series {
			v := p.vals[si][ci]
			if v <= 0 {
				continue
			}
			x := gx + float64(si)*barW
			y := scale(v)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
				x, y, barW-1, bottom-y, palette[si%len(palette)], xmlEscape(cat), xmlEscape(p.series[si]), xmlEscape(p.label(v)))
			if barW >= 22 {
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9" fill="#222">%s</text>`+"\n",
					x+barW/2, y-3, xmlEscape(p.label(v)))
			}
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", gx+groupW*0.4, bottom+16, xmlEscape(cat))
	}
	// Legend.
	for si, s := range p.series {
		x := float64(marginLeft) + float64(si)*110
		fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/>`+"\n", x, y0+30, palette[si%len(palette)])
		fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`+"\n", x+16, y0+40, xmlEscape(s))
	}
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func countLabel(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

// buildPanels turns the summary into the plot: spawn rate bars, open-loop
// latency percentiles, handoff first-connection and steady latency, proxy.
func buildPanels(rows []*summaryRow) []panel {
	get := func(group, cs string) []*summaryRow {
		var out []*summaryRow
		for _, r := range rows {
			if r.Group == group && r.Case == cs && r.Rounds > 0 {
				out = append(out, r)
			}
		}
		return out
	}
	servers := func(group string, cases []string) []string {
		seen := map[string]bool{}
		var out []string
		for _, r := range rows {
			if r.Group != group || r.Rounds == 0 || seen[r.Server] {
				continue
			}
			for _, c := range cases {
				if r.Case == c {
					seen[r.Server] = true
					out = append(out, r.Server)
					break
				}
			}
		}
		return out
	}
	casesOf := func(group, prefix string) []string {
		seen := map[string]bool{}
		var out []string
		for _, r := range rows {
			if r.Group == group && strings.HasPrefix(r.Case, prefix) && !seen[r.Case] {
				seen[r.Case] = true
				out = append(out, r.Case)
			}
		}
		return out
	}
	value := func(group, cs, server string, f func(*summaryRow) float64) float64 {
		for _, r := range get(group, cs) {
			if r.Server == server {
				return f(r)
			}
		}
		return 0
	}
	var panels []panel
	// Spawn rate bars.
	if rc := casesOf("inetd", "rate"); len(rc) > 0 {
		sv := servers("inetd", rc)
		p := panel{title: "inetd mode: hello connections per second (closed loop, median of rounds)", unit: "connections/s",
			cats: sv, series: rc, label: countLabel}
		for _, c := range rc {
			var vs []float64
			for _, s := range sv {
				vs = append(vs, value("inetd", c, s, func(r *summaryRow) float64 { return r.Throughput }))
			}
			p.vals = append(p.vals, vs)
		}
		panels = append(panels, p)
	}
	pct := []struct {
		name string
		f    func(*summaryRow) float64
	}{
		{"p50", func(r *summaryRow) float64 { return r.P50 }},
		{"p90", func(r *summaryRow) float64 { return r.P90 }},
		{"p99", func(r *summaryRow) float64 { return r.P99 }},
		{"p99.9", func(r *summaryRow) float64 { return r.P999 }},
	}
	latPanel := func(group, cs, title string) {
		sv := servers(group, []string{cs})
		if len(sv) == 0 {
			return
		}
		p := panel{title: title, unit: "latency (log scale)", cats: sv, log: true, label: loadgen.FormatDuration}
		for _, q := range pct {
			p.series = append(p.series, q.name)
			var vs []float64
			for _, s := range sv {
				vs = append(vs, value(group, cs, s, q.f))
			}
			p.vals = append(p.vals, vs)
		}
		panels = append(panels, p)
	}
	for _, c := range casesOf("inetd", "open") {
		latPanel("inetd", c, "inetd mode: latency percentiles at "+strings.TrimPrefix(c, "open ")+" from the intended send time")
	}
	latPanel("first", "connect->first byte", "handoff mode: first-connection latency (server not running)")
	latPanel("handoff", "echo C=1", "handoff mode: steady-state echo latency, C=1")
	latPanel("proxy", "echo C=32", "proxy mode: echo latency, C=32")
	if sv := servers("proxy", []string{"bulk 1 stream"}); len(sv) > 0 {
		p := panel{title: "proxy mode: bulk throughput, one stream", unit: "MiB/s", cats: sv, series: []string{"MiB/s"}, label: countLabel}
		var vs []float64
		for _, s := range sv {
			vs = append(vs, value("proxy", "bulk 1 stream", s, func(r *summaryRow) float64 { return r.MiBps }))
		}
		p.vals = append(p.vals, vs)
		panels = append(panels, p)
	}
	if sv := servers("scale", []string{"accept C=1"}); len(sv) > 0 {
		p := panel{title: "scale: accept latency on one socket while N are held, C=1", unit: "latency (log scale)",
			cats: sv, log: true, label: loadgen.FormatDuration}
		for _, q := range pct {
			p.series = append(p.series, q.name)
			var vs []float64
			for _, s := range sv {
				vs = append(vs, value("scale", "accept C=1", s, q.f))
			}
			p.vals = append(p.vals, vs)
		}
		panels = append(panels, p)
	}
	if sv := servers("control", []string{ctlProbeAlone}); len(sv) > 0 {
		p := panel{title: "control: probe p99 alone, while `sockd list --json` loops, while the raw list loops", unit: "latency (log scale)",
			cats: sv, log: true, label: loadgen.FormatDuration}
		for _, c := range []string{ctlProbeAlone, ctlProbeCmd, ctlProbeRaw} {
			p.series = append(p.series, c)
			var vs []float64
			for _, s := range sv {
				vs = append(vs, value("control", c, s, func(r *summaryRow) float64 { return r.P99 }))
			}
			p.vals = append(p.vals, vs)
		}
		panels = append(panels, p)
	}
	return panels
}
