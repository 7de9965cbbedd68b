package main

import (
	"slices"
	"testing"
)

func TestDomainPrefix(t *testing.T) {
	for in, want := range map[string]string{
		// The daemon resolves domains; the client only maps gui/ to user/.
		"system/org.x": "system/org.x", "gui/501/org.x": "user/501/org.x", "user/0/org.x": "user/0/org.x",
		"org.x": "org.x", "gui/org.x": "gui/org.x", "/etc/sockd/jobs/x.plist": "/etc/sockd/jobs/x.plist",
	} {
		if got := domainPrefix(in); got != want {
			t.Errorf("domainPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSignalFirst(t *testing.T) {
	cases := []struct{ cmd, in, want []string }{
		{[]string{"kill"}, []string{"-9", "org.x"}, []string{"9", "org.x"}},
		{[]string{"kill"}, []string{"-TERM", "org.x", "--json"}, []string{"TERM", "org.x", "--json"}},
		{[]string{"kill"}, []string{"--json", "HUP", "org.x"}, []string{"--json", "HUP", "org.x"}},
		{[]string{"stop"}, []string{"-9", "org.x"}, []string{"-9", "org.x"}},
	}
	for _, c := range cases {
		if got := signalFirst(c.cmd[0], c.in); !slices.Equal(got, c.want) {
			t.Errorf("signalFirst(%s, %q) = %q, want %q", c.cmd[0], c.in, got, c.want)
		}
	}
}
