package domain

import (
	"testing"

	"github.com/sockd/sockd/job"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		in   string
		uid  int
		bare string
		ok   bool
	}{
		{"user/1000/me.agent", 1000, "me.agent", true},
		{"user/0/x", 0, "x", true},
		{"system/org.x", -1, "org.x", true},
		{"user/1000/a/b", 1000, "a/b", true},
		{"me.agent", 0, "", false},
		{"user/1000", 0, "", false},
		{"user/1000/", 0, "", false},
		{"user/01000/x", 0, "", false},
		{"user/-1/x", 0, "", false},
		{"user/x/y", 0, "", false},
		{"gui/501/x", 0, "", false},
	} {
		uid, bare, ok := Split(c.in)
		if ok != c.ok || (ok && (uid != c.uid || bare != c.bare)) {
			t.Errorf("Split(%q) = %d, %q, %v; want %d, %q, %v", c.in, uid, bare, ok, c.uid, c.bare, c.ok)
		}
	}
	if q := Qualify(1000, "me.agent"); q != "user/1000/me.agent" {
		t.Errorf("Qualify = %q", q)
	}
	for in, want := range map[string]int{"user/1000": 1000, "system": -1} {
		if got, ok := Parse(in); !ok || got != want {
			t.Errorf("Parse(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"user/", "user/1000/x", "users/1", "user/+1"} {
		if _, ok := Parse(in); ok {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestAdopt(t *testing.T) {
	d := &job.Domain{UID: 1000, GID: 1000, Groups: []int{1000, 100}, User: "me", Home: "/home/me"}
	j := &job.Job{Label: "me.agent", File: "/home/me/.config/sockd/jobs/a.plist"}
	j.KeepAlive.OtherJobEnabled = []job.LabelCond{{Label: "me.db"}, {Label: "system/org.x"}}
	if ds := adopt(d, j); ds.HasErrors() {
		t.Fatal(ds)
	}
	if j.Label != "user/1000/me.agent" || j.UserName != "me" || j.Domain != d {
		t.Errorf("adopted: label %q user %q domain %v", j.Label, j.UserName, j.Domain)
	}
	if got := j.KeepAlive.OtherJobEnabled; got[0].Label != "user/1000/me.db" || got[1].Label != "org.x" {
		t.Errorf("OtherJobEnabled: %v", got)
	}
	for key, bad := range map[string]*job.Job{
		"UserName":                              {Label: "x", UserName: "root"},
		"GroupName":                             {Label: "x", GroupName: "4242"},
		"SockdProxy":                            {Label: "x", Proxy: &job.Proxy{}},
		"KeepAlive.OtherJobEnabled.user/1001/y": {Label: "x", KeepAlive: job.KeepAlive{OtherJobEnabled: []job.LabelCond{{Label: "user/1001/y"}}}},
	} {
		ds := adopt(d, bad)
		if !ds.HasErrors() || ds[0].Key != key {
			t.Errorf("%s: %v", key, ds)
		}
		if bad.Domain != nil || bad.Label != "x" {
			t.Errorf("%s: a refused job was adopted", key)
		}
	}
	if ds := adopt(d, &job.Job{Label: "y", UserName: "1000", GroupName: "100"}); ds.HasErrors() {
		t.Errorf("the user's own uid and a group of theirs: %v", ds)
	}
}
