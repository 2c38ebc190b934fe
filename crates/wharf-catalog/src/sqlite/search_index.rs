//! A search index next to the SQLite file (tantivy): what `search_items` uses
//! on SQLite when it is up to date.
//!
//! SQLite's FTS5 ranks every match of a query before it can return the best
//! ten; a word that one item in four contains costs a third of a second on a
//! million items. tantivy keeps the ranking in its postings and answers the
//! same query in a millisecond or two. The index is a cache of the `items`
//! table: it records the catalog generation it was built from (a counter that
//! triggers move on every change to `items`, whoever makes it), and while the
//! two differ `search_items` uses FTS5 and the index is rebuilt in the
//! background. It is rebuilt whole: the catalog changes by imports, and a
//! rebuild of a million items takes seconds (docs/design/catalog.md).

// Rebuilds run on blocking threads, outside tokio's clock: the wall clock.
#![allow(clippy::disallowed_types)]

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use rusqlite::Connection;
use tantivy::{
    DocAddress, Index, IndexReader, ReloadPolicy, TantivyDocument, Term,
    collector::TopDocs,
    directory::MmapDirectory,
    query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery},
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
    },
    snippet::{Snippet, SnippetGenerator},
    tokenizer::{AsciiFoldingFilter, Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer},
};

/// Relative weight of a match in the title, body and tags (as FTS5's BM25 weights).
const TITLE_BOOST: f32 = 10.0;
const TAGS_BOOST: f32 = 3.0;

/// Memory the indexer may use while rebuilding.
const WRITER_MEMORY: usize = 50_000_000;

/// Words, split and normalised as FTS5's `porter unicode61` does (lowercase,
/// diacritics folded, English stemming).
const ANALYZER: &str = "wharf_english";

/// Wait after a failed rebuild before a search starts another.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The catalog generation of an index that was never built.
const NEVER: i64 = -1;

#[derive(Clone, Copy)]
struct Fields {
    rowid: Field,
    title: Field,
    body: Field,
    tags: Field,
    /// Each tag whole, for the tags filter.
    tag: Field,
}

pub(crate) struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The catalog generation the reader's view was built from.
    generation: AtomicI64,
    building: AtomicBool,
    /// When the last rebuild failed (another process holding the index, a
    /// full disk): background rebuilds wait [`RETRY_AFTER`] before the next.
    failed_at: Mutex<Option<Instant>>,
    /// Held while the reader's view and `generation` are brought up to date.
    refreshing: Mutex<()>,
    dir: PathBuf,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .field("generation", &self.generation())
            .finish()
    }
}

/// A hit: the item's rowid and its score.
pub(crate) type Found = (i64, f32);

/// Where the index of the SQLite file at `db` lives.
pub(crate) fn dir_for(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".search");
    db.with_file_name(name)
}

