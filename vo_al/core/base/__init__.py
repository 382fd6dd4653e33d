"""What every part of the core stands on; imports nothing else of vo-al.

- `errors`: the typed errors (each names the file, value or service that failed)
- `progress`: `Progress`, `CancelToken`, `Job` — long work as a generator, and its text bar
- `atomic`: crash-safe writes (temp file, fsync, rename); temporary names unique per process
- `lock`: an exclusive file lock the OS drops with its holder, saying who holds it (pool.lock,
  project.lock)
- `jsonfile`: reading back a small JSON file tagged with its "format", checked
- `npy`: opening .npy segments and score files from several threads at once
- `sky`: the angular separation
"""
