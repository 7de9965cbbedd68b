package compat

import "testing"

func TestSourceKey(t *testing.T) {
	for _, c := range [][3]string{
		{"inetd", "UserName", "user"},
		{"inetd", "GroupName", "user"},
		{"inetd", "Program", "server"},
		{"inetd", "ProgramArguments[2]", "arguments"},
		{"inetd", "Sockets.echo.SockServiceName", "service"},
		{"xinetd", "GroupName", "group"},
		{"xinetd", "HardResourceLimits.NumberOfFiles", "rlimit_files"},
		{"xinetd", "Sockets.ftp[1].SockServiceName", "port"},
		{"xinetd", "SockdProxy.Backend", "redirect"},
		{"xinetd", "EnvironmentVariables.PATH", "env"},
		{"launchd-xml", "UserName", "UserName"},
		{"inetd", "Disabled", "Disabled"},
	} {
		if got := SourceKey(c[0], c[1]); got != c[2] {
			t.Errorf("SourceKey(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
