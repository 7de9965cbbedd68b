package job

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomEndpoints draws n endpoints from a small universe, so that every
// kind of overlap conflict knows of (same address, wildcard and specific,
// Unix paths across socket types, port 0, multicast, connected sockets,
// addresses that do not parse) turns up often.
func randomEndpoints(r *rand.Rand, n int) []*Endpoint {
	multicast := &Socket{MulticastGroup: "239.1.1.1"}
	addrs := map[string][]string{
		"tcp4":     {"0.0.0.0:80", "127.0.0.1:80", "127.0.0.2:80", "0.0.0.0:81", "127.0.0.1:81", "127.0.0.1:0", "0.0.0.0:0", "bogus"},
		"udp4":     {"0.0.0.0:80", "127.0.0.1:80"},
		"tcp6":     {"[::]:80", "[::1]:80", "[fe80::1%lo]:80", "[fe80::1%eth0]:80", "[::]:0"},
		"unix":     {"/run/a", "/run/b", "@x"},
		"unixgram": {"/run/a", "@x"},
	}
	networks := []string{"tcp4", "udp4", "tcp6", "unix", "unixgram"}
	out := make([]*Endpoint, n)
	for i := range out {
		nw := networks[r.IntN(len(networks))]
		ep := &Endpoint{Network: nw, Address: addrs[nw][r.IntN(len(addrs[nw]))], Passive: r.IntN(8) != 0, Key: fmt.Sprintf("Sockets.L[%d]", i)}
		if r.IntN(8) == 0 {
			ep.Socket = multicast
		}
		out[i] = ep
	}
	return out
}

// TestOverlapsIsConflict proves the keys the index is built on decide
// every pair of endpoints exactly as conflict, the pairwise definition.
func TestOverlapsIsConflict(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	eps := randomEndpoints(r, 200)
	for _, a := range eps {
		for _, b := range eps {
			ka, oka := claimOf(a)
			kb, okb := claimOf(b)
			got := oka && okb && overlaps(ka, kb)
			if want := conflict(a, b); got != want {
				t.Fatalf("%s %s (passive %v, socket %v) and %s %s (passive %v, socket %v): overlaps %v, conflict %v",
					a.Network, a.Address, a.Passive, a.Socket, b.Network, b.Address, b.Passive, b.Socket, got, want)
			}
		}
	}
}

// TestClaimIndexFindsEarliest compares claimIndex.find with a scan of all
// earlier claims in order, which is what the pairwise cross check did.
func TestClaimIndexFindsEarliest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 200; round++ {
		eps := randomEndpoints(r, 30)
		x := newClaimIndex()
		var claimed []*Endpoint
		for _, ep := range eps {
			var want *Endpoint
			for _, c := range claimed {
				if conflict(ep, c) {
					want = c
					break
				}
			}
			c, ok := x.find(ep)
			if got := c.ep; !ok && want != nil || ok && got != want {
				t.Fatalf("round %d: %s %s: found %v, want %v", round, ep.Network, ep.Address, c.ep, want)
			}
			if r.IntN(2) == 0 {
				x.add(nil, ep)
				claimed = append(claimed, ep)
			}
		}
	}
}

// TestOwnConflictsCover checks on random jobs that ownConflicts reports
// something exactly when two endpoints conflict, at most once per address
// (twice for a wildcard: claimed twice, and overlapping specific addresses),
// and at an endpoint that conflicts with another.
func TestOwnConflictsCover(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 2000; round++ {
		eps := randomEndpoints(r, 1+r.IntN(12))
		inConflict := map[int]bool{}
		addresses := map[claimKey]bool{}
		for a := range eps {
			for b := range eps {
				if a != b && conflict(eps[a], eps[b]) {
					inConflict[a] = true
					k, _ := claimOf(eps[a])
					addresses[k] = true
				}
			}
		}
		limit := len(addresses) // and one more for a wildcard that overlaps others
		for k := range addresses {
			if k.wild {
				limit++
			}
		}
		got := ownConflicts(eps)
		if (len(got) > 0) != (len(inConflict) > 0) || len(got) > limit {
			t.Fatalf("round %d: %d problems for %d conflicting addresses: %v", round, len(got), len(addresses), got)
		}
		for i, c := range got {
			if !inConflict[c.At] || eps[c.At].Key != c.Key || i > 0 && got[i-1].At > c.At {
				t.Fatalf("round %d: problem %d at endpoint %d out of order or without a conflict: %v", round, i, c.At, got)
			}
		}
	}
}

