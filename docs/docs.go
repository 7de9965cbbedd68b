// Package docs holds sockd's user documentation, the Markdown pages of this
// directory. It embeds the pages that manual pages are made from (keys.md
// is sockd.plist(5): sockd man sockd.plist.5), and its tests check that
// every relative link and anchor of README.md and docs/ resolves.
package docs

import _ "embed"

// Keys is keys.md, the reference of every job-file key: sockd.plist(5).
//
//go:embed keys.md
var Keys string
