//go:build linux && !race

package supervisor

const raceEnabled = false
