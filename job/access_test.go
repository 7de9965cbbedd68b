package job

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// limitsJob is an inetd nowait job on port 8080 with SockdLimits key
// holding entries.
func limitsJob(key string, entries ...string) []byte {
	arr := ""
	for _, e := range entries {
		arr += `<string>` + e + `</string>`
	}
	return xmlJob(base + nowait + `<key>SockdLimits</key><dict><key>` + key + `</key><array>` + arr + `</array></dict>` +
		sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`)))
}

// runtimeParses is how the supervisor reads an entry (parsePrefixes).
func runtimeParses(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// TestAccessOneParser: an Allow or Deny entry that the supervisor's parser
// (net/netip) cannot use is a load error naming the entry, never a job
// whose entry is dropped at run time (an empty Allow admits everyone); and
// every entry that loads is one the supervisor parses.
func TestAccessOneParser(t *testing.T) {
	refused := map[string]string{
		"127.0.0.1/032": "bad bits after slash",
		"127.0.0.0/08":  "without leading zeros",
		"1::/0008":      "without leading zeros",
		"fe80::1%eth0":  "has a zone",
		"10.0.0.0/33":   "not a CIDR prefix",
		" 10.0.0.1":     "neither an IP address",
	}
	for _, key := range []string{"Allow", "Deny"} {
		for entry, why := range refused {
			j, diags := Decode(limitsJob(key, "127.0.0.2", entry), "t.plist")
			want := "t.plist:4: SockdLimits." + key + "[1]: error: "
			if j != nil || !strings.Contains(diagText(diags), want) || !strings.Contains(diagText(diags), why) {
				t.Errorf("%s %q: loaded %v, want %q...%q in:\n%s", key, entry, j != nil, want, why, diagText(diags))
			}
		}
	}
	for _, entry := range []string{"127.0.0.1", "127.0.0.0/8", "10.1.2.3/8", "::1", "2001:db8::/32", "::ffff:127.0.0.2", "::ffff:127.0.0.0/120", "::/0", "0.0.0.0/0"} {
		j, diags := Decode(limitsJob("Allow", entry), "t.plist")
		if j == nil {
			t.Errorf("%q refused:\n%s", entry, diagText(diags))
			continue
		}
		for _, s := range j.Limits.Allow {
			if !runtimeParses(s) {
				t.Errorf("%q loads as %q, which the supervisor cannot parse", entry, s)
			}
		}
	}
}

// TestAccessMapped: entries in IPv4-mapped form name the IPv4 clients the
// supervisor matches unmapped, so they load in IPv4 form; an IPv6 prefix
// covering all of ::ffff:0:0/96 covers the IPv4 clients too.
func TestAccessMapped(t *testing.T) {
	cases := []struct {
		in   []string
		want []string
	}{
		{[]string{"::ffff:127.0.0.2"}, []string{"127.0.0.2"}},
		{[]string{"::ffff:127.0.0.0/120"}, []string{"127.0.0.0/24"}},
		{[]string{"::ffff:127.0.0.5/120"}, []string{"127.0.0.0/24"}},
		{[]string{"::ffff:0.0.0.0/96"}, []string{"0.0.0.0/0"}},
		{[]string{"::ffff:0:0/95"}, []string{"::ffff:0:0/95", "0.0.0.0/0"}},
		{[]string{"::/0"}, []string{"::/0", "0.0.0.0/0"}},
		{[]string{"::/64", "0.0.0.0/0"}, []string{"::/64", "0.0.0.0/0"}},
		{[]string{"2001:db8::/32", "::1", "10.0.0.0/8"}, []string{"2001:db8::/32", "::1", "10.0.0.0/8"}},
		{[]string{"::fffe:127.0.0.2"}, []string{"::fffe:127.0.0.2"}},
	}
	for _, key := range []string{"Allow", "Deny"} {
		for _, c := range cases {
			j, diags := Decode(limitsJob(key, c.in...), "t.plist")
			if j == nil {
				t.Fatalf("%v: not loaded:\n%s", c.in, diagText(diags))
			}
			got := j.Limits.Allow
			if key == "Deny" {
				got = j.Limits.Deny
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s %v loads as %v, want %v", key, c.in, got, c.want)
			}
		}
	}
	for s, want := range map[string]bool{"::ffff:1.2.3.4": true, "::/0": true, "::": false, "::1": false, "1.2.3.4": false, "2001:db8::/32": false} {
		if got := NamesIPv4(s); got != want {
			t.Errorf("NamesIPv4(%q) = %v, want %v", s, got, want)
		}
	}
}
