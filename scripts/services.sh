#!/usr/bin/env bash
# Make sure the local services the tests talk to are up (PostgreSQL, MariaDB, Mosquitto, Redis).
# On the dev/CI machines they run at 127.0.0.1; if one is down, start it the way the machine does.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 30); do up "$1" && return 0; sleep 1; done; echo "service on port $1 did not come up" >&2; return 1; }
if ! up 5432; then pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true; wait_for 5432; fi
if ! up 3306; then start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true; wait_for 3306; fi
if ! up 1883; then mosquitto -d -c /etc/mosquitto/mosquitto.conf || true; wait_for 1883; fi
if ! up 6379; then redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true; fi
exit 0
