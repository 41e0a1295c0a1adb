#!/usr/bin/env bash
# Builds side by side on the reference workload (run `npm run bench` once first to generate it): each round
# times md5sum -P<cores>, then for each build in turn a cold sync (manifests and response.json restored) and a
# warm sync, under GNU time. Each build keeps its own sync cache (XDG_CACHE_HOME). Prints the median and every
# run of each: wall time (coldA), CPU time of all threads (coldA.cpu), both in ms, and peak RSS in MB
# (coldA.rss); builds are labelled A, B, C … in the order given.
#
#   bench/ab.sh ROUNDS A/dist/src/cli/main.js B/dist/src/cli/main.js [C/… …] [bench/cache/scale-1]
set -euo pipefail
rounds=$1; shift
work="$(dirname "$0")/cache/scale-1" builds=()
for arg in "$@"; do if [ -d "$arg" ]; then work=$arg; else builds+=("$arg"); fi; done
root=$work/root meta=$work/meta cores=$(nproc) caches=$(mktemp -d)
trap 'rm -rf "$caches"' EXIT
restore() {
  rm -rf "$root/data/actor_manifests"
  cp -a "$meta/actor_manifests" "$root/data/actor_manifests"
  for name in $(ls "$meta/legacy"); do cp -a "$meta/legacy/$name/response.json" "$root/data/actors/$name/training_data/response.json"; done
  sync
}
ms() { local start; start=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - start) / 1000000 )); }
# One sync: "<name> wall-ms", "<name>.cpu ms", "<name>.rss MB".
timed() {
  local name=$1; shift
  # A sync that fails (exit 1: problems) is still timed; set -e must not end the rounds.
  /usr/bin/time -f '%e %U %S %M' -o "$caches/time" "$@" >/dev/null 2>&1 || true
  tail -1 "$caches/time" | awk -v n="$name" '{ printf "%s %d\n%s.cpu %d\n%s.rss %d\n", n, $1 * 1000, n, ($2 + $3) * 1000, n, $4 / 1024 }'
}
labels=(A B C D E F G H I J)
for _ in $(seq 1 "$rounds"); do
  echo "md5sum $(ms sh -c "find '$root/data/actors' -type f \\( -name '*.png' -o -name '*.jpg' \\) -print0 | xargs -0 -P$cores md5sum")"
  for i in "${!builds[@]}"; do
    side=${labels[$i]} main=${builds[$i]}
    restore
    timed "cold$side" env XDG_CACHE_HOME="$caches/$side" node "$main" sync --root "$root"
    timed "warm$side" env XDG_CACHE_HOME="$caches/$side" node "$main" sync --root "$root"
  done
done | sort -k1,1 -k2n | awk '{ n[$1]++; v[$1, n[$1]] = $2; all[$1] = all[$1] " " $2 }
  END { for (k in n) print k, "median", v[k, int((n[k] + 1) / 2)], "of" all[k] }' | sort
