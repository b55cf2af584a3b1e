#!/usr/bin/env bash
# Router throughput and p99 latency: wrk with keep-alive against (a) the
# two backends directly, (b) Corral's router, (c) nginx and (d) HAProxy, the
# three proxies in front of the same two backends with upstream keep-alive and
# least-connections balancing; prints a table and the ratios corral/direct,
# corral/nginx, corral/haproxy (goal: throughput >= 1.0 against nginx and
# HAProxy, p99 <= 1.0).
#
# Usage: bench/router/run.sh [SECONDS] [ROUNDS]   (defaults 10 and 2)
# Each round measures every target once after a 2 s warm-up, in alternating
# order between rounds; the table shows the median over rounds (the mean of
# two). Needs wrk, nginx and haproxy: installed with apt-get when run as
# root. BENCH_PORT_BASE picks the first loopback port to try (default 18480).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-10}"
rounds="${2:-2}"
# wrk: 2 threads, 64 keep-alive connections. The proxies get 2 workers each
# (nginx worker_processes, HAProxy nbthread, the router's tokio workers),
# and each backend a 2-thread runtime; all share this machine's cores with
# wrk, so the ratios compare the proxies' efficiency, not their peak.
wrk_common=(--latency -H "Host: bench.localhost")
wrk_args=(-t2 -c64 "${wrk_common[@]}")
# direct has no proxy to spread the load over both backends, so it gets
# one wrk per backend with half the threads and connections each: the
# same 2 threads and 64 connections in all, on the same two backends.
wrk_half=(-t1 -c32 "${wrk_common[@]}")
workers=2

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
command -v haproxy >/dev/null || missing+=(haproxy)
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y "${missing[@]}" >/dev/null
    else
        echo "bench/router: missing ${missing[*]}; install them (e.g. apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi

cargo build --release --quiet --example bench_backend --example bench_router
bin="${CARGO_TARGET_DIR:-target}/release/examples"

tmp="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Whether something accepts connections on a loopback port.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The next free port from $next_port on.
next_port="${BENCH_PORT_BASE:-18480}"
free_port() {
    while listening "$next_port"; do next_port=$((next_port + 1)); done
    port="$next_port"
    next_port=$((next_port + 1))
}

wait_port() {
    for _ in $(seq 100); do
        listening "$1" && return 0
        sleep 0.1
    done
    echo "bench/router: nothing listens on port $1 after 10 s" >&2
    tail -n 5 "$tmp"/*.log >&2 || true
    exit 1
}

# One request with Host bench.localhost; fails unless the answer is 200, so
# a misrouted proxy is caught before it is measured.
check() {
    local name="$1" port="$2" status
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.1\r\nHost: bench.localhost\r\nConnection: close\r\n\r\n' >&3
    read -r -t 5 _ status _ <&3 || true
    exec 3<&-
    if [[ "$status" != 200 ]]; then
        echo "bench/router: $name answered ${status:-nothing}, not 200" >&2
        exit 1
    fi
}

free_port; backend1="$port"
free_port; backend2="$port"
free_port; corral="$port"
free_port; nginx_port="$port"
free_port; haproxy_port="$port"

"$bin/bench_backend" "$backend1" "$workers" &
pids+=($!)
backend1_pid=$!
"$bin/bench_backend" "$backend2" "$workers" &
pids+=($!)
backend2_pid=$!
# Tracing at warn: no per-request router log line, as the others log nothing.
RUST_LOG=warn "$bin/bench_router" --threads="$workers" "$corral" "$backend1" "$backend2" &
pids+=($!)
corral_pid=$!

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log crit;
events { worker_connections 4096; }
http {
    access_log off;
    # nginx closes a keep-alive connection after 1000 requests by default;
    # Corral's router and HAProxy do not, so neither does nginx here.
    keepalive_requests 1000000;
    client_body_temp_path $tmp/nginx/client;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream bench {
        least_conn;
        server 127.0.0.1:$backend1;
        server 127.0.0.1:$backend2;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$nginx_port default_server;
        return 404;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        server_name bench.localhost;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The headers Corral's router adds, so all do the same work.
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Port \$server_port;
            proxy_set_header X-Request-Id \$request_id;
            proxy_set_header X-Request-Start \$msec;
        }
    }
}
EOF
nginx -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
nginx_pid=$!

cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread $workers
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend bench
    bind 127.0.0.1:$haproxy_port
    http-request return status 404 unless { hdr(host) -i bench.localhost }
    # The headers Corral's router adds, so all do the same work.
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Port %[dst_port]
    http-request set-header X-Request-Id %[uuid]
    http-request set-header X-Request-Start %[date(0,ms)]
    default_backend bench
backend bench
    balance leastconn
    http-reuse always
    server b1 127.0.0.1:$backend1
    server b2 127.0.0.1:$backend2
EOF
haproxy -db -f "$tmp/haproxy.cfg" 2>"$tmp/haproxy.log" &
pids+=($!)
haproxy_pid=$!

names=(direct corral nginx haproxy)
# A target's ports: direct is both backends, each proxy one port.
declare -A ports=([direct]="$backend1 $backend2" [corral]="$corral" [nginx]="$nginx_port" [haproxy]="$haproxy_port")
for name in "${names[@]}"; do
    for p in ${ports[$name]}; do
        wait_port "$p"
        check "$name" "$p"
    done
done

# The processes whose CPU time a target's requests cost: the backend for
# direct, the proxy (nginx's workers, not its idle master) for the others.
nginx_workers="$(pgrep -P "$nginx_pid" | tr '\n' ' ')"
declare -A serving=([direct]="$backend1_pid $backend2_pid" [corral]="$corral_pid" [nginx]="$nginx_workers" [haproxy]="$haproxy_pid")
tick="$(getconf CLK_TCK)"

# User and system clock ticks of all threads of the given processes.
cpu_ticks() {
    local user=0 system=0 pid stat fields
    for pid in "$@"; do
        for stat in /proc/"$pid"/task/*/stat; do
            # Fields after the command name, which may hold spaces: utime
            # and stime are the 12th and 13th.
            read -r -a fields < <(sed 's/.*) //' "$stat" 2>/dev/null) || continue
            user=$((user + fields[11]))
            system=$((system + fields[12]))
        done
    done
    echo "$user $system"
}

