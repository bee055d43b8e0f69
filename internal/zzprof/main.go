package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/app"
	"github.com/obo-gateway/obo-gateway/internal/config"
)

func main() {
	cfg, err := config.Load(os.Args[1])
	if err != nil {
		panic(err)
	}
	cfg.Listen, cfg.AdminListen = os.Args[2], os.Args[3]
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	log, _ := app.NewLogger(devnull, cfg.Log.Level, cfg.Log.Format)
	a, err := app.New(app.Options{Config: cfg, Logger: log, Version: "prof"})
	if err != nil {
		panic(err)
	}
	f, _ := os.Create(os.Args[4])
	go func() {
		time.Sleep(48 * time.Second)
		pprof.StartCPUProfile(f)
		time.Sleep(10 * time.Second)
		pprof.StopCPUProfile()
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a.Run(ctx)
	pprof.StopCPUProfile()
	f.Close()
}
