package main

import "syscall"

// emulatorSysProcAttr puts an emulator in its own process group, so that it and
// anything it forks can be signalled at once, and kills it if this process dies
// without stopping it (SIGKILL cannot be caught).
func emulatorSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
