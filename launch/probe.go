package launch

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ProbeKind is how readiness is checked.
type ProbeKind int

// Probe kinds.
const (
	ProbeExit ProbeKind = iota // the program exits 0
	ProbeTCP                   // a TCP connect to 127.0.0.1:Port succeeds
	ProbeHTTP                  // a GET of URL answers 2xx or 3xx
	ProbeCmd                   // a host command (sh -c) exits 0
)

// Probe is a readiness check.
type Probe struct {
	Kind ProbeKind
	Port int
	URL  string
	Cmd  string
}

func (p Probe) String() string {
	switch p.Kind {
	case ProbeTCP:
		return "tcp:" + strconv.Itoa(p.Port)
	case ProbeHTTP:
		return "http:" + p.URL
	case ProbeCmd:
		return "cmd:" + p.Cmd
	}
	return "exit"
}

// ParseProbe reads exit, tcp:PORT, http:URL or cmd:COMMAND.
func ParseProbe(s string) (Probe, error) {
	kind, arg, _ := strings.Cut(s, ":")
	switch kind {
	case "exit":
		if arg != "" {
			return Probe{}, fmt.Errorf("probe %q: exit takes no argument", s)
		}
		return Probe{Kind: ProbeExit}, nil
	case "tcp":
		port, err := strconv.Atoi(arg)
		if err != nil || port <= 0 || port > 65535 {
			return Probe{}, fmt.Errorf("probe %q: want tcp:PORT", s)
		}
		return Probe{Kind: ProbeTCP, Port: port}, nil
	case "http", "https":
		if arg == "" {
			return Probe{}, fmt.Errorf("probe %q: want http:URL", s)
		}
		u := arg
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			u = s // http://... was given whole
		}
		return Probe{Kind: ProbeHTTP, URL: u}, nil
	case "cmd":
		if arg == "" {
			return Probe{}, fmt.Errorf("probe %q: want cmd:COMMAND", s)
		}
		return Probe{Kind: ProbeCmd, Cmd: arg}, nil
	}
	return Probe{}, fmt.Errorf("probe %q: want exit, tcp:PORT, http:URL or cmd:COMMAND", s)
}

// check runs the probe once.
func (p Probe) check(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	switch p.Kind {
	case ProbeTCP:
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)))
		if err != nil {
			return false
		}
		c.Close()
		return true
	case ProbeHTTP:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode < 400
	case ProbeCmd:
		return exec.CommandContext(ctx, "sh", "-c", p.Cmd).Run() == nil
	}
	return false
}
