package pgserver

import (
	"errors"
	"net"
	"strings"
	"testing"
)

// A start on a taken port is recognised, so that Start can retry with
// another free port.
func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Start(t.Context(), Options{Port: l.Addr().(*net.TCPAddr).Port, Settings: map[string]string{"fsync": "off"}})
	if !errors.Is(err, errPortInUse) || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("err = %v, want errPortInUse with the log", err)
	}
}
