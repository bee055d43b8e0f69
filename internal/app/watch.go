package app

import (
	"cmp"
	"context"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// watchFile reloads the configuration file when its stamp changes, looked
// at every ConfigFile.Poll, and when Reload asks, until ctx ends. A stamp
// follows symbolic links, so the kubelet's swap of a ConfigMap's ..data
// link, an editor's rename over the file and a write in place are each a
// change; polling sees them all alike, and costs one stat a second.
func (a *App) watchFile(ctx context.Context) {
	t := time.NewTicker(cmp.Or(a.file.Poll, DefaultPoll))
	defer t.Stop()
	stamp, missing := a.file.stamp, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.reloadNow:
			a.reload(triggerSignal)
		case <-t.C:
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
