//! The schema's versions. A new database gets `schema.sql`, the whole current schema; an
//! older one is brought up to it step by step. The version is SQLite's `user_version`.

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use super::DbError;

/// The whole current schema.
const SCHEMA: &str = include_str!("../../schema.sql");

/// Every step from an empty database; step N leaves the database at version N.
const STEPS: &[M<'static>] = &[
    M::up(include_str!("../../migrations/0001_initial.sql")),
    // Rebuilds `messages`, which other tables reference: checked once it is done.
    M::up(include_str!("../../migrations/0002_jobs.sql")).foreign_key_check(),
    // Rebuilds `jobs` and `messages`.
    M::up(include_str!(
        "../../migrations/0003_events_codes_broadcasts.sql"
    ))
    .foreign_key_check(),
    M::up(include_str!(
        "../../migrations/0004_jobs_moment_and_request.sql"
    )),
    M::up(include_str!("../../migrations/0005_inprocess_artists.sql")),
    // Rebuilds `jobs` and `messages`.
    M::up(include_str!("../../migrations/0006_inprocess_moments.sql")).foreign_key_check(),
    // Rebuilds `jobs`.
    M::up(include_str!("../../migrations/0007_broadcast_batches.sql")).foreign_key_check(),
];

/// The schema version this momentline writes.
pub const VERSION: i64 = STEPS.len() as i64;

/// Brings the database's schema to `VERSION`, refusing one from a newer momentline.
pub fn apply(conn: &mut Connection) -> Result<(), DbError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(DbError::NewerSchema {
            found,
            known: VERSION,
        });
    }
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if found == 0 && tables == 0 {
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", VERSION)?;
        return Ok(tx.commit()?);
    }
    if found == VERSION {
        return Ok(());
    }
    tracing::info!(from = found, to = VERSION, "upgrading the database schema");
    // A step may rebuild a table others reference, which SQLite allows only with foreign
    // keys off (they cannot be switched inside the step's transaction); each such step
    // checks them itself before it commits.
    conn.pragma_update(None, "foreign_keys", false)?;
    let upgraded = Migrations::from_slice(STEPS).to_latest(conn);
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(upgraded?)
}

/// PostgreSQL's steps, each with the version it leaves the database at. A new PostgreSQL
/// database starts at version 3 (momentline first ran on PostgreSQL there).
const POSTGRES_STEPS: &[(i64, &str)] = &[
    (3, include_str!("../../migrations/postgres/0003_schema.sql")),
    (
        4,
        include_str!("../../migrations/postgres/0004_jobs_moment_and_request.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_inprocess_artists.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_inprocess_moments.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_broadcast_batches.sql"),
    ),
];

/// Any number, the same in every instance: the lock two instances starting at once take, so
/// only one of them brings the schema up to date.
const MIGRATION_LOCK: i64 = 0x6d6f_6d65_6e74;

