package experiment

import (
	"fmt"
	"strings"
	"time"
)

// Profile is a link between a host and its registry, as the experiments
// shape it.
type Profile struct {
	Name      string
	RTT       time.Duration
	Bandwidth int64 // bytes per second
	About     string
}

// Profiles are the links the benchmarks compare on. Cross-region is the
// default; slow is close to the cross-region link of overlaybd's published
// test; same-region is a registry in the host's own data centre.
func Profiles() []Profile {
	return []Profile{
		{Name: "cross-region", RTT: 20 * time.Millisecond, Bandwidth: 100e6 / 8, About: "20ms, 100 Mbit/s"},
		{Name: "slow", RTT: 50 * time.Millisecond, Bandwidth: 25e6 / 8, About: "50ms, 25 Mbit/s"},
		{Name: "same-region", RTT: 2 * time.Millisecond, Bandwidth: 1e9 / 8, About: "2ms, 1 Gbit/s"},
	}
}

// ProfileNamed returns the profile called name.
func ProfileNamed(name string) (Profile, error) {
	var names []string
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Profile{}, fmt.Errorf("experiment: link profile %q: want %s", name, strings.Join(names, ", "))
}
