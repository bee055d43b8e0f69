package app

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// DefaultPoll is how often an App looks at its configuration file for a
// change when ConfigFile.Poll is zero.
const DefaultPoll = time.Second

// ConfigFile is the configuration file a gateway runs, which it reads
// again when the file changes and on Reload.
type ConfigFile struct {
	// Path is the file. Symbolic links are followed at every look, so a
	// ConfigMap volume's ..data link swapped by the kubelet is a change.
	Path string
	// Override applies the command line's flags over the file's values,
	// at start and on every reload; nil applies nothing.
	Override func(*config.Config)
	// Poll is how often the file's stamp (modification time, size, device
	// and inode) is looked at; zero means DefaultPoll, and a negative value
	// leaves the file alone until Reload.
	Poll time.Duration

	// sum and stamp are those of the version LoadConfigFile read.
	sum   [sha256.Size]byte
	stamp smallfile.Stamp
}

// LoadConfigFile reads the configuration file f.Path and checks it with the
// rules of "obo-gateway check" (config.Parse), then applies f.Override and
// validates the result. It returns the configuration and a copy of f that
// remembers the version read, for Options.File.
func LoadConfigFile(f ConfigFile) (*config.Config, *ConfigFile, error) {
	r := f.read()
	if r.err != nil {
		return nil, nil, r.err
	}
	f.sum, f.stamp = r.sum, r.stamp
	return r.cfg, &f, nil
}

// reading is one reading of a ConfigFile.
type reading struct {
	cfg   *config.Config // nil when err is set
	sum   [sha256.Size]byte
	read  bool // the file was read: sum is the SHA-256 of its content
	stamp smallfile.Stamp
	err   error
}

func (f *ConfigFile) read() reading {
	var r reading
	// Stamped before it is read: a change after the stamp makes a new one,
	// so no change goes unseen.
	r.stamp, _ = smallfile.StampOf(f.Path)
	data, err := smallfile.Read(f.Path)
	if err != nil {
		r.err = fmt.Errorf("read configuration: %w", err)
		return r
	}
	r.sum, r.read = sha256.Sum256(data), true
	cfg, err := config.Parse(data, f.Path, nil)
	if err != nil {
		r.err = err
		return r
	}
	if f.Override != nil {
		f.Override(cfg)
		if err := cfg.Validate(); err != nil {
			r.err = fmt.Errorf("with the command line's flags applied: %w", err)
			return r
		}
	}
	r.cfg = cfg
	return r
}

// shortSum is how logs and obo_gateway_config_info name a version of the
// configuration file: the first 12 hex digits of its SHA-256.
func shortSum(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:6]) }

// generation is a configuration the App runs, replaced whole by a reload.
type generation struct {
	cfg *config.Config
	// sum names the file it was read from (shortSum); "" without a file.
	sum        string
	requestLog proxy.RequestLog
}

func newGeneration(cfg *config.Config, sum string) (*generation, error) {
	rl, err := proxy.ParseRequestLog(cfg.Log.Requests)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return &generation{cfg: cfg, sum: sum, requestLog: rl}, nil
}

// restartKeys are the configuration keys (with the keys below them) that a
// running gateway keeps: the listeners it opened, the shutdown Run was
// given, the log format, the authority and credential every cached token
// came from, and the caches' bound and Redis connection. A reload logs a
// change of one as needing a restart, keeps its running value and applies
// the rest of the file.
var restartKeys = []string{
	"listen", "admin_listen", "shutdown_timeout", "shutdown_delay", "log.format",
	"authority", "client", "cache.max_bytes", "cache.redis", "token_api.listen", "telemetry",
}

// liveKeys are the configuration keys (with the keys below them) that a
// reload applies, between requests.
var liveKeys = []string{"log.level", "log.requests", "inbound", "routes", "cache.key", "agents", "token_api.allow_overrides"}

// RestartKeys returns the configuration keys whose change needs a restart;
// a key below one of them needs it too.
func RestartKeys() []string { return slices.Clone(restartKeys) }

// LiveKeys returns the configuration keys a reload applies; a key below one
// of them is applied too.
func LiveKeys() []string { return slices.Clone(liveKeys) }

// keepRestartKeys gives next the running values of the restart keys and
// returns the keys whose value it changed, to the innermost key.
func keepRestartKeys(running, next *config.Config) []string {
	rv, nv := reflect.ValueOf(running).Elem(), reflect.ValueOf(next).Elem()
	var kept []string
	for _, key := range restartKeys {
		old, cur := keyField(rv, key), keyField(nv, key)
		if reflect.DeepEqual(old.Interface(), cur.Interface()) {
			continue
		}
		kept = append(kept, changedKeys(old, cur, key)...)
		cur.Set(old)
	}
	return kept
}

