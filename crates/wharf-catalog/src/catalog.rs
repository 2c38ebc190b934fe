//! The catalog interface every backend implements, and its value types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{error::DbError, item::Item};

/// Most hits one search page returns; the tool's schema says the same.
pub const MAX_LIMIT: u32 = 50;

/// The most columns a result can have: SQLite's default `SQLITE_MAX_COLUMN`
/// (PostgreSQL's limit, 1664, is lower).
pub(crate) const MAX_COLUMNS: usize = 2000;

/// Limits on SQL that comes from outside.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    pub timeout: std::time::Duration,
    pub max_rows: usize,
    pub max_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            timeout: std::time::Duration::from_secs(2),
            max_rows: 500,
            max_bytes: 256 * 1024,
        }
    }
}

/// Which SQL a catalog's SQL tools take: the model is told, so it writes the
/// right placeholders and functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDialect {
    /// SQLite: placeholders `?1, ?2`.
    Sqlite,
    /// PostgreSQL: placeholders `$1, $2`.
    Postgres,
}

impl SqlDialect {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// How the statement refers to its first two parameters.
    pub fn placeholders(self) -> &'static str {
        match self {
            Self::Sqlite => "?1, ?2",
            Self::Postgres => "$1, $2",
        }
    }
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub query: String,
    pub limit: u32,
    pub cursor: Option<String>,
    /// Every hit carries all of these tags.
    pub tags: Vec<String>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Hit {
    pub id: String,
    pub title: String,
    /// Text around the match, matched terms wrapped in `**`.
    pub snippet: String,
    #[schemars(length(max = crate::item::MAX_TAGS))]
    pub tags: Vec<String>,
    pub url: Option<String>,
    /// Relevance (BM25 on SQLite): higher is better; comparable within one search.
    pub score: f64,
}

/// One page of hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchPage {
    #[schemars(length(max = MAX_LIMIT))]
    pub hits: Vec<Hit>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Set when no item had every word and the hits match fewer, or match
    /// them loosely (a typo, the start of a word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How closely the hits of a search match its words: each backend tries the
/// strictest first and relaxes only when it finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// Every word, as written (stemmed: `fetching` finds `fetch`).
    Every,
    /// Every word, or a near form: within a typo or two, the start of the last
    /// word, a joined word split in two (`webgpu` as `web gpu`).
    Close,
    /// At least half the words (of three or more).
    Most,
    /// Any one word.
    Any,
}

impl Match {
    /// The stages to try for `n` words, strictest first.
    pub(crate) fn stages(n: usize) -> &'static [Match] {
        match n {
            0 | 1 => &[Match::Every, Match::Close],
            2 => &[Match::Every, Match::Close, Match::Any],
            _ => &[Match::Every, Match::Close, Match::Most, Match::Any],
        }
    }

    /// The stage in a cursor.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Match::Every => "e",
            Match::Close => "c",
            Match::Most => "m",
            Match::Any => "a",
        }
    }

    pub(crate) fn from_code(code: &str) -> Option<Match> {
        Some(match code {
            "e" => Match::Every,
            "c" => Match::Close,
            "m" => Match::Most,
            "a" => Match::Any,
            _ => return None,
        })
    }

    /// The stages to try: the cursor's alone when a later page carries one
    /// (a backend without `Most` reads it as `Any`), else every stage for `n`
    /// words, strictest first.
    pub(crate) fn plan(n: usize, from_cursor: Option<Match>, has_most: bool) -> Vec<Match> {
        match from_cursor {
            Some(Match::Most) if !has_most => vec![Match::Any],
            Some(stage) => vec![stage],
            None => Match::stages(n)
                .iter()
                .copied()
                .filter(|s| has_most || *s != Match::Most)
                .collect(),
        }
    }

    /// A page at the first of `stages` that finds anything, and that stage;
    /// `page(stage, limit, offset)` searches at one stage. A later page whose
    /// cursor names no stage (one made before stages) probes for it with one
    /// hit at offset 0, so it matches as its first page did.
    pub(crate) fn first_answering<T, E>(
        stages: &[Match],
        offset: usize,
        limit: usize,
        mut page: impl FnMut(Match, usize, usize) -> Result<Vec<T>, E>,
    ) -> Result<(Vec<T>, Match), E> {
        for (n, &stage) in stages.iter().enumerate() {
            let last = n + 1 == stages.len();
            if offset > 0 && !last && page(stage, 1, 0)?.is_empty() {
                continue;
            }
            let hits = page(stage, limit, offset)?;
            if hits.is_empty() && offset == 0 && !last {
                continue;
            }
            return Ok((hits, stage));
        }
        Ok((Vec::new(), Match::Every))
    }

    /// The words of a query for a text-search engine at this stage: each as
    /// `word` writes it, joined by `and` (every word) or `or` (most, any); once
    /// matching is loose, the last (3+ letters) as `start` writes a word start.
    pub(crate) fn expression(
        self,
        words: &[String],
        word: impl Fn(&str) -> String,
        start: impl Fn(&str) -> String,
        (and, or): (&str, &str),
    ) -> String {
        let n = words.len();
        let parts: Vec<String> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if self != Match::Every && i + 1 == n && w.chars().count() >= 3 {
                    start(w)
                } else {
                    word(w)
                }
            })
            .collect();
        match self {
            Match::Every | Match::Close => parts.join(and),
            Match::Most | Match::Any => parts.join(or),
        }
    }

    /// What the result says about its hits, for the model and the person.
    pub(crate) fn note(self) -> Option<String> {
        match self {
            Match::Every => None,
            Match::Close => Some(
                "No item has every word as written; showing close matches (a typo, the start of a word).".into(),
            ),
            Match::Most | Match::Any => {
                Some("No item has every word; showing items with most of them.".into())
            }
        }
    }
}

