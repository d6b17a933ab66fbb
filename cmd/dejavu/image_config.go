package main

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// configFlags are the runtime config of an image a command builds.
type configFlags struct {
	entrypoint, cmd, env []string
	workingDir, user     string
}

func (f *configFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.entrypoint, "entrypoint", nil, "entrypoint, one flag per argument")
	fl.StringArrayVar(&f.cmd, "cmd", nil, "command, one flag per argument")
	fl.StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	fl.StringVar(&f.workingDir, "workdir", "", "working directory of the process")
	fl.StringVar(&f.user, "user", "", "user (and group) the process runs as")
}

// config checks the flags and returns the config.
func (f *configFlags) config() (v1.Config, error) {
	for _, kv := range f.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return v1.Config{}, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
	}
	return v1.Config{Entrypoint: f.entrypoint, Cmd: f.cmd, Env: f.env, WorkingDir: f.workingDir, User: f.user}, nil
}
