package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockd/sockd/bench/loadgen"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/jobset"
)

func res(thr, p50, p99 float64) *loadgen.Result {
	return &loadgen.Result{Throughput: thr, Latency: loadgen.Latency{Count: 1, P50: p50, P90: p50, P99: p99, P999: p99, Max: p99}}
}

func TestSummarizeMediansAndRatios(t *testing.T) {
	var ms []*measurement
	for i, thr := range []float64{900, 1000, 5000} { // median 1000
		ms = append(ms, &measurement{Group: "inetd", Case: "rate C=8", Server: "sockd", Round: i + 1, Result: res(thr, 100, 1000)})
	}
	for i, thr := range []float64{400, 500, 600} { // median 500
		ms = append(ms, &measurement{Group: "inetd", Case: "rate C=8", Server: "tcpserver", Round: i + 1, Result: res(thr, 200, 2000)})
	}
	for i, thr := range []float64{2000, 2000} {
		ms = append(ms, &measurement{Group: "inetd", Case: "rate C=8", Server: "floor", Round: i + 1, Result: res(thr, 50, 500)})
	}
	ms = append(ms, &measurement{Group: "inetd", Case: "rate C=8", Server: "xinetd", Round: 1, Error: "boom"})
	ms = append(ms, &measurement{Group: "inetd", Case: "open 500/s", Server: "sockd", Round: 1, Result: res(500, 100, 300)})
	ms = append(ms, &measurement{Group: "inetd", Case: "open 500/s", Server: "tcpserver", Round: 1, Result: res(500, 100, 600)})

	rows := summarize(ms)
	get := func(cs, server string) *summaryRow {
		for _, r := range rows {
			if r.Case == cs && r.Server == server {
				return r
			}
		}
		t.Fatalf("no row %s/%s", cs, server)
		return nil
	}
	if r := get("rate C=8", "sockd"); r.Throughput != 1000 || r.Rounds != 3 || r.Ratio != 1 {
		t.Errorf("sockd row %+v", r)
	}
	if r := get("rate C=8", "tcpserver"); r.Throughput != 500 || r.Ratio != 2 || r.FloorPct != 25 || r.Metric != "req/s" {
		t.Errorf("tcpserver row %+v, want median 500, sockd/this 2, 25%% of floor", r)
	}
	if r := get("rate C=8", "xinetd"); r.Rounds != 0 || r.Failed != 1 || r.LastError != "boom" {
		t.Errorf("xinetd row %+v", r)
	}
	if r := get("open 500/s", "tcpserver"); r.Metric != "p99" || r.Ratio != 0.5 {
		t.Errorf("open-loop row %+v, want p99 ratio 0.5", r)
	}
	var buf bytes.Buffer
	writeSummary(&buf, rows)
	for _, want := range []string{"rate C=8", "tcpserver", "2.00 (req/s)", "25%", "boom"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}

	svg := renderSVG("test", buildPanels(rows))
	dec := xml.NewDecoder(strings.NewReader(svg))
	rects := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// Background + 3 rate bars + legend, + 2x4 latency bars + legend.
	if rects < 1+3+1+8+4 {
		t.Errorf("SVG has %d rects, want the bars:\n%s", rects, svg)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPlistEscapes(t *testing.T) {
	p := plist("bench.x", "/tmp/a&b/hello", true, tcpSock(20001))
	var v struct{}
	if err := xml.Unmarshal([]byte(p), &v); err != nil {
		t.Fatalf("plist is not XML: %v\n%s", err, p)
	}
	for _, want := range []string{"/tmp/a&amp;b/hello", "<string>20001</string>", "<key>Wait</key><false/>", "<key>MaxChildren</key><integer>1024</integer>"} {
		if !strings.Contains(p, want) {
			t.Errorf("plist lacks %q:\n%s", want, p)
		}
	}
}

// TestJobsLoad checks the job files the driver writes with sockd's own loader.
func TestJobsLoad(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"bench.hello":   plist("bench.hello", "/bin/true", true, tcpSock(20001)),
		"bench.echo":    plist("bench.echo", "/bin/true", false, tcpSock(20002)),
		"bench.scale.0": plist("bench.scale.0", "/bin/true", true, unixSock(dir+"/0.sock")),
	}
	for label, body := range files {
		if err := os.WriteFile(filepath.Join(dir, label+".plist"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := jobset.ForThisProcess()
	opts.SkipPermissions = true
	set := jobset.Load(jobset.Sources{Paths: []string{dir}}, opts)
	if len(set.Diags) > 0 {
		t.Fatalf("diagnostics: %v", set.Diags)
	}
	jobs := set.Jobs
	byLabel := map[string]*job.Job{}
	for _, j := range jobs {
		byLabel[j.Label] = j
	}
	if j := byLabel["bench.hello"]; j == nil || j.Mode() != job.ModeInetdNowait || j.Limits.MaxChildren != 1024 ||
		len(j.Endpoints()) != 1 || j.Endpoints()[0].Address != "127.0.0.1:20001" {
		t.Errorf("bench.hello: %+v", j)
	}
	if j := byLabel["bench.echo"]; j == nil || j.Mode() != job.ModeHandoff || len(j.Endpoints()) != 1 || j.Endpoints()[0].Network != "tcp4" {
		t.Errorf("bench.echo: %+v", j)
	}
	if j := byLabel["bench.scale.0"]; j == nil || len(j.Endpoints()) != 1 || j.Endpoints()[0].Network != "unix" {
		t.Errorf("bench.scale.0: %+v", j)
	}
}

func TestSummarizeBulkCPU(t *testing.T) {
	bulk := func(mib, own, machine, busy float64) *measurement {
		return &measurement{Group: "proxy", Case: "bulk 4 streams", Server: "sockd", Result: &loadgen.Result{MiBps: mib, Bytes: 1 << 30},
			CPUSecPerGiB: own, MachineCPUSecPerGiB: machine, MachineBusyPct: busy}
	}
	ms := []*measurement{
		bulk(1900, 0.20, 1.10, 90), bulk(2000, 0.18, 0.99, 96), bulk(2100, 0.17, 0.95, 99),
		{Group: "proxy", Case: "bulk 4 streams", Server: "direct", Result: &loadgen.Result{MiBps: 4000, Bytes: 1 << 30}, MachineCPUSecPerGiB: 0.5, MachineBusyPct: 100},
	}
	rows := summarize(ms)
	r := rows[0]
	if r.MiBps != 2000 || r.CPUPerGiB != 0.18 || r.MachineCPUPerGiB != 0.99 || r.MachineBusyPct != 96 || r.Ratio != 2 {
		t.Errorf("sockd bulk row %+v, want medians 2000 MiB/s, 0.18 and 0.99 s/GiB, 96%% busy, direct/this 2", r)
	}
	var buf bytes.Buffer
	writeSummary(&buf, rows)
	for _, want := range []string{"cpu s/GiB", "machine s/GiB", "0.180", "0.990", "96%", "0.500"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestBulkCPUFinish(t *testing.T) {
	// The machine sample works anywhere /proc/stat exists; a proc-less
	// (direct) target records no own figure.
	if _, _, err := machineBusy(); err != nil {
		t.Skipf("no /proc/stat: %v", err)
	}
	c := startBulkCPU(nil)
	c.busy -= 2 * clockTicks // as if 2 CPU-seconds had been busy since
	c.total -= 4 * clockTicks
	m := &measurement{Result: &loadgen.Result{Bytes: 2 << 30}}
	c.finish(m)
	if m.CPUSecPerGiB != 0 {
		t.Errorf("own CPU %v for a target without a process", m.CPUSecPerGiB)
	}
	if m.MachineCPUSecPerGiB < 1 || m.MachineCPUSecPerGiB > 2 {
		t.Errorf("machine CPU %v s/GiB, want about 1 (2 s over 2 GiB plus what the test used)", m.MachineCPUSecPerGiB)
	}
	if m.MachineBusyPct <= 0 || m.MachineBusyPct > 100 {
		t.Errorf("busy %v%%", m.MachineBusyPct)
	}
}