/// Most words of a query searched for.
pub(crate) const MAX_QUERY_WORDS: usize = 16;

/// Words of a question that say nothing about what is wanted.
const QUESTION_WORDS: &[&str] = &[
    "a", "about", "an", "and", "any", "are", "at", "be", "by", "can", "do", "does", "find", "for",
    "from", "how", "i", "in", "into", "is", "it", "item", "items", "me", "my", "need", "of", "on",
    "or", "please", "show", "some", "that", "the", "this", "to", "use", "using", "want", "what",
    "when", "where", "which", "why", "with", "you",
];

/// The words of a query worth searching for: runs of letters and digits, at
/// most [`MAX_QUERY_WORDS`], without the words of a question ("how do I", "the")
/// unless nothing else is left.
pub(crate) fn query_words(query: &str) -> Vec<String> {
    let all: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let kept: Vec<String> = all
        .iter()
        .filter(|w| !QUESTION_WORDS.contains(&w.to_lowercase().as_str()))
        .cloned()
        .collect();
    let mut words = if kept.is_empty() { all } else { kept };
    words.truncate(MAX_QUERY_WORDS);
    words
}

/// How an import went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Items deleted because the import replaced the catalog.
    pub removed: usize,
}

/// The result of a read-only SQL query, capped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueryResult {
    #[schemars(length(max = MAX_COLUMNS))]
    pub columns: Vec<String>,
    /// At most `SqlLimits::max_rows` (a setting, so not in this schema).
    #[schemars(schema_with = "sql_rows")]
    pub rows: Vec<Vec<Value>>,
    /// Set when rows were left out because of the row or size cap.
    pub truncated: Option<String>,
}

/// The rows of an untrusted statement's result, gathered under the row and
/// byte caps by the one rule every backend follows: rows in order until a cap
/// is met, then a note in `truncated` saying which cap and what to do.
pub(crate) struct CappedRows {
    limits: SqlLimits,
    rows: Vec<Vec<Value>>,
    bytes: usize,
    truncated: Option<String>,
}

impl CappedRows {
    pub(crate) fn new(limits: SqlLimits) -> Self {
        Self {
            limits,
            rows: Vec::new(),
            bytes: 0,
            truncated: None,
        }
    }

    /// Whether another row may still be taken (no cap met yet).
    pub(crate) fn wants_more(&self) -> bool {
        self.truncated.is_none()
    }

    /// The next row, unless a cap is met with it.
    pub(crate) fn push(&mut self, values: Vec<Value>) {
        if self.row_cap_met() {
            return;
        }
        self.bytes += serde_json::to_string(&values).map_or(0, |s| s.len());
        if self.bytes > self.limits.max_bytes {
            self.truncated = Some(format!(
                "the result was cut at {} rows to stay under {} bytes; select fewer columns or rows",
                self.rows.len(),
                self.limits.max_bytes
            ));
            return;
        }
        self.rows.push(values);
    }

