package job

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestTriggersDecode: every trigger key decodes into Job.Triggers, a
// missing calendar key is Any and Weekday 7 is Sunday.
func TestTriggersDecode(t *testing.T) {
	body := base + `<key>ThrottleInterval</key><integer>1</integer>` +
		`<key>StartInterval</key><integer>90</integer>` +
		`<key>StartCalendarInterval</key><array>` +
		`<dict><key>Hour</key><integer>3</integer><key>Minute</key><integer>35</integer></dict>` +
		`<dict><key>weekday</key><integer>7</integer></dict>` +
		`<dict/></array>` +
		`<key>WatchPaths</key><array><string>/etc/app.conf</string><string>/etc//app.conf</string><string>/var/x/</string></array>` +
		`<key>QueueDirectories</key><array><string>/var/spool/q</string></array>` +
		`<key>StartOnMount</key><true/><key>LaunchOnlyOnce</key><true/>`
	j, diags := Decode(xmlJob(body), "t.plist")
	if j == nil || len(diags) > 0 {
		t.Fatalf("not loaded:\n%s", diagText(diags))
	}
	all := CalendarInterval{Any, Any, Any, Any, Any}
	want := Triggers{
		StartInterval: 90 * time.Second,
		Calendar: []CalendarInterval{
			{Minute: 35, Hour: 3, Day: Any, Weekday: Any, Month: Any},
			{Minute: Any, Hour: Any, Day: Any, Weekday: 0, Month: Any},
			all,
		},
		WatchPaths:       []string{"/etc/app.conf", "/var/x"},
		QueueDirectories: []string{"/var/spool/q"},
		StartOnMount:     true,
		LaunchOnlyOnce:   true,
	}
	if !reflect.DeepEqual(j.Triggers, want) {
		t.Errorf("triggers\n got %+v\nwant %+v", j.Triggers, want)
	}
	if got := j.Triggers.Calendar[0].String(); got != "Hour 3 Minute 35" {
		t.Errorf("String() = %q", got)
	}
	if got := all.String(); got != "every minute" {
		t.Errorf("String() = %q", got)
	}

	j, diags = Decode(xmlJob(base+`<key>StartCalendarInterval</key><dict><key>Month</key><integer>2</integer><key>Day</key><integer>29</integer></dict>`), "t.plist")
	if j == nil || len(diags) > 0 || j.Triggers.Calendar[0] != (CalendarInterval{Any, Any, 29, Any, 2}) {
		t.Errorf("Feb 29: %+v\n%s", j, diagText(diags))
	}
}

