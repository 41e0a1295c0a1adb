#!/usr/bin/env bash
# Two builds side by side on the reference workload (run `npm run bench` once first to generate it):
# each round times md5sum -P<cores>, then a cold sync (manifests and response.json restored) and a warm
# sync of build A, then of build B. Prints the median of each and every run, in ms.
#
#   bench/ab.sh ROUNDS A/dist/src/cli/main.js B/dist/src/cli/main.js [bench/cache/scale-1]
set -euo pipefail
rounds=$1 a=$2 b=$3 work=${4:-"$(dirname "$0")/cache/scale-1"}
root=$work/root meta=$work/meta cores=$(nproc)
restore() {
  rm -rf "$root/data/actor_manifests"
  cp -a "$meta/actor_manifests" "$root/data/actor_manifests"
  for name in $(ls "$meta/legacy"); do cp -a "$meta/legacy/$name/response.json" "$root/data/actors/$name/training_data/response.json"; done
  sync
}
ms() { local start; start=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - start) / 1000000 )); }
for _ in $(seq 1 "$rounds"); do
  echo "md5sum $(ms sh -c "find '$root/data/actors' -type f \\( -name '*.png' -o -name '*.jpg' \\) -print0 | xargs -0 -P$cores md5sum")"
  for side in A B; do
    main=$a; [ $side = B ] && main=$b
    restore
    echo "cold$side $(ms node "$main" sync --root "$root")"
    echo "warm$side $(ms node "$main" sync --root "$root")"
  done
done | sort -k1,1 -k2n | awk '{ n[$1]++; v[$1, n[$1]] = $2; all[$1] = all[$1] " " $2 }
  END { for (k in n) print k, "median", v[k, int((n[k] + 1) / 2)], "ms:" all[k] }' | sort
