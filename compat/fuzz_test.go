package compat

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sockd/sockd/job"
)

// addSeeds adds every regular file under dir as a seed.
func addSeeds(f *testing.F, dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
		return nil
	})
}

// checkFuzzResult checks what must hold for any input: no nil job, unique
// labels, linked endpoints, diags naming the input, and every job can be
// written out as a plist.
func checkFuzzResult(t *testing.T, name string, jobs []*job.Job, diags job.Diags) {
	seen := map[string]bool{}
	for _, j := range jobs {
		if j == nil {
			t.Fatal("nil job")
		}
		if seen[j.Label] {
			t.Fatalf("duplicate label %q", j.Label)
		}
		seen[j.Label] = true
		if len(j.Endpoints()) == 0 {
			t.Fatalf("%s: no endpoints", j.Label)
		}
		for _, e := range j.Endpoints() {
			if e.Socket == nil {
				t.Fatalf("%s: unlinked endpoint", j.Label)
			}
		}
		if j.Internal == "" && j.Proxy == nil && (j.Path == "" || len(j.Argv) == 0) {
			t.Fatalf("%s: no program", j.Label)
		}
		if _, err := WritePlist(j); err != nil {
			t.Fatalf("%s: WritePlist: %v", j.Label, err)
		}
	}
	for _, d := range diags {
		if d.File != name || d.Msg == "" {
			t.Fatalf("bad diag %+v", d)
		}
	}
}

func FuzzParseInetd(f *testing.F) {
	addSeeds(f, filepath.Join(corpusPath(), "inetd"))
	f.Add([]byte("*:\n[::1]:echo stream tcp6 nowait/0/5/2 root:wheel internal\n127.0.0.1,localhost:7 dgram udp wait.10 u.g /bin/x x\n\targ\n/run/s seqpacket unix nowait:f.3 u /bin/y y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, diags := parseInetd(data, "fuzz", offlineInfo())
		checkFuzzResult(t, "fuzz", jobs, diags)
		Detect("fuzz", data)
	})
}

func FuzzParseXinetd(f *testing.F) {
	addSeeds(f, filepath.Join(corpusPath(), "xinetd"))
	f.Add([]byte("defaults\n{\nonly_from = 10.{1,2}.0.0 localhost\ninstances = UNLIMITED\n}\ninclude /x\nservice a {\nsocket_type = stream\nwait = no\ntype = UNLISTED\nport = 9\nredirect = ::1 7\nenv += A=1\nonly_from -= localhost\nrlimit_as = 4M\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, diags := parseXinetd(data, "fuzz", offlineInfo())
		checkFuzzResult(t, "fuzz", jobs, diags)
		Detect("fuzz", data)
	})
}
