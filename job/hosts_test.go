package job

import (
	"os"
	"strings"
	"testing"
)

// TestHostMatches: a name matches as launchctl compares it, whole and
// ignoring case (strcasecmp with the kernel's host name): a short name is
// not a longer one.
func TestHostMatches(t *testing.T) {
	for _, c := range []struct {
		entry, host string
		want        bool
	}{
		{"web1", "web1", true},
		{"WEB1", "web1", true},
		{"Web1.Example.Com", "web1.example.com", true},
		{"web1", "web1.prod.example.com", false}, // not the host's first label
		{"web1.prod.example.com", "web1", false}, // nor the entry's
		{"web1.example.com.", "web1.example.com", false},
		{"web1.example.com", "web1.example.org", false},
		{"web", "web1", false},
		{"", "web1", false},
		{"", "", false},
	} {
		if got := HostMatches(c.entry, c.host); got != c.want {
			t.Errorf("HostMatches(%q, %q) = %v, want %v", c.entry, c.host, got, c.want)
		}
	}
}

func TestLoadsOn(t *testing.T) {
	for _, c := range []struct {
		name    string
		h       HostLimits
		host    string
		ok      bool
		key, in string
	}{
		{"no limits", HostLimits{}, "web1", true, "", ""},
		{"to this host", HostLimits{To: []string{"db1", "web1"}}, "web1", true, "", ""},
		{"to this host, other case", HostLimits{To: []string{"WEB1.prod.example.com"}}, "web1.Prod.example.com", true, "", ""},
		{"to a short name of this host", HostLimits{To: []string{"web1"}}, "web1.prod.example.com", false, "LimitLoadToHosts",
			`this host, "web1.prod.example.com", is not among "web1" ("web1" only differs in the domain: names are compared whole, as launchd does; write "web1.prod.example.com" to load the job here)`},
		{"to a long name of this host", HostLimits{To: []string{"web1.prod.example.com"}}, "web1", false, "LimitLoadToHosts", `is not among "web1.prod.example.com"`},
		{"to another host", HostLimits{To: []string{"db1", "db2"}}, "web1", false, "LimitLoadToHosts", `this host, "web1", is not among "db1", "db2"`},
		{"to no host", HostLimits{To: []string{}}, "web1", false, "LimitLoadToHosts", "the list is empty"},
		{"from this host", HostLimits{From: []string{"web1.example.com"}}, "WEB1.example.com", false, "LimitLoadFromHosts", `this host, "WEB1.example.com", is excluded by "web1.example.com"`},
		{"from a short name of this host", HostLimits{From: []string{"web1"}}, "web1.example.com", true, "", ""},
		{"from another host", HostLimits{From: []string{"db1"}}, "web1", true, "", ""},
		{"from wins over to", HostLimits{To: []string{"web1"}, From: []string{"WEB1"}}, "web1", false, "LimitLoadFromHosts", "excluded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, key, why := c.h.LoadsOn(c.host)
			if ok != c.ok || key != c.key || !strings.Contains(why, c.in) {
				t.Errorf("LoadsOn(%q) = %v, %q, %q; want %v, %q, ...%q...", c.host, ok, key, why, c.ok, c.key, c.in)
			}
		})
	}
}

func hostsJob(label, key string, hosts ...string) string {
	b := jobBody(label, "") + `<key>` + key + `</key><array>`
	for _, h := range hosts {
		b += `<string>` + h + `</string>`
	}
	return b + `</array>`
}

