//! The catalog's schema as lines a person can diff, read from SQLite's
//! pragmas and PostgreSQL's system catalogs, for comparing the two
//! migration folders.

use std::collections::BTreeSet;

use sqlx::Connection;

/// The schema as lines a person can diff: every column with its kind,
/// nullability and default; primary keys, unique columns, foreign keys and
/// named indexes. SQLite has no boolean, so a PostgreSQL boolean reads as
/// an integer (0 and 1 are what SQLite stores).
pub async fn sqlite_schema(path: &std::path::Path) -> BTreeSet<String> {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut lines = BTreeSet::new();
    for (t,) in tables {
        let cols: Vec<(String, String, bool, Option<String>, i64)> = sqlx::query_as(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info($1)",
        )
        .bind(&t)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for (name, ty, not_null, default, pk) in cols {
            let kind = match ty.to_ascii_uppercase().as_str() {
                "INTEGER" => "integer",
                "TEXT" => "text",
                "BLOB" => "bytes",
                "REAL" => "real",
                other => panic!("{t}.{name}: a type the comparison does not know: {other}"),
            };
            lines.insert(column_line(&t, &name, kind, not_null || pk > 0, default));
            if pk > 0 {
                lines.insert(format!("primary key {t}({name})"));
            }
        }
        let indexes: Vec<(String, bool, String)> =
            sqlx::query_as("SELECT name, \"unique\", origin FROM pragma_index_list($1)")
                .bind(&t)
                .fetch_all(&mut c)
                .await
                .unwrap();
        for (index, unique, origin) in indexes {
            let cols: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            let cols = cols
                .into_iter()
                .map(|(c,)| c)
                .collect::<Vec<_>>()
                .join(", ");
            match origin.as_str() {
                "u" => lines.insert(format!("unique {t}({cols})")),
                "pk" => continue,
                _ => lines.insert(format!(
                    "index {index} on {t}({cols}){}",
                    if unique { " unique" } else { "" }
                )),
            };
        }
        let fks: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list($1)",
        )
        .bind(&t)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for (from, table, to, on_delete) in fks {
            lines.insert(format!(
                "foreign key {t}.{from} -> {table}.{to} on delete {}",
                on_delete.to_lowercase()
            ));
        }
    }
    lines
}

pub async fn postgres_schema(url: &str) -> BTreeSet<String> {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let mut lines = BTreeSet::new();
    let cols: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name != '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for (t, name, ty, nullable, default) in cols {
        let kind = match ty.as_str() {
            "bigint" | "boolean" => "integer",
            "text" => "text",
            "bytea" => "bytes",
            "double precision" => "real",
            other => panic!("{t}.{name}: a type SQLite has no twin of: {other}"),
        };
        lines.insert(column_line(&t, &name, kind, nullable == "NO", default));
    }
    let indexes: Vec<(String, String, bool, bool, Vec<String>)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, x.indisunique, x.indisprimary,
                ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
                      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o)
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = 'public' AND t.relname != '_sqlx_migrations'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let constraint_indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT conindid::regclass::text FROM pg_constraint WHERE contype IN ('p', 'u')",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let constraint_indexes: BTreeSet<String> =
        constraint_indexes.into_iter().map(|(i,)| i).collect();
    for (t, index, unique, primary, cols) in indexes {
        let cols = cols.join(", ");
        if primary {
            lines.insert(format!("primary key {t}({cols})"));
        } else if constraint_indexes.contains(&index) {
            lines.insert(format!("unique {t}({cols})"));
        } else {
            lines.insert(format!(
                "index {index} on {t}({cols}){}",
                if unique { " unique" } else { "" }
            ));
        }
    }
    let fks: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT t.relname::text, a.attname::text, f.relname::text, fa.attname::text, c.confdeltype::text
         FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         JOIN pg_class f ON f.oid = c.confrelid
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
         WHERE c.contype = 'f'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    for (t, from, table, to, on_delete) in fks {
        let on_delete = match on_delete.as_str() {
            "c" => "cascade",
            "a" => "no action",
            "n" => "set null",
            other => panic!("on delete {other}"),
        };
        lines.insert(format!(
            "foreign key {t}.{from} -> {table}.{to} on delete {on_delete}"
        ));
    }
    lines
}

fn column_line(t: &str, name: &str, kind: &str, not_null: bool, default: Option<String>) -> String {
    // PostgreSQL writes a text default with its type and a boolean as a word.
    let default = default.map(|d| match d.trim_end_matches("::text") {
        "false" => "0".to_string(),
        "true" => "1".to_string(),
        d => d.to_string(),
    });
    format!(
        "{t}.{name} {kind}{}{}",
        if not_null { " not null" } else { "" },
        default.map(|d| format!(" default {d}")).unwrap_or_default()
    )
}
