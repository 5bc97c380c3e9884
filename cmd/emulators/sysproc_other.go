//go:build unix && !linux

package main

import "syscall"

// emulatorSysProcAttr puts an emulator in its own process group, so that it and
// anything it forks can be signalled at once.
func emulatorSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
