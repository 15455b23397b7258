#!/usr/bin/env bash
# `make demo`: a real 3-host Plexus cluster in network namespaces on this machine.
# Each step prints the command it runs, so the output doubles as a walkthrough.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${DEMO_NAME:-demo}
CLUSTER=netns-fixtures/cluster

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
on() { local h=$1; shift; printf '[%s]$ %s\n' "$h" "$*"; $CLUSTER exec --name "$NAME" --host "$h" -- "$@"; }
has() { $CLUSTER exec --name "$NAME" --host h1 -- plexctl help "$1" >/dev/null 2>&1; }

cleanup() { $CLUSTER down --name "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

step "Bring up 3 hosts (namespaces $NAME-h1..h3 on an underlay bridge), each running plexusd"
show $CLUSTER up --name "$NAME" --hosts 3

step "Each agent answers on its own API socket"
for h in h1 h2 h3; do on "$h" plexctl status; done

if has hosts; then
  step "Membership: every host sees every other (gossip over libp2p)"
  sleep 2
  on h1 plexctl hosts
fi
if has kv; then
  step "Replicated KV: written on h1, read on h3"
  on h1 plexctl kv put demo/greeting "hello from h1"
  sleep 1
  on h3 plexctl kv get demo/greeting
fi
if has subnets; then
  step "Host-subnet leases (one /24 per host, no etcd)"
  sleep 2
  on h2 plexctl subnets
fi
if [ -x dist/cni/plexus ] && has endpoints; then
  step "Containers on different hosts, attached through the CNI plugin"
  show $CLUSTER run --name "$NAME" --host h1 --ctr web1 --service web -- busybox httpd -f -p 80 -h /etc
  show $CLUSTER run --name "$NAME" --host h2 --ctr web2 --service web -- busybox httpd -f -p 80 -h /etc
  show $CLUSTER run --name "$NAME" --host h3 --ctr client -- sleep 600
  sleep 2
  on h3 plexctl endpoints
  if has routes; then on h3 plexctl routes; fi
  step "The client on h3 reaches the service by name, across hosts"
  printf '[client]$ nslookup web\n'
  $CLUSTER exec --name "$NAME" --ctr client -- busybox nslookup web || true
  printf '[client]$ wget -qO- http://web/hostname\n'
  $CLUSTER exec --name "$NAME" --ctr client -- busybox wget -qO- -T 3 http://web/hostname || true
fi

step "Tear down: every namespace, process and rule goes away"
show $CLUSTER down --name "$NAME"
trap - EXIT
echo "demo finished"