// TestTriggersValidation: out-of-range values, wrong types and relative
// paths are errors naming the key; keys on a job with no process of its
// own to start are errors; a StartInterval the throttle shortens is a
// warning.
func TestTriggersValidation(t *testing.T) {
	listen := sockets(sock("L", `<key>SockServiceName</key><string>8080</string>`))
	cases := []struct {
		name string
		body string
		ok   bool
		want string
	}{
		{"Hour 24", base + `<key>StartCalendarInterval</key><dict><key>Hour</key><integer>24</integer></dict>`, false,
			`t.plist:4: StartCalendarInterval.Hour: error: 24 is out of range: Hour must be between 0 and 23`},
		{"Minute -1 in an array", base + `<key>StartCalendarInterval</key><array><dict/><dict><key>Minute</key><integer>-1</integer></dict></array>`, false,
			`t.plist:4: StartCalendarInterval[1].Minute: error: -1 is out of range: Minute must be between 0 and 59`},
		{"Day 0", base + `<key>StartCalendarInterval</key><dict><key>Day</key><integer>0</integer></dict>`, false,
			`t.plist:4: StartCalendarInterval.Day: error: 0 is out of range: Day must be between 1 and 31`},
		{"Weekday 8", base + `<key>StartCalendarInterval</key><dict><key>Weekday</key><integer>8</integer></dict>`, false,
			`t.plist:4: StartCalendarInterval.Weekday: error: 8 is out of range: Weekday must be between 0 and 7`},
		{"Month 13", base + `<key>StartCalendarInterval</key><dict><key>Month</key><integer>13</integer></dict>`, false,
			`t.plist:4: StartCalendarInterval.Month: error: 13 is out of range: Month must be between 1 and 12`},
		{"Day 31 in April", base + `<key>StartCalendarInterval</key><dict><key>Month</key><integer>4</integer><key>Day</key><integer>31</integer></dict>`, false,
			`t.plist:4: StartCalendarInterval.Day: error: Day 31 never comes in Month 4 (April has at most 30 days): the calendar would never start the job`},
		{"Hour as a string", base + `<key>StartCalendarInterval</key><dict><key>Hour</key><string>3</string></dict>`, false,
			`t.plist:4: StartCalendarInterval.Hour: error: must be an integer (<integer>), not string "3"`},
		{"calendar not a dict", base + `<key>StartCalendarInterval</key><integer>5</integer>`, false,
			`t.plist:4: StartCalendarInterval: error: must be a dictionary or an array of dictionaries (Minute, Hour, Day, Weekday, Month), not an integer (5)`},
		{"misspelt Hour", base + `<key>StartCalendarInterval</key><dict><key>Hours</key><integer>3</integer></dict>`, false,
			`t.plist:4: StartCalendarInterval.Hours: error: unknown StartCalendarInterval key; did you mean Hour? a misspelt Hour would change when the job runs`},
		{"top-level Minute", base + `<key>Minute</key><integer>3</integer>`, false,
			`t.plist:4: Minute: error: Minute belongs in a StartCalendarInterval dictionary, not here: as a top-level key it is ignored, and a misplaced Minute would change when the job runs; move it there`},
		{"StartInterval 0", base + `<key>StartInterval</key><integer>0</integer>`, false,
			`t.plist:4: StartInterval: error: 0 is out of range: StartInterval (seconds) must be between 1 and 2147483648`},
		{"StartInterval under the throttle", base + `<key>StartInterval</key><integer>2</integer>`, true,
			`t.plist:4: StartInterval: warning: 2 s is shorter than ThrottleInterval (10s), the least time between two starts: the job starts every 10s; set ThrottleInterval to 2 or less for a start every 2 s`},
		{"relative watch path", base + `<key>WatchPaths</key><array><string>etc/x</string></array>`, false,
			`t.plist:4: WatchPaths[0]: error: "etc/x" is not an absolute path: launchd would take it relative to its own working directory, /; write /etc/x`},
		{"queue directories not an array", base + `<key>QueueDirectories</key><string>/var/q</string>`, false,
			`t.plist:4: QueueDirectories: error: must be an array, not string "/var/q"`},
		{"StartOnMount type", base + `<key>StartOnMount</key><integer>1</integer>`, false,
			`t.plist:4: StartOnMount: error: must be a boolean (<true/> or <false/>), not an integer (1)`},
		{"misspelt WatchPaths", base + `<key>WatchPath</key><array><string>/x</string></array>`, false,
			`t.plist:4: WatchPath: error: unknown top-level key; did you mean WatchPaths? a misspelt WatchPaths would change when the job runs`},
		{"inetd nowait", base + nowait + `<key>StartInterval</key><integer>60</integer>` + listen, false,
			`t.plist:4: StartInterval: error: has nothing to start: an inetdCompatibility Wait=false job starts one child per connection, and there is no process to start at other times: serve it in handoff mode (without inetdCompatibility) or as Wait=true`},
		{"internal", `<key>Label</key><string>x</string><key>SockdInternal</key><string>echo</string><key>WatchPaths</key><array><string>/x</string></array>` + listen, false,
			`t.plist:4: WatchPaths: error: has nothing to start: a SockdInternal job runs no process`},
		{"LaunchOnlyOnce false on inetd nowait", base + nowait + `<key>LaunchOnlyOnce</key><false/>` + listen, true, ""},
		{"handoff with interval", base + `<key>ThrottleInterval</key><integer>5</integer><key>StartInterval</key><integer>60</integer>` + listen, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, diags := Decode(xmlJob(tc.body), "t.plist")
			if (j != nil) != tc.ok {
				t.Errorf("loaded = %v, want %v\n%s", j != nil, tc.ok, diagText(diags))
			}
			if tc.want == "" {
				if len(diags) > 0 {
					t.Errorf("diagnostics:\n%s", diagText(diags))
				}
				return
			}
			if !strings.Contains(diagText(diags), tc.want+"\n") {
				t.Errorf("missing diagnostic\n  %s\ngot:\n%s", tc.want, diagText(diags))
			}
		})
	}
}
