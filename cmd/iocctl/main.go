// Command iocctl is a developer's client of an iochub hub: tail, replay,
// publish and keys (internal/iocctl; docs/developers.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/iochub/iochub/internal/iocctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := iocctl.Run(ctx, os.Args[1:], iocctl.Env{})
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, iocctl.ErrUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "iocctl:", err)
		os.Exit(1)
	}
}