    /// The next row is `size` bytes, over the byte cap: measured where it was
    /// made (the database), never brought here.
    pub(crate) fn too_large(&mut self, size: i64) {
        if self.row_cap_met() {
            return;
        }
        self.truncated = Some(format!(
            "the result was cut at {} rows: the next row is {size} bytes, over the limit of {} bytes (catalog.sql_max_bytes); select fewer or shorter columns",
            self.rows.len(),
            self.limits.max_bytes
        ));
    }

    fn row_cap_met(&mut self) -> bool {
        if self.rows.len() < self.limits.max_rows {
            return false;
        }
        self.truncated = Some(format!(
            "only the first {} rows are returned; add LIMIT/OFFSET or narrow the query",
            self.limits.max_rows
        ));
        true
    }

    pub(crate) fn finish(self, columns: Vec<String>) -> QueryResult {
        QueryResult {
            columns,
            rows: self.rows,
            truncated: self.truncated,
        }
    }
}

/// The schema of the rows: each a list of column values. A value is a scalar
/// on both backends (a JSON or array column comes as its JSON text, as SQLite
/// stores it), spelled out rather than "anything" so strict clients read it.
fn sql_rows(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "description": "At most `SqlLimits::max_rows` rows (a setting, so not in this schema).",
        "items": {
            "type": "array",
            "maxItems": MAX_COLUMNS,
            "items": {"anyOf": [
                {"type": "string"},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"}
            ]}
        }
    })
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub nullable: bool,
    pub primary_key: bool,
}

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The caller's input cannot be used (bad query, cursor, SQL); the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the query ran longer than {0} ms and was stopped")]
    Timeout(u64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for CatalogError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(DbError::Sqlite(e))
    }
}

/// A search-and-retrieval catalog.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync + 'static {
    async fn search(&self, query: SearchQuery) -> Result<SearchPage, CatalogError>;
    async fn get(&self, id: &str) -> Result<Option<Item>, CatalogError>;
    /// Insert or update by id, all or nothing.
    async fn upsert(&self, items: Vec<Item>) -> Result<ImportSummary, CatalogError>;
    /// Make the catalog exactly `items`: upsert them and delete every other
    /// item, all or nothing.
    async fn replace(&self, items: Vec<Item>) -> Result<ImportSummary, CatalogError>;
    /// Every item, ordered by id.
    async fn export(&self) -> Result<Vec<Item>, CatalogError>;
    async fn count(&self) -> Result<u64, CatalogError>;
    /// Tables a read-only SQL query may read.
    async fn list_tables(&self) -> Result<Vec<String>, CatalogError>;
    async fn describe_table(&self, table: &str) -> Result<Vec<Column>, CatalogError>;
    /// The SQL [`Catalog::query`] and [`Catalog::execute`] take.
    fn sql_dialect(&self) -> SqlDialect;
    /// Run one read-only statement with bound parameters, capped and timed.
    async fn query(&self, sql: &str, params: Vec<Value>) -> Result<QueryResult, CatalogError>;
    /// Run one writing statement with bound parameters in its own transaction
    /// (for tools the operator declared as writing); rows changed.
    async fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, CatalogError>;
    /// Bring what searches use up to date with the items now (SQLite's search
    /// index), instead of in the background at the next search.
    async fn prepare_search(&self) -> Result<(), CatalogError> {
        Ok(())
    }
}

/// Load `items` (the embedded sample) into an empty catalog; returns how many.
pub async fn seed_if_empty<C: Catalog + ?Sized>(
    catalog: &C,
    items: impl FnOnce() -> Result<Vec<Item>, wharf_core::Problem>,
) -> Result<Option<usize>, CatalogError> {
    if catalog.count().await? > 0 {
        return Ok(None);
    }
    let items = items().map_err(|p| CatalogError::Invalid(p.to_string()))?;
    let n = items.len();
    catalog.upsert(items).await?;
    Ok(Some(n))
}

/// Tables that hold Wharf's own state, on either backend: never listed to a
/// model, and user SQL may not read them (a session id is as good as a
/// credential for the session; the audit trail says who called what; the
/// vault holds sealed tokens; the authorization server's records are grants).
pub(crate) const INTERNAL_TABLES: &[&str] = &[
    "mcp_sessions",
    "gateway_audit",
    "gateway_tokens",
    "oauth_records",
    "wharf_schema",
];