// TestOwnAddressMessages shows the messages of sockets of one job that
// claim one address: the pairwise check's text for two sockets, one line
// with a count for more.
func TestOwnAddressMessages(t *testing.T) {
	at := func(node, port string) string {
		s := `<dict><key>SockServiceName</key><string>` + port + `</string>`
		if node != "" {
			s += `<key>SockNodeName</key><string>` + node + `</string>`
		}
		return s + `</dict>`
	}
	array := func(dicts ...string) string {
		return sockets(`<key>L</key><array>` + strings.Join(dicts, "") + `</array>`)
	}
	const tail = ": two sockets cannot claim one address; remove one or change its address"
	cases := []struct {
		name string
		body string
		want []string
	}{
		{"two on one address", array(at("127.0.0.1", "80"), at("127.0.0.1", "80")),
			[]string{`t.plist:4: Sockets.L[1]: error: tcp4 127.0.0.1:80 overlaps tcp4 127.0.0.1:80 of Sockets.L[0] in the same job` + tail}},
		{"specific before wildcard", array(at("127.0.0.1", "80"), at("0.0.0.0", "80")),
			[]string{`t.plist:4: Sockets.L[1]: error: tcp4 0.0.0.0:80 overlaps tcp4 127.0.0.1:80 of Sockets.L[0] in the same job` + tail}},
		{"three on one address", array(at("127.0.0.1", "80"), at("127.0.0.1", "80"), at("127.0.0.1", "80")),
			[]string{`t.plist:4: Sockets.L[1]: error: tcp4 127.0.0.1:80 is claimed by 2 other sockets of this job (first: Sockets.L[0], last: Sockets.L[2]): two sockets cannot claim one address; keep one of them or change the addresses of the others`}},
		{"wildcard over three addresses", array(at("127.0.0.1", "80"), at("", "80"), at("127.0.0.2", "80"), at("127.0.0.3", "80"), at("::1", "81")),
			[]string{`t.plist:4: Sockets.L[1]: error: tcp4 0.0.0.0:80 overlaps 3 other sockets of this job on port 80 (first: tcp4 127.0.0.1:80 of Sockets.L[0], last: tcp4 127.0.0.3:80 of Sockets.L[3]): a wildcard address claims its port on every address; remove the wildcard socket or the others`}},
		{"two wildcards and one address", array(at("", "80"), at("0.0.0.0", "80"), at("127.0.0.1", "80")),
			[]string{
				`t.plist:4: Sockets.L[0]: error: tcp4 0.0.0.0:80 overlaps 1 other socket of this job on port 80 (first: tcp4 127.0.0.1:80 of Sockets.L[2], last: tcp4 127.0.0.1:80 of Sockets.L[2]): a wildcard address claims its port on every address; remove the wildcard socket or the others`,
				`t.plist:4: Sockets.L[1]: error: tcp4 0.0.0.0:80 overlaps tcp4 0.0.0.0:80 of Sockets.L[0] in the same job` + tail}},
		{"port 0 never conflicts", array(at("127.0.0.1", "0"), at("127.0.0.1", "0"), at("", "0")), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Decode(xmlJob(base+tc.body), "t.plist")
			var got []string
			for _, d := range diags {
				got = append(got, d.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestCrossCheckGroupsOneAddress: the sockets of one job that conflict
// with one address of an earlier job are one error, with a count.
func TestCrossCheckGroupsOneAddress(t *testing.T) {
	a := decodeT(t, "a.plist", jobBody("org.a", sock("L", `<key>SockServiceName</key><string>8080</string>`)))
	var specific []string
	for i := 1; i <= 3; i++ {
		specific = append(specific, fmt.Sprintf(`<dict><key>SockNodeName</key><string>127.0.0.%d</string><key>SockServiceName</key><string>8080</string></dict>`, i))
	}
	b := decodeT(t, "b.plist", jobBody("org.b", `<key>M</key><array>`+strings.Join(specific, "")+`</array>`))
	kept, diags := CrossCheck([]*Job{a, b})
	want := `b.plist: Sockets.M[0]: error: tcp4 127.0.0.1:8080 conflicts with tcp4 0.0.0.0:8080 of job "org.a" (a.plist Sockets.L), and so do 2 other sockets of this job (the last: tcp4 127.0.0.3:8080 of Sockets.M[2]), so this job is not loaded: change the addresses, or disable one of the jobs`
	if len(kept) != 1 || kept[0] != a || len(diags) != 1 || diags[0].String() != want {
		t.Errorf("kept %d, got:\n%s\nwant\n  %s", len(kept), diagText(diags), want)
	}
}

// TestSocketCap: MaxSocketsPerJob endpoints load, one more is an error
// naming the key, the limit and the fix.
func TestSocketCap(t *testing.T) {
	body := func(extra string) []byte {
		// A dictionary without SockNodeName has two endpoints (IPv6, IPv4).
		dicts := strings.Repeat(`<dict><key>SockServiceName</key><string>0</string></dict>`, MaxSocketsPerJob/2)
		return xmlJob(base + sockets(`<key>L</key><array>`+dicts+extra+`</array>`))
	}
	if j, diags := Decode(body(""), "t.plist"); j == nil {
		t.Fatalf("%d sockets must load:\n%s", MaxSocketsPerJob, diagText(diags))
	}
	extra := `<dict><key>SockNodeName</key><string>127.0.0.1</string><key>SockServiceName</key><string>0</string></dict>`
	j, diags := Decode(body(extra), "t.plist")
	want := fmt.Sprintf(`t.plist:4: Sockets: error: the job has 1025 sockets, more than the 1024 sockd accepts in one job (Sockets.L[%d] is past the limit; a socket dictionary without SockNodeName has two, IPv6 and IPv4): split the sockets over several jobs, or give them fewer addresses`, MaxSocketsPerJob/2)
	if j != nil || len(diags) != 1 || diags[0].String() != want {
		t.Errorf("got:\n%s\nwant\n  %s", diagText(diags), want)
	}
}
