//! System-table migrations of Ferrobase.
//!
//! Each migration is a named list of schema statements built with sea-query. They create the
//! tables PocketBase keeps beside the collection tables (`_migrations`, `_params`,
//! `_collections`) with PocketBase's exact layout, so a PocketBase `data.db` and a Ferrobase one
//! are interchangeable. Statements use `IF NOT EXISTS`: opening a database PocketBase created
//! applies them as no-ops and records them.
//!
//! The runner lives in the app (`ferrobase::db::migrate`), which executes these on its single
//! writer connection, one transaction per migration, and records each in `_migrations`.

use sea_query::{Alias, ColumnDef, Expr, Index, SqliteQueryBuilder, Table};

/// A system migration: a unique, ordered name and the statements that apply it.
pub struct Migration {
    pub name: &'static str,
    pub up: fn() -> Vec<String>,
}

const NOW_DEFAULT: &str = "(strftime('%Y-%m-%d %H:%M:%fZ'))";
const ID_DEFAULT: &str = "('r'||lower(hex(randomblob(7))))";

fn id_col() -> ColumnDef {
    ColumnDef::new(Alias::new("id"))
        .custom(Alias::new("TEXT"))
        .primary_key()
        .default(Expr::cust(ID_DEFAULT))
        .not_null()
        .to_owned()
}

fn time_col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .custom(Alias::new("TEXT"))
        .default(Expr::cust(NOW_DEFAULT))
        .not_null()
        .to_owned()
}

fn rule_col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .custom(Alias::new("TEXT"))
        .default(Expr::cust("NULL"))
        .to_owned()
}

fn init() -> Vec<String> {
    let params = Table::create()
        .table(Alias::new("_params"))
        .if_not_exists()
        .col(id_col())
        .col(
            ColumnDef::new(Alias::new("value"))
                .custom(Alias::new("JSON"))
                .default(Expr::cust("NULL")),
        )
        .col(time_col("created"))
        .col(time_col("updated"))
        .to_string(SqliteQueryBuilder);
    let collections = Table::create()
        .table(Alias::new("_collections"))
        .if_not_exists()
        .col(id_col())
        .col(
            ColumnDef::new(Alias::new("system"))
                .custom(Alias::new("BOOLEAN"))
                .default(Expr::cust("FALSE"))
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("type"))
                .custom(Alias::new("TEXT"))
                .default("base")
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("name"))
                .custom(Alias::new("TEXT"))
                .unique_key()
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("fields"))
                .custom(Alias::new("JSON"))
                .default("[]")
                .not_null(),
        )
        .col(
            ColumnDef::new(Alias::new("indexes"))
                .custom(Alias::new("JSON"))
                .default("[]")
                .not_null(),
        )
        .col(rule_col("listRule"))
        .col(rule_col("viewRule"))
        .col(rule_col("createRule"))
        .col(rule_col("updateRule"))
        .col(rule_col("deleteRule"))
        .col(
            ColumnDef::new(Alias::new("options"))
                .custom(Alias::new("JSON"))
                .default("{}")
                .not_null(),
        )
        .col(time_col("created"))
        .col(time_col("updated"))
        .to_string(SqliteQueryBuilder);
    let type_index = Index::create()
        .if_not_exists()
        .name("idx__collections_type")
        .table(Alias::new("_collections"))
        .col(Alias::new("type"))
        .to_string(SqliteQueryBuilder);
    vec![params, collections, type_index]
}

/// The name of the table recording applied migrations, and its statement.
pub fn migrations_table() -> String {
    Table::create()
        .table(Alias::new("_migrations"))
        .if_not_exists()
        .col(
            ColumnDef::new(Alias::new("file"))
                .custom(Alias::new("VARCHAR(255)"))
                .primary_key()
                .not_null(),
        )
        .col(ColumnDef::new(Alias::new("applied")).integer().not_null())
        .to_string(SqliteQueryBuilder)
}

/// Every system migration, in the order they apply.
pub fn all() -> Vec<Migration> {
    vec![Migration {
        name: "1700000000_ferrobase_init",
        up: init,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_ordered() {
        let names: Vec<_> = all().iter().map(|m| m.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn init_statements_are_idempotent_sql() {
        for s in init() {
            assert!(s.contains("IF NOT EXISTS"), "{s}");
        }
    }
}