// keyField returns the field of configuration struct v that holds the
// dotted key.
func keyField(v reflect.Value, key string) reflect.Value {
	for name := range strings.SplitSeq(key, ".") {
		i := 0
		for i < v.NumField() && yamlName(v.Type().Field(i)) != name {
			i++
		}
		if i == v.NumField() {
			panic("app: no configuration key " + key)
		}
		v = v.Field(i)
	}
	return v
}

// changedKeys returns the keys below key whose values differ between a and
// b, to the innermost key.
func changedKeys(a, b reflect.Value, key string) []string {
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return nil
		}
		return []string{key}
	}
	var keys []string
	for i := range a.NumField() {
		if name := yamlName(a.Type().Field(i)); name != "" {
			keys = append(keys, changedKeys(a.Field(i), b.Field(i), key+"."+name)...)
		}
	}
	return keys
}

// yamlName is the key of struct field f in the configuration file; "" for
// a field that is none.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// Reload asks the App to read its configuration file again now, as after
// a change of the file (serve calls it on SIGHUP); without a file it does
// nothing. It returns at once: the reload's outcome is logged and counted
// in obo_gateway_config_reloads_total.
func (a *App) Reload() {
	select {
	case a.reloadNow <- struct{}{}:
	default: // one is already asked for
	}
}

// reload reads the configuration file and, when its content changed,
// checks it and applies it between requests: new requests get a handler
// built from it, requests in flight finish on theirs. A file that fails is
// refused and the running configuration stays; the keys that need a
// restart keep their running values.
func (a *App) reload(trigger string) {
	r := a.file.read()
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.live.Load()
	log := a.log.With("file", a.file.Path, "trigger", trigger)
	sum := ""
	if r.read {
		sum = shortSum(r.sum)
		if sum == cur.sum {
			level := slog.LevelDebug
			if trigger == triggerSignal {
				level = slog.LevelInfo
			}
			log.Log(a.bgCtx, level, "configuration unchanged", "sha256", sum)
			return
		}
	}
	refuse := func(err error) {
		a.metrics.ConfigReloads.WithLabelValues("failure").Inc()
		log.Error("configuration refused; the running configuration stays", "sha256", sum,
			"running_sha256", cur.sum, "keys", problemKeys(err), "error", err.Error())
	}
	if r.err != nil {
		refuse(r.err)
		return
	}
	next := r.cfg
	kept := keepRestartKeys(cur.cfg, next)
	if len(kept) > 0 {
		// The checks again, as the configuration will run.
		if err := next.Validate(); err != nil {
			refuse(fmt.Errorf("the file is valid, but not with the running values of the keys that need a restart (%s): %w",
				strings.Join(kept, ", "), err))
			return
		}
	}
	gen, err := newGeneration(next, sum)
	if err == nil && a.authority != nil {
		err = a.installHandler(next)
	}
	if err != nil {
		refuse(err)
		return
	}
	a.live.Store(gen)
	a.metrics.ConfigInfo.WithLabelValues(sum).Set(1)
	if cur.sum != "" {
		a.metrics.ConfigInfo.DeleteLabelValues(cur.sum)
	}
	a.metrics.ConfigReloads.WithLabelValues("success").Inc()
	if len(kept) > 0 {
		a.metrics.ConfigRestartPending.Set(1)
		log.Warn("configuration keys changed that need a restart; they keep their running values", "keys", kept)
	} else {
		a.metrics.ConfigRestartPending.Set(0)
	}
	log.Info("configuration reloaded", "sha256", sum, "previous_sha256", cur.sum, "routes", len(next.Routes))
	for _, w := range next.Warnings() {
		log.Warn("configuration warning", "warning", w)
	}
	// Last, so that the lines above are written at the level they were
	// asked for.
	if lv, err := parseLevel(next.Log.Level); err == nil && a.level != nil {
		a.level.Set(lv)
	}
}

// What made a reload happen, as its log lines say.
const (
	triggerFile   = "file"
	triggerSignal = "signal"
)

// problemKeys returns the configuration keys err names, when it holds
// config.Problems.
func problemKeys(err error) []string {
	var ps config.Problems
	if !errors.As(err, &ps) {
		return nil
	}
	var keys []string
	for _, p := range ps {
		if p.Key != "" && !slices.Contains(keys, p.Key) {
			keys = append(keys, p.Key)
		}
	}
	return keys
}
