//! Serving read tables: list by one of a table's indexes with keyset pagination, or get by id.
//!
//! Filters are equality on a prefix of one index's columns; what the index has beyond the
//! filter (its not-null columns) orders the page, then `id`. A filter no index serves is refused
//! instead of scanned. Columns are introspected from the database, so a table's migration is its
//! only definition.

use serde_json::{Map, Value};
use sqlx::{PgPool, Row};

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// SQL type as `format_type` prints it (`uuid`, `text[]`, `timestamp with time zone`).
    pub sql_type: String,
    pub nullable: bool,
}

impl Column {
    fn is_array(&self) -> bool {
        self.sql_type.ends_with("[]")
    }
    fn element_type(&self) -> &str {
        self.sql_type.trim_end_matches("[]")
    }
}

#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TableDef {
    pub table: String,
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
    pub hidden: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    BadParameter(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Restricts the rows a caller may see.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    /// Rows where one of these columns is (or, for arrays, contains) the caller.
    Columns {
        columns: Vec<String>,
        caller: String,
    },
    /// Rows matching SQL in which `{caller}` stands for the caller's id (text); the table is `t`.
    Where {
        sql: String,
        caller: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// (column, value): equality filters, column names in snake_case.
    pub filters: Vec<(String, String)>,
    pub index: Option<String>,
    pub limit: i64,
    pub cursor: Option<String>,
    pub order: Option<Order>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
    /// The index that served the query.
    pub index: String,
}

pub const MAX_LIMIT: i64 = 500;

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut up = false;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl TableDef {
    /// Reads the table's columns; `indexes` are the seed's (name, columns) with the primary key
    /// `id` added.
    pub async fn load(pool: &PgPool, table: &str, indexes: Vec<Index>, hidden: &[&str]) -> Result<Self, QueryError> {
        let rows = sqlx::query(
            "select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as sql_type, not a.attnotnull as nullable
             from pg_attribute a where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
             order by a.attnum",
        )
        .bind(table)
        .fetch_all(pool)
        .await?;
        let columns: Vec<Column> = rows
            .iter()
            .map(|r| {
                Ok(Column {
                    name: r.try_get("name")?,
                    sql_type: r.try_get("sql_type")?,
                    nullable: r.try_get("nullable")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        if columns.is_empty() {
            return Err(QueryError::Unsupported(format!("table {table} has no columns")));
        }
        let mut all = vec![Index { name: "by_id".into(), columns: vec!["id".into()] }];
        all.extend(indexes);
        Ok(Self {
            table: table.to_owned(),
            columns,
            indexes: all,
            hidden: hidden.iter().map(|h| (*h).to_owned()).collect(),
        })
    }

    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The index that serves equality on exactly `filters` (as a prefix), if any.
    fn choose(&self, filters: &[String], wanted: Option<&str>) -> Result<(&Index, usize), QueryError> {
        let mut set: Vec<&str> = filters.iter().map(String::as_str).collect();
        set.sort_unstable();
        // Among the indexes that serve the filter, the one with the most columns orders best.
        let mut candidates: Vec<&Index> = self.indexes.iter().collect();
        candidates.sort_by_key(|i| std::cmp::Reverse(i.columns.len()));
        for index in candidates {
            if wanted.is_some_and(|w| w != index.name) {
                continue;
            }
            if filters.len() > index.columns.len() {
                continue;
            }
            let mut prefix: Vec<&str> = index.columns[..filters.len()].iter().map(String::as_str).collect();
            prefix.sort_unstable();
            if prefix == set {
                return Ok((index, filters.len()));
            }
        }
        let names: Vec<String> = self
            .indexes
            .iter()
            .map(|i| format!("{}({})", i.name, i.columns.iter().map(|c| camel_case(c)).collect::<Vec<_>>().join(", ")))
            .collect();
        Err(QueryError::Unsupported(format!(
            "no index serves a filter on [{}]; filter on a leading part of one of: {}",
            filters.iter().map(|c| camel_case(c)).collect::<Vec<_>>().join(", "),
            names.join("; ")
        )))
    }

    fn row_out(&self, row: Value) -> Value {
        let Value::Object(map) = row else { return row };
        let mut out = Map::with_capacity(map.len());
        for (k, v) in map {
            if !self.hidden.contains(&k) {
                out.insert(camel_case(&k), v);
            }
        }
        Value::Object(out)
    }

    fn scope_sql(&self, scope: &Scope, binds: &mut Vec<String>) -> String {
        match scope {
            Scope::All => "true".into(),
            Scope::Columns { columns, caller } => {
                binds.push(caller.clone());
                let p = binds.len();
                let parts: Vec<String> = columns
                    .iter()
                    .filter_map(|c| self.column(c))
                    .map(|c| {
                        if c.is_array() {
                            format!("${p} = any(t.{}::text[])", quote_ident(&c.name))
                        } else {
                            format!("t.{}::text = ${p}", quote_ident(&c.name))
                        }
                    })
                    .collect();
                if parts.is_empty() {
                    "false".into()
                } else {
                    format!("({})", parts.join(" or "))
                }
            }
            Scope::Where { sql, caller } => {
                binds.push(caller.clone());
                format!("({})", sql.replace("{caller}", &format!("${}", binds.len())))
            }
        }
    }

    /// One page of rows.
    pub async fn list(&self, pool: &PgPool, query: &ListQuery, scope: &Scope) -> Result<Page, QueryError> {
        for (column, _) in &query.filters {
            if self.column(column).is_none() || self.hidden.contains(column) {
                return Err(QueryError::BadParameter(format!("unknown field `{}`", camel_case(column))));
            }
        }
        let filter_columns: Vec<String> = query.filters.iter().map(|f| f.0.clone()).collect();
        let (index, used) = self.choose(&filter_columns, query.index.as_deref())?;
        let mut sort: Vec<&Column> = index.columns[used..]
            .iter()
            .filter_map(|c| self.column(c))
            .take_while(|c| !c.nullable && !c.is_array())
            .collect();
        let id = self.column("id").ok_or_else(|| QueryError::Unsupported("table has no id".into()))?;
        if !sort.iter().any(|c| c.name == "id") {
            sort.push(id);
        }
        let order = query.order.unwrap_or(Order::Asc);
        let (cmp, dir) = match order {
            Order::Asc => (">", "asc"),
            Order::Desc => ("<", "desc"),
        };

        let mut binds: Vec<String> = Vec::new();
        let mut conditions: Vec<String> = Vec::new();
        for (column, value) in &query.filters {
            let c = self.column(column).expect("checked");
            binds.push(value.clone());
            let p = binds.len();
            conditions.push(if c.is_array() {
                format!("t.{} @> array[cast(${p} as {})]", quote_ident(&c.name), c.element_type())
            } else {
                format!("t.{} = cast(${p} as {})", quote_ident(&c.name), c.sql_type)
            });
        }
        if let Some(cursor) = &query.cursor {
            let values: Vec<Value> = hex::decode(cursor)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .filter(|v: &Vec<Value>| v.len() == sort.len())
                .ok_or_else(|| QueryError::BadParameter("the cursor is not one this query gave".into()))?;
            let mut lhs = Vec::new();
            let mut rhs = Vec::new();
            for (c, v) in sort.iter().zip(values) {
                binds.push(match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
                lhs.push(format!("t.{}", quote_ident(&c.name)));
                rhs.push(format!("cast(${} as {})", binds.len(), c.sql_type));
            }
            conditions.push(format!("({}) {cmp} ({})", lhs.join(", "), rhs.join(", ")));
        }
        conditions.push(self.scope_sql(scope, &mut binds));
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let order_by: Vec<String> = sort.iter().map(|c| format!("t.{} {dir}", quote_ident(&c.name))).collect();
        let sql = format!(
            "select to_jsonb(t) as row from {} t where {} order by {} limit {}",
            self.table,
            conditions.join(" and "),
            order_by.join(", "),
            limit + 1
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(pool).await.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
                QueryError::BadParameter(format!("a filter value does not fit its field: {}", db.message()))
            }
            _ => QueryError::Database(e),
        })?;
        let mut items: Vec<Value> = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(r.try_get::<Value, _>("row")?);
        }
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            let last = items.last().expect("non-empty");
            let key: Vec<Value> = sort.iter().map(|c| last[&c.name].clone()).collect();
            Some(hex::encode(serde_json::to_vec(&key).expect("json")))
        } else {
            None
        };
        Ok(Page { items: items.into_iter().map(|r| self.row_out(r)).collect(), next_cursor, index: index.name.clone() })
    }

    /// One row by id, if the scope lets the caller see it.
    pub async fn get(&self, pool: &PgPool, id: &str, scope: &Scope) -> Result<Option<Value>, QueryError> {
        let id_col = self.column("id").ok_or_else(|| QueryError::Unsupported("table has no id".into()))?;
        let mut binds = vec![id.to_owned()];
        let scope_sql = self.scope_sql(scope, &mut binds);
        let sql = format!(
            "select to_jsonb(t) as row from {} t where t.id = cast($1 as {}) and {scope_sql}",
            self.table, id_col.sql_type
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let row = q.fetch_optional(pool).await.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
                QueryError::BadParameter("the id does not fit this table".into())
            }
            _ => QueryError::Database(e),
        })?;
        Ok(row.map(|r| r.try_get::<Value, _>("row")).transpose()?.map(|r| self.row_out(r)))
    }
}
