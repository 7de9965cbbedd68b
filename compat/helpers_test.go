package compat

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sockd/sockd/job"
)

// corpusRoot is the shared corpus beside the repository (../shared/corpus
// from the repository root, in CI as here). A test that needs it skips
// when it is missing, and fails under CI=true.
func corpusRoot(t testing.TB) string {
	t.Helper()
	root := corpusPath()
	if _, err := os.Stat(root); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing: %v", err)
		}
		t.Skipf("corpus not found beside the repository: %v", err)
	}
	return root
}

// corpusFiles reads the corpus whatever its files' owners and modes (a
// checkout may be group-writable): the rule itself is tested on files of
// the tests' own.
var corpusFiles = job.LoadOptions{SkipPermissions: true}

// corpusPath is where the corpus is, whether or not it is there (fuzz
// seeds: a missing corpus only means fewer seeds).
func corpusPath() string {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(file))
	return filepath.Join(repo, "..", "shared", "corpus")
}

// diagStrings renders diags with prefix trimmed from file names.
func diagStrings(ds job.Diags, prefix string) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, strings.ReplaceAll(d.String(), prefix, ""))
	}
	return out
}

func countSev(ds job.Diags) (errs, warns int) {
	for _, d := range ds {
		if d.Severity == job.Error {
			errs++
		} else {
			warns++
		}
	}
	return
}

// endpoints renders a job's endpoints as "network address" strings.
func endpoints(j *job.Job) []string {
	var out []string
	for _, e := range j.Endpoints() {
		out = append(out, e.Network+" "+e.Address)
	}
	return out
}

func labels(jobs []*job.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Label)
	}
	return out
}

func findJob(t *testing.T, jobs []*job.Job, label string) *job.Job {
	t.Helper()
	for _, j := range jobs {
		if j.Label == label {
			return j
		}
	}
	t.Fatalf("no job %s among %v", label, labels(jobs))
	return nil
}

// wantDiags checks that every string of want is among the diags.
func wantDiags(t *testing.T, got []string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("missing diag\n  %s\namong\n  %s", w, strings.Join(got, "\n  "))
		}
	}
}

func eq[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func show(v any) string { return fmt.Sprintf("%+v", v) }

// offlineHosts is the /etc/hosts of the offline tests: Debian's.
const offlineHosts = "127.0.0.1\tlocalhost\n127.0.1.1\tdebian.example\tdebian\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\n"

// offlineInfo reads nothing from the host: offlineResolver, Debian's
// /etc/hosts, interfaces lo and eth0, no TCP wrappers rules.
func offlineInfo() sysInfo { return testInfo(offlineHosts, "", "") }

// testInfo is offlineInfo with the given /etc/hosts, hosts.allow and
// hosts.deny.
func testInfo(hosts, allow, deny string) sysInfo {
	w := &wrapRules{rules: parseWrapRules([]byte(allow), "/etc/hosts.allow", false)}
	w.rules = append(w.rules, parseWrapRules([]byte(deny), "/etc/hosts.deny", true)...)
	return sysInfo{lookup: offlineResolver, hosts: parseHosts([]byte(hosts)), ifaceAddrs: fakeIfaces, wrap: w}
}

func fakeIfaces(name string) ([]netip.Addr, bool) {
	switch name {
	case "lo":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, true
	case "eth0":
		return []netip.Addr{netip.MustParseAddr("192.0.2.10")}, true
	}
	return nil, false
}
