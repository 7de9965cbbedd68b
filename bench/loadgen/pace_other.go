//go:build !linux

package loadgen

import "time"

func lockPacerThread() {}

func preciseSleep(d time.Duration) { time.Sleep(d) }