/// Brings a PostgreSQL database's schema to `VERSION`, refusing one from a newer momentline.
/// Instances starting together take turns; the version is kept in `momentline_schema`.
pub fn apply_postgres(client: &mut postgres::Client) -> Result<(), DbError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS momentline_schema (version BIGINT NOT NULL)")?;
    let found: Option<i64> = tx
        .query_one("SELECT max(version) FROM momentline_schema", &[])?
        .get(0);
    let found = found.unwrap_or(0);
    if found > VERSION {
        return Err(DbError::NewerSchema {
            found,
            known: VERSION,
        });
    }
    for (version, step) in POSTGRES_STEPS.iter().filter(|(v, _)| *v > found) {
        tracing::info!(
            from = found,
            to = version,
            "bringing the PostgreSQL schema up to date"
        );
        tx.batch_execute(step)?;
        tx.execute(
            "INSERT INTO momentline_schema (version) VALUES ($1)",
            &[version],
        )?;
    }
    Ok(tx.commit()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_steps_end_at_the_current_version() {
        assert_eq!(POSTGRES_STEPS.last().map(|s| s.0), Some(VERSION));
    }

    use super::*;

    /// Every table's columns and every index's columns, uniqueness and partial flag.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut shape = Vec::new();
        let mut tables = conn
            .prepare(
                "SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .expect("schema");
        let names: Vec<(String, String)> = tables
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("names")
            .collect::<Result<_, _>>()
            .expect("rows");
        for (name, kind) in names {
            let pragma = if kind == "table" {
                "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_xinfo(?1)"
            } else {
                "SELECT coalesce(name, ''), desc, key, '', '' FROM pragma_index_xinfo(?1) WHERE key"
            };
            let mut stmt = conn.prepare(pragma).expect("pragma");
            let columns: Vec<String> = stmt
                .query_map([&name], |r| {
                    Ok(format!(
                        "{}:{}:{}:{:?}:{}",
                        r.get::<_, String>(0)?,
                        r.get::<_, rusqlite::types::Value>(1)
                            .map(|v| format!("{v:?}"))?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, rusqlite::types::Value>(3)?,
                        r.get::<_, rusqlite::types::Value>(4)
                            .map(|v| format!("{v:?}"))?,
                    ))
                })
                .expect("columns")
                .collect::<Result<_, _>>()
                .expect("rows");
            shape.push(format!("{kind} {name}: {}", columns.join(", ")));
        }
        let mut stmt = conn
            .prepare(
                "SELECT m.name || '.' || l.name || ' unique=' || l.\"unique\" || ' partial=' || l.partial
                 FROM sqlite_master m, pragma_index_list(m.name) l WHERE m.type = 'table'
                 ORDER BY 1",
            )
            .expect("indexes");
        shape.extend(
            stmt.query_map([], |r| r.get::<_, String>(0))
                .expect("rows")
                .collect::<Result<Vec<_>, _>>()
                .expect("rows"),
        );
        shape
    }

    /// A database made from `schema.sql`, and one made at version 1 and brought up to date.
    fn fresh_and_upgraded() -> (Connection, Connection) {
        let mut fresh = Connection::open_in_memory().expect("db");
        apply(&mut fresh).expect("fresh");
        let mut upgraded = Connection::open_in_memory().expect("db");
        upgraded
            .execute_batch(include_str!("../../migrations/0001_initial.sql"))
            .expect("version 1");
        upgraded
            .pragma_update(None, "user_version", 1)
            .expect("version");
        apply(&mut upgraded).expect("upgrade");
        (fresh, upgraded)
    }

    #[test]
    fn schema_sql_and_the_steps_from_version_1_build_the_same_schema() {
        let (fresh, upgraded) = fresh_and_upgraded();
        let version = |c: &Connection| -> i64 {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
                .expect("version")
        };
        assert_eq!(version(&fresh), VERSION);
        assert_eq!(version(&upgraded), VERSION);
        let (a, b) = (shape(&fresh), shape(&upgraded));
        assert!(a.iter().any(|line| line.starts_with("table jobs: id:")));
        assert_eq!(a, b);
    }

    /// Every table's and index's SQL without comments, quotes, spacing or `IF NOT EXISTS`:
    /// what the pragmas above do not show (CHECK constraints, partial indexes' WHERE).
    fn definitions(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .expect("schema");
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("rows")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        rows.iter()
            .map(|sql| {
                let code: String = sql
                    .lines()
                    .map(|l| l.split("--").next().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" ");
                code.replace("IF NOT EXISTS ", "")
                    .replace('"', "")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .replace("( ", "(")
                    .replace(" )", ")")
                    .replace(" ,", ",")
            })
            .collect()
    }

    #[test]
    fn schema_sql_and_the_steps_define_the_same_constraints_and_partial_indexes() {
        let (fresh, upgraded) = fresh_and_upgraded();
        assert_eq!(definitions(&fresh), definitions(&upgraded));
    }

    /// The words a table's CHECK on `column` allows, in a fresh and an upgraded database.
    fn allowed(table: &str, column: &str) -> Vec<Vec<String>> {
        let (fresh, upgraded) = fresh_and_upgraded();
        [&fresh, &upgraded]
            .iter()
            .map(|conn| {
                let sql = definitions(conn)
                    .into_iter()
                    .find(|sql| sql.starts_with(&format!("CREATE TABLE {table} ")))
                    .expect("the table");
                let listed = sql
                    .split_once(&format!("{column} IN ("))
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map(|(words, _)| words)
                    .expect("the CHECK");
                let mut words: Vec<String> = listed
                    .split(',')
                    .map(|k| k.trim().trim_matches('\'').to_owned())
                    .collect();
                words.sort_unstable();
                words
            })
            .collect()
    }

    fn sorted<T: crate::domain::TextEnum + 'static>(all: &[(T, &'static str)]) -> Vec<String> {
        let mut words: Vec<String> = all.iter().map(|(_, w)| (*w).to_owned()).collect();
        words.sort_unstable();
        words
    }

    #[test]
    fn the_jobs_check_allows_exactly_the_kinds_momentline_runs() {
        use crate::domain::{JobKind, TextEnum};
        for allowed in allowed("jobs", "kind") {
            assert_eq!(allowed, sorted(JobKind::ALL));
        }
    }

    #[test]
    fn the_messages_check_allows_exactly_the_replies_momentline_sends() {
        use crate::domain::number_state::ReplyKind;
        use crate::domain::TextEnum;
        for allowed in allowed("messages", "purpose") {
            assert_eq!(allowed, sorted(ReplyKind::ALL));
        }
    }

    #[test]
    fn applying_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().expect("db");
        apply(&mut conn).expect("first");
        let before = shape(&conn);
        apply(&mut conn).expect("second");
        assert_eq!(shape(&conn), before);
    }

    #[test]
    fn a_database_from_a_newer_momentline_is_refused() {
        let mut conn = Connection::open_in_memory().expect("db");
        apply(&mut conn).expect("apply");
        conn.pragma_update(None, "user_version", 99).expect("bump");
        assert!(matches!(
            apply(&mut conn),
            Err(DbError::NewerSchema {
                found: 99,
                known: VERSION
            })
        ));
    }
}