# Runs wrk for DURATION against target NAME, its output in OUT.<n>.txt:
# one wrk of wrk_args for a proxy, one of wrk_half per backend at once for
# direct.
run_wrk() {
    local name="$1" duration="$2" out="$3" args i=0 p waiting=() target_ports
    read -r -a target_ports <<<"${ports[$name]}"
    if ((${#target_ports[@]} == 1)); then
        args=("${wrk_args[@]}")
    else
        args=("${wrk_half[@]}")
    fi
    for p in "${target_ports[@]}"; do
        wrk "${args[@]}" -d"$duration" "http://127.0.0.1:$p/" >"$out.$i.txt" &
        waiting+=($!)
        i=$((i + 1))
    done
    # Only these: a bare `wait` would wait for the servers too.
    wait "${waiting[@]}"
}

shown=()
for arg in "${wrk_args[@]}"; do
    [[ "$arg" == *" "* ]] && arg="'$arg'"
    shown+=("$arg")
done
echo "wrk ${shown[*]} -d${seconds}s; direct: one wrk -t1 -c32 per backend, the two summed (p99 the higher); $rounds rounds; $workers workers per proxy and backend; $(nproc) cores"
for round in $(seq "$rounds"); do
    order=("${names[@]}")
    if ((round % 2 == 0)); then
        order=(haproxy nginx corral direct)
    fi
    for name in "${order[@]}"; do
        run_wrk "$name" 2s "$tmp/warmup"
        # shellcheck disable=SC2086 # one word per pid
        read -r user0 system0 < <(cpu_ticks ${serving[$name]})
        run_wrk "$name" "${seconds}s" "$tmp/$name.$round"
        # shellcheck disable=SC2086
        read -r user1 system1 < <(cpu_ticks ${serving[$name]})
        # Requests/sec, the 99% latency in ms, failed requests, and CPU µs
        # per request (user, system); summed over direct's two wrk runs,
        # with the higher of their two p99s.
        awk -v name="$name" -v round="$round" -v tick="$tick" \
            -v utime="$((user1 - user0))" -v stime="$((system1 - system0))" '
            /^Requests\/sec:/ { rps += $2 }
            $1 == "99%" {
                v = $2; unit = v; sub(/^[0-9.]+/, "", unit); v += 0
                if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000; else if (unit == "m") v *= 60000
                if (v > p99) p99 = v
            }
            /Non-2xx or 3xx responses:/ { errors += $NF }
            /Socket errors:/ { for (i = 4; i <= NF; i += 2) { n = $i; sub(/,/, "", n); errors += n } }
            / requests in / { requests += $1 }
            END {
                us = requests > 0 ? 1e6 / tick / requests : 0
                printf "%s %s %.1f %.3f %d %.1f %.1f\n", name, round, rps, p99, errors, utime * us, stime * us
            }
        ' "$tmp/$name.$round".*.txt | tee -a "$tmp/results.txt" |
            awk '{ printf "round %s  %-8s %10.0f req/s  p99 %7.2f ms  errors %d  cpu %5.1f+%5.1f us/req\n", $2, $1, $3, $4, $5, $6, $7 }'
    done
done

echo
awk -v names="${names[*]}" '
    function median(list,   a, n, i, j, t) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        rps[$1] = rps[$1] " " $3; p99[$1] = p99[$1] " " $4; errors[$1] += $5
        usr[$1] = usr[$1] " " $6; sys[$1] = sys[$1] " " $7; cpu[$1] = cpu[$1] " " ($6 + $7)
    }
    END {
        n = split(names, order, " ")
        printf "%-8s %12s %10s %8s %22s\n", "target", "req/s", "p99 ms", "errors", "cpu us/req (usr+sys)"
        for (i = 1; i <= n; i++) {
            t = order[i]; r[t] = median(rps[t]); p[t] = median(p99[t]); c[t] = median(cpu[t])
            printf "%-8s %12.0f %10.2f %8d %9.1f (%.1f+%.1f)\n", t, r[t], p[t], errors[t], c[t], median(usr[t]), median(sys[t])
        }
        print ""
        printf "%-16s %12s %10s %10s\n", "ratio", "throughput", "p99", "cpu/req"
        for (i = 1; i <= n; i++) {
            t = order[i]
            if (t == "corral") continue
            printf "corral/%-9s %12.2f %10.2f %10.2f\n", t, r["corral"] / r[t], p["corral"] / p[t], c["corral"] / c[t]
        }
        print "(throughput above 1.0, p99 and cpu/req below 1.0 favour Corral)"
    }
' "$tmp/results.txt"
