#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster for the tests.
#
#   scripts/postgres.sh start DIR   prints the cluster's URL on stdout
#   scripts/postgres.sh stop DIR
#   scripts/postgres.sh restart DIR starts a stopped cluster again, on its port
#
# The cluster lives in DIR (which must not exist yet for start), listens
# on 127.0.0.1 on a free port, and has a role and database "feedd" with a
# password, so that tests see password authentication. PostgreSQL refuses
# to run as root: as root the server runs as the postgres OS user. The
# binaries come from /usr/lib/postgresql/*/bin (Debian's postgresql).
set -euo pipefail

cmd=${1:?usage: postgres.sh start|stop|restart DIR}
dir=${2:?usage: postgres.sh start|stop|restart DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
	echo "postgres.sh: no PostgreSQL under /usr/lib/postgresql; apt-get install postgresql" >&2
	exit 1
fi
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	echo "$port" >"$dir/port"
	as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
	as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -qAt -c "CREATE ROLE feedd LOGIN CREATEDB PASSWORD 'feedd-test-password'" -c "CREATE DATABASE feedd OWNER feedd" >/dev/null
	echo "postgres://feedd:feedd-test-password@127.0.0.1:$port/feedd?sslmode=disable"
	;;
stop)
	as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
	;;
restart)
	port=$(cat "$dir/port")
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
	;;
*)
	echo "usage: postgres.sh start|stop|restart DIR" >&2
	exit 2
	;;
esac
