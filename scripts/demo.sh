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
has() { $CLUSTER exec --name "$NAME" --host h1 -- plexctl --help | grep -qE "^  $1( |\$)"; }

cleanup() { $CLUSTER down --name "$NAME" >/dev/null 2>&1 || true; rm -rf "${www:-}"; }
trap cleanup EXIT
cleanup

step "Bring up 3 hosts (namespaces $NAME-h1..h3 on an underlay), each running plexusd: h1 and h2 in zone a, h3 in zone b, 20 ms away"
show $CLUSTER up --name "$NAME" --hosts 3 --zones a:2,b:1 --zone-rtt a-b=20ms

step "Each agent answers on its own API socket"
for h in h1 h2 h3; do on "$h" plexctl status; done

if has hosts; then
  step "Membership: every host sees every other (gossip over libp2p), with the round trip its kernel measured"
  sleep 4
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
if [ -x dist/cni/bin/plexus ] && has endpoints; then
  step "A service, defined once for the whole cluster, with an HTTP health check"
  on h1 plexctl service register web --port http:80/tcp --check http:80/ --interval 2s
  step "Containers on different hosts, attached through the CNI plugin"
  www=$(mktemp -d /tmp/plexus-demo-www.XXXXXX)
  for w in web1 web2; do mkdir -p "$www/$w" && echo "hello from $w" > "$www/$w/index.html"; done
  show $CLUSTER run --name "$NAME" --host h1 --ctr web1 --service web --expose 80 -- busybox httpd -f -p 80 -h "$www/web1"
  show $CLUSTER run --name "$NAME" --host h2 --ctr web2 --service web --expose 80 -- busybox httpd -f -p 80 -h "$www/web2"
  show $CLUSTER run --name "$NAME" --host h3 --ctr client -- sleep 600
  sleep 2
  on h3 plexctl endpoints
  if has routes; then on h3 plexctl routes; fi
  step "The client on h3 reaches the service by name, across hosts"
  printf '[client]$ getent hosts web\n'
  $CLUSTER exec --name "$NAME" --ctr client -- getent hosts web
  printf '[client]$ dig +short SRV _http._tcp.web.svc.plexus.internal\n'
  $CLUSTER exec --name "$NAME" --ctr client -- dig +short SRV _http._tcp.web.svc.plexus.internal
  for i in 1 2 3 4; do
    printf '[client]$ printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc web 80  ->  '
    $CLUSTER exec --name "$NAME" --ctr client -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | busybox nc -w 3 web 80 | tail -n 1'
  done
  printf '[client]$ dig +short example.test   # outside the zone: forwarded upstream\n'
  $CLUSTER exec --name "$NAME" --ctr client -- dig +short example.test
  if has services; then on h2 plexctl services; fi
  if has trace; then
    step "The path from the client on h3 to the web service, hop by hop from each host's kernel, and one real SYN along it"
    on h3 plexctl trace --probe client web:80
  fi
fi
if has job; then
  step "A job: the scheduler places it, every host's runner runs its part (exec driver, attached by the CNI plugin)"
  job=$(mktemp /tmp/plexus-demo-job.XXXXXX.yaml)
  cat > "$job" <<'YAML'
name: shop
type: service
groups:
  - name: api
    count: 2
    service: { name: api, ports: [{ name: http, port: 8080, protocol: tcp }] }
    constraints: [{ operator: distinct_hosts }]
    tasks:
      - name: api
        driver: exec
        # one answer per connection: enough for a demo, no image needed
        config: { command: ["sh", "-c", "while true; do printf 'HTTP/1.0 200 OK\r\n\r\nhello from %s on %s\n' $PLEXUS_ALLOC_ID $PLEXUS_HOST | busybox nc -l -p 8080 >/dev/null; done"] }
        resources: { cpu: 50, memoryMb: 32 }
        killTimeoutMs: 1000
  - name: front
    count: 1
    service: { name: front }
    talksTo: [{ service: api }]
    tasks:
      - name: front
        driver: exec
        # "api" resolves through the task's resolver, its host's Plexus DNS
        config: { command: ["sh", "-c", "while true; do busybox wget -qO- http://api:8080/ || echo no answer; sleep 1; done"] }
        resources: { cpu: 50, memoryMb: 32 }
        killTimeoutMs: 1000
YAML
  cat "$job"
  on h1 plexctl job run "$job"
  printf 'waiting for its 3 allocations to run'
  for _ in $(seq 1 60); do
    running=$($CLUSTER exec --name "$NAME" --host h1 -- plexctl allocs --job shop | grep -c ' running' || true)
    [ "$running" -ge 3 ] && break
    printf '.'; sleep 1
  done
  echo
  on h1 plexctl job status shop
  if has traffic; then
    step "Why each host: the network cost of where it runs, and every host's verdict"
    on h1 plexctl job explain shop
  fi
  step "A request flowing through it: front's output, then the client container asking api by name"
  front=$($CLUSTER exec --name "$NAME" --host h1 -- plexctl allocs --job shop | awk '$3 == "front" { print $1; print $5 }')
  sleep 3
  on "$(echo "$front" | sed -n 2p)" plexctl logs "$(echo "$front" | sed -n 1p)" --tail 4
  if [ -n "${www:-}" ]; then
    for _ in 1 2; do
      printf '[client]$ wget -qO- http://api:8080/  ->  '
      $CLUSTER exec --name "$NAME" --ctr client -- busybox wget -qO- http://api:8080/ || echo "(no answer)"
    done
  fi
  if has traffic; then
    step "Bytes between services, measured from conntrack: what the scheduler places by where a job declares nothing"
    sleep 8
    on h1 plexctl traffic
  fi
  on h1 plexctl job stop shop
  rm -f "$job"
fi

step "Tear down: every namespace, process and rule goes away"
show $CLUSTER down --name "$NAME"
rm -rf "${www:-}"
trap - EXIT
echo "demo finished"
