package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// ---- upgrade: `sockd upgrade` with 10 and 10,000 sockets held ----
//
// Each round starts a fresh sockd holding N sockets (N-1 inetd hello jobs
// on Unix sockets and the probe on loopback TCP) and runs upgradesPerRound
// `sockd upgrade --binary B` commands, B alternating between two copies
// of the binary. A sample is the command's wall time, exec to exit: the
// request, the new binary's check, the exec, the new image's start (it
// takes every socket over) and its answer to the version request that
// ends the command. Throughout, a client connects to the probe every 5
// ms: connections that fail, and the slowest, show what a client sees
// while sockd re-executes (the kernel queues it meanwhile).

// upgradeSizes are the socket counts of the upgrade group.
var upgradeSizes = []int{10, 10000}

const upgradesPerRound = 10

func (r *runner) upgradeRound(round int) {
	if r.e.sockd == "" {
		r.add(&measurement{Group: "upgrade", Case: "all", Server: "sockd", Round: round, Skipped: "sockd not built"})
		return
	}
	bins, err := r.upgradeBins()
	for _, n := range upgradeSizes {
		if r.ctx.Err() != nil {
			return
		}
		cs := fmt.Sprintf("upgrade, %d sockets", n)
		if err == nil {
			err = r.upgradeOne(round, n, cs, bins)
		}
		if err != nil {
			r.add(&measurement{Group: "upgrade", Case: cs, Server: "sockd", Round: round, Error: err.Error()})
			err = nil
		}
	}
}

// upgradeBins are two copies of the sockd under test, the binaries the
// upgrades alternate between.
func (r *runner) upgradeBins() ([2]string, error) {
	var out [2]string
	data, err := os.ReadFile(r.e.sockd)
	if err != nil {
		return out, err
	}
	for i := range out {
		out[i] = filepath.Join(r.e.tmp, fmt.Sprintf("sockd-upgrade-%d", i))
		if err := os.WriteFile(out[i], data, 0o755); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (r *runner) upgradeOne(round, n int, cs string, bins [2]string) error {
	f, err := r.jobsFixture(n, fmt.Sprintf("-upgrade%d", n))
	if err != nil {
		return err
	}
	p, ctl, err := r.startControlDaemon(bins[0], fmt.Sprintf("sockd %d sockets", n), f)
	if err != nil {
		return err
	}
	defer p.stop()
	stop := make(chan struct{})
	var pr probeResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); probeLoop(fmt.Sprintf("127.0.0.1:%d", f.port), stop, &pr) }()
	m := &measurement{Group: "upgrade", Case: cs, Server: "sockd", Round: round}
	for i := range upgradesPerRound {
		d, err := upgradeCmd(bins[0], ctl, bins[(i+1)%2])
		if err != nil {
			close(stop)
			wg.Wait()
			return err
		}
		m.SamplesMs = append(m.SamplesMs, float64(d)/1e6)
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if p.exited() {
		return fmt.Errorf("sockd exited: %s", p.logTail())
	}
	m.ProbeConns, m.ProbeErrors, m.ProbeMaxMs = pr.conns, pr.errors, float64(pr.max)/1e6
	r.add(m)
	r.logf("  upgrade  %-22s median %.1f ms, max %.1f ms; probe %d conns, %d failed, slowest %.1f ms",
		cs, median(m.SamplesMs), slicesMax(m.SamplesMs), pr.conns, pr.errors, m.ProbeMaxMs)
	return nil
}

// upgradeCmd runs `sockd upgrade` once and returns its wall time.
func upgradeCmd(sockd, ctl, bin string) (time.Duration, error) {
	cmd := exec.Command(sockd, "upgrade", "--control", ctl, "--binary", bin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil || !strings.Contains(out.String(), "upgraded in place") {
		return d, fmt.Errorf("sockd upgrade: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return d, nil
}

// probeResult is what the probe client saw.
type probeResult struct {
	conns, errors int
	max           time.Duration
}

// probeLoop connects to addr every 5 ms, sends a request line and reads
// hello's reply.
func probeLoop(addr string, stop <-chan struct{}, pr *probeResult) {
	buf := make([]byte, 64)
	for {
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		t0 := time.Now()
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err = io.WriteString(c, "hello\n"); err == nil {
				_, err = io.ReadFull(c, buf[:6]) // "hello\n"
			}
			c.Close()
		}
		pr.conns++
		if err != nil {
			pr.errors++
		}
		pr.max = max(pr.max, time.Since(t0))
	}
}

func slicesMax(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// writeUpgrade prints the upgrade group: per socket count, the samples of
// every round pooled.
func writeUpgrade(w io.Writer, ms []*measurement) {
	type fig struct {
		samples             []float64
		conns, errs, rounds int
		probeMax            float64
		failed              []string
	}
	var order []string
	figs := map[string]*fig{}
	for _, m := range ms {
		if m.Group != "upgrade" {
			continue
		}
		f := figs[m.Case]
		if f == nil {
			f = &fig{}
			figs[m.Case] = f
			order = append(order, m.Case)
		}
		if m.Error != "" {
			f.failed = append(f.failed, m.Error)
			continue
		}
		f.rounds++
		f.samples = append(f.samples, m.SamplesMs...)
		f.conns += m.ProbeConns
		f.errs += m.ProbeErrors
		f.probeMax = max(f.probeMax, m.ProbeMaxMs)
	}
	if len(order) == 0 {
		return
	}
	fmt.Fprintf(w, "\n== %s\n", groupTitles["upgrade"])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\trounds\tupgrades\tmedian\tp90\tmax\tprobe conns\tprobe failed\tprobe slowest\t")
	for _, c := range order {
		f := figs[c]
		s := append([]float64(nil), f.samples...)
		sort.Float64s(s)
		p90 := 0.0
		if len(s) > 0 {
			p90 = s[min(len(s)-1, len(s)*9/10)]
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1fms\t%.1fms\t%.1fms\t%d\t%d\t%.1fms\t\n", c, f.rounds, len(s), median(s), p90, slicesMax(s), f.conns, f.errs, f.probeMax)
		for _, e := range f.failed {
			fmt.Fprintf(tw, "  failed: %s\t\t\t\t\t\t\t\t\t\n", e)
		}
	}
	tw.Flush()
}
