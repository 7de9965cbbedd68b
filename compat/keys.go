package compat

import "strings"

// SourceKey names, in the terms of an imported configuration, the job key
// a problem found after import is about (the loader's checks speak of job
// keys): for source "inetd" the inetd.conf field, for "xinetd" the
// attribute. Keys it does not know, and every key of other sources, come
// back unchanged.
func SourceKey(source, key string) string {
	var m map[string]string
	switch source {
	case "inetd":
		m = inetdKeys
	case "xinetd":
		m = xinetdKeys
	case "systemd":
		return systemdKey(key)
	default:
		return key
	}
	if k, ok := m[key]; ok {
		return k
	}
	head, rest, _ := strings.Cut(key, ".")
	if i := strings.IndexByte(head, '['); i >= 0 {
		head = head[:i]
	}
	switch {
	case head == "Sockets" && source == "inetd":
		return keyService
	case head == "Sockets":
		return "port"
	case head == "ProgramArguments":
		return m["ProgramArguments"]
	case head == "EnvironmentVariables" && source == "xinetd":
		return "env"
	case (head == "SoftResourceLimits" || head == "HardResourceLimits") && source == "xinetd":
		for _, r := range rlimitAttrs {
			if r.name == rest {
				return r.attr
			}
		}
	}
	return key
}

var inetdKeys = map[string]string{
	"Label": keyService, "UserName": keyUser, "GroupName": keyUser, "InitGroups": keyUser,
	"Program": keyServer, "ProgramArguments": keyArgs,
}

var xinetdKeys = map[string]string{
	"Label": "id", "UserName": "user", "GroupName": "group", "InitGroups": "groups",
	"Program": "server", "ProgramArguments": "server_args", "Nice": "nice", "Umask": "umask",
	"SockdProxy.Backend": "redirect",
}
