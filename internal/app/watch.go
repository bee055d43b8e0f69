package app

import (
	"cmp"
	"context"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// watchFile reloads the configuration file when Reload asks and when its
// stamp changes, looked at every ConfigFile.Poll, until ctx ends. A stamp
// follows symbolic links, so the kubelet's swap of a ConfigMap's ..data
// link, an editor's rename over the file and a write in place are each a
// change; polling sees them all alike, and costs one stat a second.
func (a *App) watchFile(ctx context.Context) {
	var tick <-chan time.Time // nil, never ready, without a poll
	if poll := cmp.Or(a.file.Poll, DefaultPoll); poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	stamp, missing := a.file.stamp, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.reloadNow:
			a.reload(triggerSignal)
		case <-tick:
			st, err := smallfile.StampOf(a.file.Path)
			if err != nil {
				// A file gone is refused once, not at every look.
				if err.Error() != missing {
					missing = err.Error()
					a.reload(triggerFile)
				}
				continue
			}
			if st == stamp && missing == "" {
				continue
			}
			stamp, missing = st, ""
			a.reload(triggerFile)
		}
	}
}
