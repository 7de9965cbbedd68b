//go:build linux

package trigger

import (
	"fmt"
	"os"
	"strings"
)

// BootID is the kernel's random ID of this boot.
func BootID() (string, error) {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("boot ID: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
