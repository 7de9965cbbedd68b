package control

import (
	"strings"
	"testing"
)

func TestAuthorize(t *testing.T) {
	cases := []struct {
		peer, owner int
		cmd         string
		want        string // "" = allowed
	}{
		{1000, 0, CmdList, ""},
		{1000, 0, CmdPrint, ""},
		{1000, 0, CmdBlame, ""},
		// Root's sockd hosts user domains: the handler decides per label.
		{1000, 0, CmdKickstart, ""},
		{1000, 0, CmdDisable, ""},
		{1000, 0, CmdBootstrap, ""},
		{1000, 0, CmdReload, "reload needs root: you are uid 1000"},
		{0, 0, CmdStop, ""},
		{1000, 1000, CmdStop, ""},
		{0, 1000, CmdStop, ""},
		{1001, 1000, CmdStop, "stop needs uid 1000 (this sockd's user) or root: you are uid 1001"},
		{1001, 1000, CmdList, ""},
		{0, 0, "format-disk", `unknown command "format-disk"`},
	}
	for _, c := range cases {
		err := Authorize(Peer{Uid: c.peer}, c.owner, Request{Cmd: c.cmd})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("uid %d -> sockd of uid %d, %s: refused: %v", c.peer, c.owner, c.cmd, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("uid %d -> sockd of uid %d, %s: %v, want %q", c.peer, c.owner, c.cmd, err, c.want)
		}
	}
}

func TestExitStatuses(t *testing.T) {
	for st, want := range map[Status]int{OK: 0, Failed: 1, BadRequest: 2, NoSuchJob: 3, NotPermitted: 4, "": 1} {
		if got := st.Exit(); got != want {
			t.Errorf("%q.Exit() = %d, want %d", st, got, want)
		}
	}
}
