#!/usr/bin/env bash
# Makes sure the loopback services the test suites use answer, starting any that is down with the
# same command this kind of machine uses at boot. Prints one line per service.
set -uo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do
    if answers "$port"; then echo "services: $name answers on 127.0.0.1:$port"; return 0; fi
    sleep 0.5
  done
  echo "services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

ensure() {
  local name=$1 port=$2; shift 2
  if answers "$port"; then echo "services: $name answers on 127.0.0.1:$port"; return 0; fi
  echo "services: $name is down; starting it"
  "$@" >/dev/null 2>&1 || true
  wait_for "$name" "$port"
}

status=0
ensure postgresql 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' || status=1
ensure mariadb 3306 bash -c 'mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld; start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd' || status=1
ensure redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || status=1
exit $status
