package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// cpuTimes is CPU time spent so far by this process (tenantwal: capture,
// archiver, embedded NATS) and by the PostgreSQL server's processes. It
// tells which side limits a phase on a small machine.
type cpuTimes struct {
	self, postgres time.Duration
	wall           time.Time
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// sampleCPU reads the CPU times; where /proc is missing the PostgreSQL
// side reads as zero.
func sampleCPU(postmaster int) cpuTimes {
	c := cpuTimes{wall: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if postmaster <= 0 {
		return c
	}
	c.postgres = procCPU(postmaster)
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if ppid, cpu, ok := parseStat(b); ok && ppid == postmaster {
			c.postgres += cpu
		}
	}
	return c
}

// procCPU is pid's CPU time including its exited, waited-for children:
// a backend that exits moves its time from the live children's sum to the
// postmaster's.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	_, cpu, _ := parseStat(b)
	return cpu + childrenCPU(b)
}

// childrenCPU returns cutime+cstime of a /proc/<pid>/stat line.
func childrenCPU(b []byte) time.Duration {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 15 {
		return 0
	}
	cu, err1 := strconv.ParseInt(string(f[13]), 10, 64)
	cs, err2 := strconv.ParseInt(string(f[14]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(cu+cs) * clockTick
}

// parseStat returns the parent pid and utime+stime of a /proc/<pid>/stat
// line. The command name may hold spaces and parentheses: fields are
// counted after its last ')'.
func parseStat(b []byte) (ppid int, cpu time.Duration, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	ut, err2 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err3 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return ppid, time.Duration(ut+st) * clockTick, true
}

// cores describes the CPU used since c as cores busy on average, e.g.
// "tenantwal 0.57 cores, PostgreSQL 0.98 cores".
func (c cpuTimes) since(postmaster int) string {
	now := sampleCPU(postmaster)
	wall := now.wall.Sub(c.wall).Seconds()
	if wall <= 0 {
		return ""
	}
	return "CPU: tenantwal process " + strconv.FormatFloat((now.self-c.self).Seconds()/wall, 'f', 2, 64) +
		" cores, PostgreSQL " + strconv.FormatFloat((now.postgres-c.postgres).Seconds()/wall, 'f', 2, 64) + " cores"
}
