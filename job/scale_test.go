package job

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Bounds for the large inputs of issue 15 item 3: generous enough for a
// slow shared machine, far below what a pairwise check takes (seconds to
// minutes, and hundreds of megabytes of messages).
const (
	largeTimeBound   = 10 * time.Second
	largeOutputBound = 64 << 10
)

// sameAddressFile is a job whose n sockets all claim 127.0.0.1:8080.
func sameAddressFile(n int) []byte {
	dict := `<dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>8080</string></dict>`
	return xmlJob(base + sockets(`<key>L</key><array>`+strings.Repeat(dict, n)+`</array>`))
}

// portZeroFile is a job file of nearly MaxFileSize bytes with as many
// socket names as fit, each a port-0 socket on both wildcards: distinct
// sockets that never conflict.
func portZeroFile() []byte {
	var b strings.Builder
	for i := 0; b.Len() < MaxFileSize-400; i++ {
		fmt.Fprintf(&b, `<key>s%05d</key><dict><key>SockServiceName</key><string>0</string></dict>`, i)
	}
	return xmlJob(base + sockets(b.String()))
}

// portZeroOpenStep is portZeroFile in OpenStep text, which packs more
// sockets into the same size.
func portZeroOpenStep() []byte {
	var b strings.Builder
	b.WriteString(`{Label=org.test;ProgramArguments=(/bin/true);Sockets={`)
	for i := 0; b.Len() < MaxFileSize-100; i++ {
		fmt.Fprintf(&b, `s%05d={SockServiceName=0;};`, i)
	}
	b.WriteString("};}\n")
	return []byte(b.String())
}

// largeFile is one large input and what its diagnostics must say.
type largeFile struct {
	name string
	data []byte
	want []string
}

func largeFiles() []largeFile {
	capMsg := "sockd accepts in one job"
	return []largeFile{
		{"same.plist", sameAddressFile(2000), []string{
			"same.plist:4: Sockets.L[1]: error: tcp4 127.0.0.1:8080 is claimed by 1999 other sockets of this job (first: Sockets.L[0], last: Sockets.L[1999])",
			"same.plist:4: Sockets: error: the job has 2000 sockets, more than the 1024 " + capMsg}},
		{"port0.plist", portZeroFile(), []string{"port0.plist:4: Sockets: error: the job has ", capMsg}},
		{"port0-openstep.plist", portZeroOpenStep(), []string{"port0-openstep.plist: Sockets: error: the job has ", capMsg}},
	}
}

// checkLarge applies the time and output bounds to the diagnostics of f.
func checkLarge(t *testing.T, f largeFile, took time.Duration, diags Diags) {
	t.Helper()
	var out strings.Builder
	for _, d := range diags {
		if d.File == f.name {
			out.WriteString(d.String() + "\n")
		}
	}
	if took > largeTimeBound || out.Len() > largeOutputBound {
		t.Errorf("%s (%d bytes): %v and %d bytes of messages, want under %v and %d bytes", f.name, len(f.data), took, out.Len(), largeTimeBound, largeOutputBound)
	}
	for _, w := range f.want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("%s: messages lack %q:\n%.2000s", f.name, w, out.String())
		}
	}
}

// TestLargeFilesDecode: a job of 2,000 sockets on one address and a 1 MiB
// job of port-0 sockets are refused in bounded time with a few lines, not
// one line per pair of sockets after a quadratic check.
func TestLargeFilesDecode(t *testing.T) {
	for _, f := range largeFiles() {
		start := time.Now()
		j, diags := Decode(f.data, f.name)
		checkLarge(t, f, time.Since(start), diags)
		if j != nil {
			t.Errorf("%s loaded", f.name)
		}
	}
}

// crossJobs builds n jobs by hand, each with a specific address on one
// shared port, a port-0 wildcard and a Unix socket: nothing conflicts, but
// a pairwise check compares every job with every earlier one. Every 1000th
// job repeats the address of the job before it, and is dropped.
func crossJobs(n int) []*Job {
	jobs := make([]*Job, n)
	for i := range jobs {
		a := i
		if i%1000 == 999 {
			a = i - 1
		}
		j := &Job{File: fmt.Sprintf("j%06d.plist", i), Label: fmt.Sprintf("org.j%d", i), Sockets: []SocketGroup{{Name: "L", Sockets: []Socket{{
			Key: "Sockets.L", Passive: true, Endpoints: []Endpoint{
				{Network: "tcp4", Address: fmt.Sprintf("127.%d.%d.%d:8080", a>>16&255, a>>8&255, a&255), Passive: true},
				{Network: "tcp6", Address: "[::]:0", Passive: true},
				{Network: "unix", Address: fmt.Sprintf("/run/j%d.sock", a), Passive: true},
			}}}}}}
		j.LinkEndpoints()
		jobs[i] = j
	}
	return jobs
}

// TestCrossCheckLarge: 40,000 jobs are checked against each other in
// bounded time (a pairwise check makes 1.6 billion comparisons).
func TestCrossCheckLarge(t *testing.T) {
	jobs := crossJobs(40000)
	start := time.Now()
	kept, diags := CrossCheck(jobs)
	if took := time.Since(start); took > largeTimeBound {
		t.Errorf("CrossCheck of %d jobs took %v, want under %v", len(jobs), took, largeTimeBound)
	}
	if len(kept) != 40000-40 || len(diags) != 2*40 {
		t.Fatalf("kept %d jobs, %d diags", len(kept), len(diags))
	}
	want := `j000999.plist: Sockets.L: error: tcp4 127.0.3.230:8080 conflicts with tcp4 127.0.3.230:8080 of job "org.j998" (j000998.plist Sockets.L), so this job is not loaded: change the address, or disable one of the jobs`
	if diags[0].String() != want {
		t.Errorf("got\n  %s\nwant\n  %s", diags[0], want)
	}
}

// BenchmarkCrossCheck10000 measures CrossCheck over 10,000 jobs (see
// crossJobs).
func BenchmarkCrossCheck10000(b *testing.B) {
	jobs := crossJobs(10000)
	b.ResetTimer()
	for b.Loop() {
		CrossCheck(jobs)
	}
}
