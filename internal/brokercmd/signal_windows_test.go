package brokercmd

import "testing"

// stopSelf: a Windows process cannot send itself the console events Go
// turns into os.Interrupt and SIGTERM; skipSignalTest stops the test first.
func stopSelf(t *testing.T) { t.Fatal("cannot signal this process on Windows") }

func skipSignalTest(t *testing.T) { t.Skip("cannot signal this process on Windows") }
