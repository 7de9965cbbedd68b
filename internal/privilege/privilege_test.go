package privilege

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseCapEff(t *testing.T) {
	c, err := parseCapEff("Name:\tx\nCapPrm:\t0000000000000001\nCapEff:\t000001fffeffffff\n")
	if err != nil || c != 0x1fffeffffff {
		t.Fatalf("%x %v", c, err)
	}
	v := View{UID: 0, Caps: c}
	if v.Has(CapSysResource) || !v.Has(CapSysNice) || !v.Has(CapNetBindService) {
		t.Errorf("caps %x", c)
	}
	if s := v.String(); s != "root without CAP_SYS_RESOURCE" {
		t.Errorf("String %q", s)
	}
	if _, err := parseCapEff("Name:\tx\n"); err == nil {
		t.Error("no CapEff line accepted")
	}
}

// TestCurrent compares the view with what /proc says of this process.
func TestCurrent(t *testing.T) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	v := Current()
	if v.UID != os.Geteuid() || v.Assumed {
		t.Errorf("uid %d assumed %v", v.UID, v.Assumed)
	}
	// Field 19 of stat is the nice value; the command name (field 2) may
	// hold spaces, so count from its closing parenthesis.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	if nice, _ := strconv.Atoi(f[16]); v.Nice != nice {
		t.Errorf("Nice %d, /proc says %d", v.Nice, nice)
	}
	if v.PortStart < 0 || v.PortStart > 65536 || v.NrOpen == 0 || len(v.Limits) == 0 {
		t.Errorf("%+v", v)
	}
	other := For(v.UID + 1)
	if !other.Assumed || other.UID != v.UID+1 || (v.UID+1 != 0 && other.Caps != 0) || !strings.HasSuffix(other.String(), ", capabilities and limits assumed") {
		t.Errorf("For: %+v %q", other, other.String())
	}
	if r := For(0); !r.Root() || (v.UID != 0 && r.Caps != allCaps) {
		t.Errorf("For(0): %+v", r)
	}
}
