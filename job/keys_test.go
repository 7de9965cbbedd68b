package job

import (
	"strings"
	"testing"
)

// TestMisspeltKeys: an unknown key close to a known one gets "did you
// mean ...?" at every level; when the known key narrows how or where the
// job is served, it is an error and the job does not load.
func TestMisspeltKeys(t *testing.T) {
	port := `<key>SockServiceName</key><string>8080</string>`
	listen := sockets(sock("L", port))
	cases := []struct {
		name string
		body string
		ok   bool
		want string
	}{
		{"inetdCompatibility", base + `<key>inetdCompatability</key><dict><key>Wait</key><false/></dict>` + listen, false,
			`t.plist:4: inetdCompatability: error: unknown top-level key; did you mean inetdCompatibility? a misspelt inetdCompatibility would serve the job in handoff mode, which an inetd program cannot serve`},
		{"SockNodeName", base + sockets(sock("L", `<key>SockNodeNam</key><string>127.0.0.1</string>`+port)), false,
			`t.plist:4: Sockets.L.SockNodeNam: error: unknown socket key; did you mean SockNodeName? a misspelt SockNodeName would let the socket listen wider than the file says`},
		{"SockFamily transposed, other case", base + sockets(sock("L", `<key>sockfamliy</key><string>IPv4</string>`+port)), false,
			`t.plist:4: Sockets.L.sockfamliy: error: unknown socket key; did you mean SockFamily? a misspelt SockFamily would let the socket listen on address families the file excludes`},
		{"SockPathMode", base + sockets(sock("L", `<key>SockPathName</key><string>/run/t.sock</string><key>SockPathMod</key><integer>384</integer>`)), false,
			`t.plist:4: Sockets.L.SockPathMod: error: unknown socket key; did you mean SockPathMode? a misspelt SockPathMode would change who may connect to the socket`},
		{"Sockets", base + `<key>Socket</key>` + strings.TrimPrefix(listen, `<key>Sockets</key>`), false,
			`t.plist:4: Socket: error: unknown top-level key; did you mean Sockets? a misspelt Sockets would leave the job without the sockets the file describes`},
		{"UserName", base + `<key>UserNmae</key><string>nobody</string>`, false,
			`t.plist:4: UserNmae: error: unknown top-level key; did you mean UserName? a misspelt UserName would run the job as sockd's own user`},
		{"SockdLimits", base + nowait + `<key>SockdLimit</key><dict><key>MaxChildren</key><integer>4</integer></dict>` + listen, false,
			`t.plist:4: SockdLimit: error: unknown top-level key; did you mean SockdLimits? a misspelt SockdLimits would serve the job without its limits and access lists`},
		{"SockdLimits.Deny", base + nowait + `<key>SockdLimits</key><dict><key>Dny</key><array><string>127.0.0.1</string></array></dict>` + listen, false,
			`t.plist:4: SockdLimits.Dny: error: unknown SockdLimits key; did you mean Deny? a misspelt Deny would let clients connect that the file refuses`},
		{"SockdLimits.MaxPerSource", base + nowait + `<key>SockdLimits</key><dict><key>MaxPerSorce</key><integer>2</integer></dict>` + listen, false,
			`t.plist:4: SockdLimits.MaxPerSorce: error: unknown SockdLimits key; did you mean MaxPerSource? a misspelt MaxPerSource would serve the job without the limit the file sets`},
		{"inetdCompatibility.Wait", base + `<key>inetdCompatibility</key><dict><key>Wiat</key><true/></dict>` + listen, false,
			`t.plist:4: inetdCompatibility.Wiat: error: unknown inetdCompatibility key; did you mean Wait? a misspelt Wait would change how connections are handed to the program`},
		{"KeepAlive.SuccessfulExit", base + `<key>KeepAlive</key><dict><key>SucessfulExit</key><false/></dict>`, false,
			`t.plist:4: KeepAlive.SucessfulExit: error: unknown KeepAlive key; did you mean SuccessfulExit? a misspelt SuccessfulExit would change when the job runs`},
		{"SockdProxy.ProxyProtocol", base + `<key>SockdProxy</key><dict><key>Backend</key><string>127.0.0.1:9000</string><key>ProxyProtocl</key><string>v2</string></dict>` + listen, false,
			`t.plist:4: SockdProxy.ProxyProtocl: error: unknown SockdProxy key; did you mean ProxyProtocol? a misspelt ProxyProtocol would hide the client's address from the backend`},
		{"LimitLoadToHosts", base + `<key>LimitLoadToHost</key><array><string>web1</string></array>`, false,
			`t.plist:4: LimitLoadToHost: error: unknown top-level key; did you mean LimitLoadToHosts? a misspelt LimitLoadToHosts would load the job on hosts the file excludes`},
		{"resource limit", base + `<key>HardResourceLimits</key><dict><key>NumberOfFile</key><integer>64</integer></dict>`, false,
			`t.plist:4: HardResourceLimits.NumberOfFile: error: unknown resource limit; did you mean NumberOfFiles? a misspelt NumberOfFiles would run the job without that limit`},
		{"alias User", base + `<key>User</key><string>nobody</string>`, false,
			`t.plist:4: User: error: unknown top-level key; did you mean UserName? a misspelt UserName would run the job as sockd's own user`},
		{"UID not 0", base + `<key>UID</key><integer>501</integer>`, false,
			`t.plist:4: UID: error: UID is not a launchd key and sockd does not apply it, so the job would run as sockd's own user: name the user in UserName instead`},
		{"GID not 0", base + `<key>GID</key><integer>20</integer>`, false,
			`t.plist:4: GID: error: GID is not a launchd key and sockd does not apply it, so the job would run as sockd's own group: name the group in GroupName instead`},
		{"UID 0", base + `<key>UID</key><integer>0</integer>`, true,
			`t.plist:4: UID: warning: ignored: UID is not a launchd key; use UserName`},

		// Near misses of keys whose misspelling changes nothing that
		// narrows the job: a warning with the suggestion.
		{"ThrottleInterval", base + `<key>ThrotleInterval</key><integer>5</integer>`, true,
			`t.plist:4: ThrotleInterval: warning: unknown top-level key; did you mean ThrottleInterval? it is ignored`},
		{"ignored key", base + `<key>ServiceDescripton</key><string>x</string>`, true,
			`t.plist:4: ServiceDescripton: warning: unknown top-level key; did you mean ServiceDescription? it is ignored`},
		{"SockdProxy.StopAfterIdle", base + `<key>SockdProxy</key><dict><key>Backend</key><string>127.0.0.1:9000</string><key>StopAfterIdel</key><integer>60</integer></dict>` + listen, true,
			`t.plist:4: SockdProxy.StopAfterIdel: warning: unknown SockdProxy key; did you mean StopAfterIdle? it is ignored`},
		{"two candidates", base + `<key>XID</key><integer>0</integer>`, true,
			`t.plist:4: XID: warning: unknown top-level key; did you mean UID or GID? it is ignored`},

		// Far from every known key: a warning, as before.
		{"far off", base + `<key>Frobnicate</key><true/>`, true,
			`t.plist:4: Frobnicate: warning: unknown top-level key; it is ignored (check the spelling)`},
		{"far off socket key", base + sockets(sock("L", port+`<key>ReceivePacketInfo</key><true/>`)), true,
			`t.plist:4: Sockets.L.ReceivePacketInfo: warning: unknown socket key; it is ignored (check the spelling)`},
		{"far off SockdLimits key", base + nowait + `<key>SockdLimits</key><dict><key>Colour</key><string>red</string></dict>` + listen, true,
			`t.plist:4: SockdLimits.Colour: warning: unknown SockdLimits key; it is ignored (check the spelling)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(xmlJob(tc.body), "t.plist")
			if (j != nil) != tc.ok {
				t.Errorf("loaded = %v, want %v", j != nil, tc.ok)
			}
			found := false
			for _, d := range diags {
				found = found || d.String() == tc.want
			}
			if !found {
				t.Errorf("missing diagnostic\n  %s\ngot:\n%s", tc.want, diagText(diags))
			}
		})
	}
}

// TestMisspeltKeyWithRightKeyToo: the misspelling is an error even when
// the right key is also written: the file is ambiguous.
func TestMisspeltKeyWithRightKeyToo(t *testing.T) {
	body := base + sockets(sock("L", `<key>SockNodeName</key><string>127.0.0.1</string><key>SockNodeNmae</key><string>0.0.0.0</string><key>SockServiceName</key><string>8080</string>`))
	if j, diags := Decode(xmlJob(body), "t.plist"); j != nil || !diags.HasErrors() {
		t.Errorf("loaded %v:\n%s", j != nil, diagText(diags))
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"wait", "wait", 0}, {"", "abc", 3}, {"wiat", "wait", 1},
		{"inetdcompatability", "inetdcompatibility", 1}, {"socknodenam", "socknodename", 1},
		{"kitten", "sitting", 3}, {"ca", "abc", 3}, {"uses", "uid", 3},
	} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestKeyTablesFarApart: two keys of one table, one of them a key whose
// misspelling is an error, are at least 3 edits apart, so a single typo is
// always closest to the key that was meant.
func TestKeyTablesFarApart(t *testing.T) {
	tables := map[string][]KeyInfo{"top-level": TopLevelKeys, "socket": SocketKeys, "resource limit": resourceLimitKeys()}
	for name, tab := range subKeys {
		tables[name] = tab
	}
	for name, tab := range tables {
		for a := range tab {
			for b := 0; b < a; b++ {
				ka, kb := tab[a], tab[b]
				dist := editDistance(strings.ToLower(ka.Name), strings.ToLower(kb.Name))
				if dist < 3 && (ka.Misspelt != "" || kb.Misspelt != "") {
					t.Errorf("%s keys %s and %s are %d edits apart", name, ka.Name, kb.Name, dist)
				}
			}
		}
	}
}

// TestMisplacedKeys: a key of another dictionary, written where it has no
// effect, says where it belongs; when ignoring it there would make the job
// run wider (it narrows access, exposure or identity) it is an error and
// the job does not load.
func TestMisplacedKeys(t *testing.T) {
	port := `<key>SockServiceName</key><string>8080</string>`
	listen := sockets(sock("L", port))
	cases := []struct {
		name string
		body string
		ok   bool
		want string
	}{
		{"top-level Allow", base + nowait + `<key>Allow</key><array><string>127.0.0.1</string></array>` + listen, false,
			`t.plist:4: Allow: error: Allow belongs in SockdLimits, not here: as a top-level key it is ignored, and a misplaced Allow would let clients connect that the file refuses; move it there`},
		{"top-level SockNodeName", base + `<key>SockNodeName</key><string>127.0.0.1</string>` + listen, false,
			`t.plist:4: SockNodeName: error: SockNodeName belongs in a socket dictionary (Sockets.NAME), not here: as a top-level key it is ignored, and a misplaced SockNodeName would let the socket listen wider than the file says; move it there`},
		{"UserName in a socket", base + sockets(sock("L", port+`<key>UserName</key><string>nobody</string>`)), false,
			`t.plist:4: Sockets.L.UserName: error: UserName belongs at the top level of the job, not here: as a socket key it is ignored, and a misplaced UserName would run the job as sockd's own user; move it there`},
		{"Deny in a socket", base + nowait + sockets(sock("L", port+`<key>deny</key><array><string>10.0.0.1</string></array>`)), false,
			`t.plist:4: Sockets.L.deny: error: Deny belongs in SockdLimits, not here: as a socket key it is ignored, and a misplaced Deny would let clients connect that the file refuses; move it there`},
		{"inetdCompatibility.UserName", base + `<key>inetdCompatibility</key><dict><key>Wait</key><false/><key>UserName</key><string>nobody</string></dict>` + listen, false,
			`t.plist:4: inetdCompatibility.UserName: error: UserName belongs at the top level of the job, not here: as an inetdCompatibility key it is ignored, and a misplaced UserName would run the job as sockd's own user; move it there`},
		{"SockdLimits.SockNodeName", base + nowait + `<key>SockdLimits</key><dict><key>SockNodeName</key><string>127.0.0.1</string></dict>` + listen, false,
			`t.plist:4: SockdLimits.SockNodeName: error: SockNodeName belongs in a socket dictionary (Sockets.NAME), not here: as a SockdLimits key it is ignored, and a misplaced SockNodeName would let the socket listen wider than the file says; move it there`},
		{"top-level NumberOfFiles", base + `<key>NumberOfFiles</key><integer>64</integer>`, false,
			`t.plist:4: NumberOfFiles: error: NumberOfFiles belongs in SoftResourceLimits or HardResourceLimits, not here: as a top-level key it is ignored, and a misplaced NumberOfFiles would run the job without that limit; move it there`},
		{"RootDirectory in a resource limit dictionary", base + `<key>SoftResourceLimits</key><dict><key>RootDirectory</key><string>/srv</string></dict>`, false,
			`t.plist:4: SoftResourceLimits.RootDirectory: error: RootDirectory belongs at the top level of the job, not here: as a resource limit it is ignored, and a misplaced RootDirectory would run the job outside the chroot the file names; move it there`},
		{"Label in a socket", base + sockets(sock("L", port+`<key>Label</key><string>x</string>`)), true,
			`t.plist:4: Sockets.L.Label: warning: Label belongs at the top level of the job, not here: as a socket key it is ignored; move it there`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(xmlJob(tc.body), "t.plist")
			if (j != nil) != tc.ok {
				t.Errorf("loaded = %v, want %v", j != nil, tc.ok)
			}
			if !strings.Contains(diagText(diags), tc.want+"\n") {
				t.Errorf("missing diagnostic\n  %s\ngot:\n%s", tc.want, diagText(diags))
			}
		})
	}
	seen := map[string]string{}
	// KeepAlive is the job's (top level) and TCP keep-alive (SockdOptions):
	// a misplaced one names both homes.
	shared := map[string]bool{"keepalive": true}
	for _, h := range keyHomes {
		for _, k := range h.table {
			if w, dup := seen[strings.ToLower(k.Name)]; dup && !shared[strings.ToLower(k.Name)] {
				t.Errorf("%s is a key %s and %s: a misplaced one could not say where it belongs", k.Name, w, h.where)
			}
			seen[strings.ToLower(k.Name)] = h.where
		}
	}
}
