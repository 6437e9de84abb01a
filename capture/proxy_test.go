package capture_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// proxy is a TCP proxy between capture and PostgreSQL that can blackhole
// its connections: stop forwarding in both directions without closing
// them, as a dropped network path or a hung peer looks to both ends.
type proxy struct {
	ln       net.Listener
	upstream string

	mu     sync.Mutex
	conns  []*proxyConn // forwarding
	frozen []*proxyConn // blackholed, closed at the end
	closed bool
}

type proxyConn struct {
	client, server net.Conn
	frozen         chan struct{} // closed by blackhole
	freeze         sync.Once
}

// startProxy forwards a local port to upstream ("host:port") until the
// test ends.
func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// addr is the proxy's "host:port".
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: s, frozen: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		go pc.pipe(s, c)
		go pc.pipe(c, s)
	}
}

// pipe copies src to dst until either fails or the connection is frozen;
// after that it holds what it read and forwards nothing more.
func (pc *proxyConn) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-pc.frozen:
			// Keep reading so the sender's writes succeed, forward nothing.
			for err == nil {
				_, err = src.Read(buf)
			}
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// blackhole freezes every connection open now; later ones are forwarded.
func (p *proxy) blackhole() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.freeze.Do(func() { close(pc.frozen) })
	}
	n := len(p.conns)
	p.frozen = append(p.frozen, p.conns...)
	p.conns = nil
	return n
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	conns := append(p.conns, p.frozen...)
	p.mu.Unlock()
	p.ln.Close()
	for _, pc := range conns {
		pc.client.Close()
		pc.server.Close()
	}
}
