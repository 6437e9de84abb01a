package failpoint_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/tenantwal/tenantwal/internal/failpoint"
)

// TestHitKills re-runs this test binary as a child with the failpoint armed
// for its third hit: the child dies by SIGKILL exactly there.
func TestHitKills(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") != "" {
		failpoint.Hit("other")
		for i := 1; i <= 5; i++ {
			os.Stdout.WriteString("hit " + string(rune('0'+i)) + "\n")
			failpoint.Hit("here")
		}
		os.Exit(0)
	}
	for _, tc := range []struct {
		env       string
		killed    bool
		lastPrint string
	}{
		{"here=3", true, "hit 3"},
		{"here", true, "hit 1"},
		{"here=9", false, "hit 5"},
		{"", false, "hit 5"},
		{"elsewhere", false, "hit 5"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHitKills$")
		cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", failpoint.Env+"="+tc.env)
		out, err := cmd.Output()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if last := lines[len(lines)-1]; last != tc.lastPrint {
			t.Errorf("%s=%q: last output %q, want %q", failpoint.Env, tc.env, last, tc.lastPrint)
		}
		var ee *exec.ExitError
		killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
		if killed != tc.killed {
			t.Errorf("%s=%q: killed by SIGKILL %v (%v), want %v", failpoint.Env, tc.env, killed, err, tc.killed)
		}
	}
}
