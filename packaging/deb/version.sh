#!/bin/sh
# Prints the version of this checkout, as `make` and the package use it
# (sockd version, the .deb's Version):
#   a tag vX.Y.Z on HEAD          X.Y.Z
#   N commits after tag vX.Y.Z    X.Y.Z+N.gREV
#   no tag                        0.0~gitYYYYMMDD.REV (the date of HEAD's commit)
# with +dirty when tracked files differ from HEAD. Debian version syntax, and
# no hyphen: the package is native (its own upstream).
set -eu
cd "$(dirname "$0")/../.."
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo "packaging/deb/version.sh: not a git checkout: set VERSION" >&2
	exit 1
fi
rev=$(git rev-parse --short=12 HEAD)
if desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	v=${desc#v}
	case $v in
	*-*-g*) n=${v%-g*}; n=${n##*-}; v="${v%-*-g*}+$n.g$rev" ;;
	esac
else
	v="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$rev"
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	v="$v+dirty"
fi
echo "$v"
