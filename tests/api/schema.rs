//! The two engines' schemas stay one: every table, column and named index SQLite has,
//! PostgreSQL has (and no more), so a step added to one engine and not the other fails here.
//! Needs a PostgreSQL server, as `instances` does.

use std::collections::BTreeSet;

use momentline::store::{Database, Store};

use crate::helpers::*;
use crate::instances::postgres_server_for;

#[tokio::test]
async fn postgres_has_exactly_sqlites_tables_columns_and_indexes() {
    if !postgres_server_for("schema") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Store::open(&dir.path().join("schema.db"), Default::default()).expect("SQLite");
    let lite = sqlite
        .read(|c| {
            let columns = c.query_map(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
                params![],
                |r| {
                    Ok(format!(
                        "{}.{}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?
                    ))
                },
            )?;
            let indexes = c.query_map(
                "SELECT name FROM sqlite_master
                 WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'",
                params![],
                |r| r.get::<_, String>(0),
            )?;
            Ok((columns, indexes))
        })
        .await
        .expect("SQLite's schema");

    let database = PgDatabase::create();
    // Opening it applies PostgreSQL's steps.
    drop(
        Store::open_database(
            &Database::Postgres(database.url.clone()),
            Default::default(),
        )
        .expect("PostgreSQL"),
    );
    let url = database.url.clone();
    let (columns, indexes) = on_server(&url, |c| {
        let columns = c
            .query(
                "SELECT table_name || '.' || column_name FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name <> 'momentline_schema'",
                &[],
            )?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>();
        let indexes = c
            .query(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'",
                &[],
            )?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>();
        Ok((columns, indexes))
    })
    .expect("PostgreSQL's schema");

    let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    assert_eq!(set(columns), set(lite.0), "the same tables and columns");
    let pg_indexes = set(indexes);
    let missing: Vec<&String> = lite.1.iter().filter(|i| !pg_indexes.contains(*i)).collect();
    assert!(
        missing.is_empty(),
        "indexes SQLite has and PostgreSQL lacks: {missing:?}"
    );
}