func TestHostLimitsDecode(t *testing.T) {
	j := decodeT(t, "t.plist", hostsJob("org.t", "LimitLoadToHosts", "web1", "web2.example.com")+
		`<key>LimitLoadFromHosts</key><array><string>db1</string></array>`)
	if strings.Join(j.Hosts.To, " ") != "web1 web2.example.com" || strings.Join(j.Hosts.From, " ") != "db1" {
		t.Errorf("hosts %+v", j.Hosts)
	}
	if j := decodeT(t, "t.plist", jobBody("org.t", "")); j.Hosts.IsSet() {
		t.Errorf("unset keys give %+v", j.Hosts)
	}
	for _, c := range []struct {
		name, body, want string
		ok               bool
	}{
		{"string, not array", jobBody("org.t", "") + `<key>LimitLoadToHosts</key><string>web1</string>`,
			`t.plist:4: LimitLoadToHosts: error: must be an array of host names (<array><string>web1</string></array>), not string "web1"`, false},
		{"integer entry", jobBody("org.t", "") + `<key>LimitLoadFromHosts</key><array><integer>1</integer></array>`,
			`t.plist:4: LimitLoadFromHosts[0]: error: must be a string, not an integer (1)`, false},
		{"empty entry", hostsJob("org.t", "LimitLoadToHosts", "web1", ""),
			`t.plist:4: LimitLoadToHosts[1]: error: "" is not a host name: give a name as uname -n prints it, such as "web1" or "web1.example.com"`, false},
		{"blank in name", hostsJob("org.t", "LimitLoadFromHosts", "web1 "),
			`t.plist:4: LimitLoadFromHosts[0]: error: "web1 " is not a host name: give a name as uname -n prints it, such as "web1" or "web1.example.com"`, false},
		{"empty list", hostsJob("org.t", "LimitLoadToHosts"),
			`t.plist:4: LimitLoadToHosts: warning: is empty, so no host loads the job (as in launchd): name the hosts that should load it, or remove the key`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			j, diags := Decode(xmlJob(c.body), "t.plist")
			if (j != nil) != c.ok || !strings.Contains(diagText(diags), c.want+"\n") {
				t.Errorf("loaded %v, want %v; want\n  %s\ngot:\n%s", j != nil, c.ok, c.want, diagText(diags))
			}
		})
	}
}

// TestSelectForHost: the injected host name decides; the jobs this host
// does not load come back as info lines naming the file and key.
func TestSelectForHost(t *testing.T) {
	here := decodeT(t, "here.plist", hostsJob("org.here", "LimitLoadToHosts", "web1"))
	there := decodeT(t, "there.plist", hostsJob("org.there", "LimitLoadToHosts", "db1", "db2"))
	notHere := decodeT(t, "nothere.plist", hostsJob("org.nothere", "LimitLoadFromHosts", "web1.example.com"))
	anywhere := decodeT(t, "any.plist", jobBody("org.any", ""))
	all := []*Job{here, there, notHere, anywhere}

	kept, diags := SelectForHost(all, LoadOptions{Hostname: "web1.example.com"})
	if labels(kept) != "org.any" {
		t.Errorf("kept %s", labels(kept))
	}
	want := `here.plist: LimitLoadToHosts: info: not loaded on this host (LimitLoadToHosts): this host, "web1.example.com", is not among "web1" ("web1" only differs in the domain: names are compared whole, as launchd does; write "web1.example.com" to load the job here)` + "\n" +
		`there.plist: LimitLoadToHosts: info: not loaded on this host (LimitLoadToHosts): this host, "web1.example.com", is not among "db1", "db2"` + "\n" +
		`nothere.plist: LimitLoadFromHosts: info: not loaded on this host (LimitLoadFromHosts): this host, "web1.example.com", is excluded by "web1.example.com"` + "\n"
	if got := diagsText(diags); got != want {
		t.Errorf("diags:\n%swant:\n%s", got, want)
	}
	kept, diags = SelectForHost(all, LoadOptions{Hostname: "WEB1"})
	want = `nothere.plist: LimitLoadFromHosts: warning: "web1.example.com" does not exclude this host, "WEB1": names are compared whole, ignoring case, as launchd does; write "WEB1" to exclude it` + "\n"
	if labels(kept) != "org.here org.nothere org.any" || !strings.Contains(diagsText(diags), want) {
		t.Errorf("WEB1: kept %s\n%swant:\n%s", labels(kept), diagsText(diags), want)
	}

	kept, diags = SelectForHost(all, LoadOptions{Hostname: "db2"})
	if labels(kept) != "org.there org.nothere org.any" || len(diags) != 1 || diags[0].Severity != Info {
		t.Errorf("db2: kept %s\n%s", labels(kept), diagText(diags))
	}

	// Without an injected name, the kernel's decides.
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	mine := decodeT(t, "mine.plist", hostsJob("org.mine", "LimitLoadToHosts", host))
	if kept, diags := SelectForHost([]*Job{mine}, LoadOptions{}); len(kept) != 1 || len(diags) != 0 {
		t.Errorf("this host (%s) does not load its own job:\n%s", host, diagText(diags))
	}
}

func labels(jobs []*Job) string {
	var l []string
	for _, j := range jobs {
		l = append(l, j.Label)
	}
	return strings.Join(l, " ")
}

func diagsText(ds Diags) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}
