//! A real PostgreSQL server inside a fleet host: Debian's `postgresql`
//! package (installed by `.ci/run`), its data in the host's private /srv,
//! listening only on a unix socket there (`/srv/pg`), run as the
//! `postgres` user (it refuses to run as root). It ends with the fleet
//! (every process in the host's namespaces is killed at teardown).

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use super::Fleet;

pub struct Postgres<'a> {
    fleet: &'a Fleet,
    host: usize,
    /// The server's bin directory, e.g. /usr/lib/postgresql/15/bin.
    pub bin: String,
}

/// The unix socket directory inside the host.
pub const SOCKET_DIR: &str = "/srv/pg";

impl<'a> Postgres<'a> {
    /// initdb into /srv/pg/data on host `host` and start the server (waits until it answers).
    pub fn start(fleet: &'a Fleet, host: usize) -> Postgres<'a> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's postgresql is installed (.ci/run installs it)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin")
            .display()
            .to_string();
        fleet.exec_ok(
            host,
            &format!(
                "set -e; mkdir -p {SOCKET_DIR}; chown postgres:postgres {SOCKET_DIR}; chmod 0755 /srv
                 runuser -u postgres -- {bin}/initdb -D {SOCKET_DIR}/data -U postgres --auth=trust -E UTF8 >/dev/null
                 runuser -u postgres -- {bin}/pg_ctl -D {SOCKET_DIR}/data -l {SOCKET_DIR}/log -w -t 60 \
                   -o \"-k {SOCKET_DIR} -c listen_addresses='' -c fsync=off -c max_connections=60\" start >/dev/null"
            ),
        );
        Postgres { fleet, host, bin }
    }

    /// The psql command line a job uses on the host (no rc file, stop on error).
    pub fn psql(&self) -> String {
        format!(
            "{}/psql -X -q -v ON_ERROR_STOP=1 -h {SOCKET_DIR} -U postgres",
            self.bin
        )
    }

    /// Runs `sql` in database `db` on the host; answers psql's unaligned,
    /// tuples-only output (panics on an error).
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let quoted = sql.replace('\'', "'\\''");
        self.fleet.exec_ok(
            self.host,
            &format!("{} -At -d {db} -c '{quoted}'", self.psql()),
        )
    }

    /// Like [`Postgres::sql`], without panicking: (exit code, stdout+stderr).
    pub fn try_sql(&self, db: &str, sql: &str) -> (i32, String) {
        let quoted = sql.replace('\'', "'\\''");
        let out = self.fleet.exec(
            self.host,
            &format!("{} -At -d {db} -c '{quoted}' 2>&1", self.psql()),
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// `count(*)` of `table` in every tenant schema (`t…`) of `db`, by
    /// schema: one query, whatever the number of schemas.
    pub fn count_per_schema(&self, db: &str, table: &str, filter: &str) -> Vec<(String, i64)> {
        let sql = format!(
            "select n.nspname, coalesce((xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.{table} where {filter}', n.nspname), false, true, '')))[1]::text::bigint, -1) \
             from pg_namespace n where n.nspname like 't%' and exists (select 1 from pg_tables t where t.schemaname = n.nspname and t.tablename = '{table}') order by 1"
        );
        self.sql(db, &sql)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (s, c) = l.split_once('|').expect("schema|count");
                (s.to_owned(), c.parse().expect("a count"))
            })
            .collect()
    }
}