/// Why the search index could not be opened, built or read.
#[derive(Debug, thiserror::Error)]
#[error("search index {}: {cause}", dir.display())]
pub struct SearchIndexError {
    dir: PathBuf,
    cause: IndexCause,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexCause {
    #[error("cannot create the directory: {0}")]
    Create(#[from] std::io::Error),
    #[error("{0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("{0} (delete the directory to rebuild it)")]
    Unreadable(tantivy::TantivyError),
    #[error("{0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("reading the items: {0}")]
    Items(#[from] rusqlite::Error),
}

fn failed(dir: &Path, cause: impl Into<IndexCause>) -> SearchIndexError {
    SearchIndexError {
        dir: dir.to_owned(),
        cause: cause.into(),
    }
}

impl SearchIndex {
    /// Open the index in `dir`, or create an empty one (stale until built).
    pub(crate) fn open(dir: &Path) -> Result<Self, SearchIndexError> {
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
        let mut builder = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            rowid: builder.add_i64_field("rowid", FAST | INDEXED),
            title: builder.add_text_field("title", text.clone()),
            body: builder.add_text_field("body", text.clone()),
            tags: builder.add_text_field("tags", text),
            tag: builder.add_text_field("tag", STRING),
        };
        let schema = builder.build();
        let directory = MmapDirectory::open(dir).map_err(|e| failed(dir, e))?;
        let index = Index::open_or_create(directory, schema)
            .map_err(|e| failed(dir, IndexCause::Unreadable(e)))?;
        index.tokenizers().register(
            ANALYZER,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .filter(AsciiFoldingFilter)
                .filter(Stemmer::new(Language::English))
                .build(),
        );
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e: tantivy::TantivyError| failed(dir, e))?;
        let this = Self {
            index,
            reader,
            fields,
            generation: AtomicI64::new(NEVER),
            building: AtomicBool::new(false),
            failed_at: Mutex::new(None),
            refreshing: Mutex::new(()),
            dir: dir.to_owned(),
        };
        this.refresh();
        Ok(this)
    }

    /// The catalog generation searches see.
    pub(crate) fn generation(&self) -> i64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Catch up with what is on disk (another process, or a rebuild here, may
    /// have committed a newer index).
    pub(crate) fn refresh(&self) {
        let _guard = wharf_core::sync::lock(&self.refreshing);
        let generation = self
            .index
            .load_metas()
            .ok()
            .and_then(|m| m.payload)
            .and_then(|p| p.parse().ok())
            .unwrap_or(NEVER);
        if generation != self.generation() && self.reader.reload().is_ok() {
            self.generation.store(generation, Ordering::SeqCst);
        }
    }

    /// Did a rebuild fail less than [`RETRY_AFTER`] ago?
    pub(crate) fn failed_recently(&self) -> bool {
        wharf_core::sync::lock(&self.failed_at).is_some_and(|at| at.elapsed() < RETRY_AFTER)
    }

    /// Claim the right to rebuild; `false` when a rebuild is already running here.
    pub(crate) fn start_building(&self) -> bool {
        !self.building.swap(true, Ordering::SeqCst)
    }

    /// Rebuild from the `items` table, as one consistent read, and record the
    /// generation read with them. Call after [`SearchIndex::start_building`].
    pub(crate) fn rebuild(&self, conn: &mut Connection) -> Result<i64, SearchIndexError> {
        let outcome = self.rebuild_inner(conn);
        *wharf_core::sync::lock(&self.failed_at) = outcome.is_err().then(Instant::now);
        self.building.store(false, Ordering::SeqCst);
        self.refresh();
        outcome
    }

    fn rebuild_inner(&self, conn: &mut Connection) -> Result<i64, SearchIndexError> {
        // Another process holding the writer is rebuilding the same index.
        let mut writer = self
            .index
            .writer::<TantivyDocument>(WRITER_MEMORY)
            .map_err(|e| failed(&self.dir, e))?;
        let tx = conn.transaction().map_err(|e| failed(&self.dir, e))?;
        let generation: i64 = tx
            .query_row(
                "SELECT value FROM catalog_meta WHERE key = 'generation'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| failed(&self.dir, e))?;
        writer
            .delete_all_documents()
            .map_err(|e| failed(&self.dir, e))?;
        let f = self.fields;
        let mut rows = tx
            .prepare("SELECT rowid, title, body, tags FROM items ORDER BY rowid")
            .map_err(|e| failed(&self.dir, e))?;
        let mut rows = rows.query([]).map_err(|e| failed(&self.dir, e))?;
        while let Some(row) = rows.next().map_err(|e| failed(&self.dir, e))? {
            let rowid: i64 = row.get(0).map_err(|e| failed(&self.dir, e))?;
            let title: String = row.get(1).map_err(|e| failed(&self.dir, e))?;
            let body: String = row.get(2).map_err(|e| failed(&self.dir, e))?;
            let tags: String = row.get(3).map_err(|e| failed(&self.dir, e))?;
            let mut doc = TantivyDocument::default();
            doc.add_i64(f.rowid, rowid);
            doc.add_text(f.title, &title);
            doc.add_text(f.body, &body);
            doc.add_text(f.tags, &tags);
            for tag in serde_json::from_str::<Vec<String>>(&tags).unwrap_or_default() {
                doc.add_text(f.tag, tag);
            }
            writer.add_document(doc).map_err(|e| failed(&self.dir, e))?;
        }
        let mut commit = writer.prepare_commit().map_err(|e| failed(&self.dir, e))?;
        commit.set_payload(&generation.to_string());
        commit.commit().map_err(|e| failed(&self.dir, e))?;
        writer
            .wait_merging_threads()
            .map_err(|e| failed(&self.dir, e))?;
        Ok(generation)
    }

    /// Every word required (in any of title, body, tags; weighted as FTS5's
    /// BM25), every tag required.
    fn query(&self, words: &[String], tags: &[String]) -> Box<dyn Query> {
        let f = self.fields;
        let mut analyzer = self
            .index
            .tokenizers()
            .get(ANALYZER)
            .expect("registered in open");
        let mut required: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for word in words {
            let mut stream = analyzer.token_stream(word);
            while let Some(token) = stream.next() {
                let term = |field| {
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, &token.text),
                        IndexRecordOption::WithFreqs,
                    ))
                };
                let any_field: Vec<(Occur, Box<dyn Query>)> = vec![
                    (
                        Occur::Should,
                        Box::new(BoostQuery::new(term(f.title), TITLE_BOOST)),
                    ),
                    (Occur::Should, term(f.body)),
                    (
                        Occur::Should,
                        Box::new(BoostQuery::new(term(f.tags), TAGS_BOOST)),
                    ),
                ];
                required.push((Occur::Must, Box::new(BooleanQuery::new(any_field))));
            }
        }
        for tag in tags {
            required.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.tag, tag),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        // One clause alone: the clause itself. A single word is then a plain
        // disjunction of term queries, which tantivy ranks with block-max WAND
        // (skipping blocks that cannot reach the top) instead of scoring every
        // match; wrapped in a one-clause conjunction, it scored them all.
        if required.len() == 1
            && let Some((_, only)) = required.pop()
        {
            return only;
        }
        Box::new(BooleanQuery::new(required))
    }

    /// The best `limit` hits after `offset`, best first.
    pub(crate) fn search(
        &self,
        words: &[String],
        tags: &[String],
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Found>, Snippets), SearchIndexError> {
        let query = self.query(words, tags);
        let searcher = self.reader.searcher();
        // Plain TopDocs, so that tantivy can skip what cannot reach the page
        // (a tie-breaking score tweak turned that off). Ties go in the index's
        // document order: the same in every process reading this index.
        let collector = TopDocs::with_limit(limit.max(1)).and_offset(offset);
        let top: Vec<(f32, DocAddress)> = searcher
            .search(query.as_ref(), &collector)
            .map_err(|e| failed(&self.dir, e))?;
        let mut found = Vec::with_capacity(top.len());
        for (score, at) in top {
            let rowids = searcher
                .segment_reader(at.segment_ord)
                .fast_fields()
                .i64("rowid")
                .map_err(|e| failed(&self.dir, e))?
                .first_or_default_col(0);
            found.push((rowids.get_val(at.doc_id), score));
        }
        let snippets = Snippets {
            body: SnippetGenerator::create(&searcher, query.as_ref(), self.fields.body).ok(),
            title: SnippetGenerator::create(&searcher, query.as_ref(), self.fields.title).ok(),
        };
        Ok((found, snippets))
    }
}

/// Marks a query's words in a hit's text, as FTS5's `snippet()` does.
pub(crate) struct Snippets {
    body: Option<SnippetGenerator>,
    title: Option<SnippetGenerator>,
}

impl Snippets {
    /// A passage of the body around the matched words, or the title when the
    /// body has none; the words marked `**…**`.
    pub(crate) fn make(&self, title: &str, body: &str) -> String {
        for (generator, text) in [(&self.body, body), (&self.title, title)] {
            if let Some(g) = generator {
                let snippet = g.snippet(text);
                if !snippet.highlighted().is_empty() {
                    return render(&snippet, text);
                }
            }
        }
        let start: String = body.chars().take(150).collect();
        if start.len() < body.len() {
            format!("{start}…")
        } else {
            start
        }
    }
}

fn render(snippet: &Snippet, text: &str) -> String {
    let fragment = snippet.fragment();
    let mut out = String::new();
    if !text.starts_with(fragment) {
        out.push('…');
    }
    let mut at = 0;
    for range in snippet.highlighted() {
        out.push_str(&fragment[at..range.start]);
        out.push_str("**");
        out.push_str(&fragment[range.clone()]);
        out.push_str("**");
        at = range.end;
    }
    out.push_str(&fragment[at..]);
    if !text.ends_with(fragment) {
        out.push('…');
    }
    out
}
