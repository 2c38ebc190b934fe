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

use crate::catalog::Match;
use rusqlite::Connection;
use tantivy::{
    DocAddress, Index, IndexReader, ReloadPolicy, Searcher, TantivyDocument, Term,
    collector::TopDocs,
    directory::MmapDirectory,
    query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery},
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
    },
    snippet::{Snippet, SnippetGenerator},
    tokenizer::{AsciiFoldingFilter, Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer},
};

/// Relative weight of a match in the title, body and tags (as FTS5's BM25
/// weights), and in the words found elsewhere (attributes, the parts of a
/// joined word in the title).
const TITLE_BOOST: f32 = 10.0;
const TAGS_BOOST: f32 = 3.0;
const EXTRA_BOOST: f32 = 2.0;
/// A near form of a word counts for less than the word as written.
const FUZZY_BOOST: f32 = 0.3;
const PREFIX_BOOST: f32 = 0.5;
/// Shortest word matched within one typo, and within two.
const FUZZY_ONE: usize = 5;
const FUZZY_TWO: usize = 9;
/// Longest word whose near forms (typos, continuations, halves) are looked for.
const MAX_NEAR_CHARS: usize = 24;
/// Near terms of one word searched for, and terms of the dictionary read to find them.
const MAX_NEAR_TERMS: usize = 3;
const MAX_NEAR_SCAN: usize = 2_000;
/// Shortest last word also matched as the start of a longer one.
const PREFIX_MIN: usize = 3;
/// Shortest word tried as two joined words, and their shortest part.
const JOINED_MIN: usize = 6;
const PART_MIN: usize = 3;
/// Most bytes of an item's attribute text indexed.
const MAX_EXTRA_BYTES: usize = 4096;

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
    /// Words found elsewhere: string values of the attributes, the parts of
    /// joined words in the title (`GPUDevice`: `GPU Device`).
    extra: Field,
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
            tags: builder.add_text_field("tags", text.clone()),
            extra: builder.add_text_field("extra", text),
            tag: builder.add_text_field("tag", STRING),
        };
        let schema = builder.build();
        let directory = MmapDirectory::open(dir).map_err(|e| failed(dir, e))?;
        let index = match Index::open_or_create(directory, schema.clone()) {
            Ok(index) => index,
            // An index an older Wharf built: it is a cache, so it is replaced
            // (empty, stale until rebuilt).
            Err(tantivy::TantivyError::SchemaError(_)) => {
                tracing::info!(dir = %dir.display(), "search index of another layout; building it again");
                std::fs::remove_dir_all(dir).map_err(|e| failed(dir, e))?;
                std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
                let directory = MmapDirectory::open(dir).map_err(|e| failed(dir, e))?;
                Index::create(directory, schema, Default::default())
                    .map_err(|e| failed(dir, IndexCause::Unreadable(e)))?
            }
            Err(e) => return Err(failed(dir, IndexCause::Unreadable(e))),
        };
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
            .prepare("SELECT rowid, title, body, tags, attributes FROM items ORDER BY rowid")
            .map_err(|e| failed(&self.dir, e))?;
        let mut rows = rows.query([]).map_err(|e| failed(&self.dir, e))?;
        while let Some(row) = rows.next().map_err(|e| failed(&self.dir, e))? {
            let rowid: i64 = row.get(0).map_err(|e| failed(&self.dir, e))?;
            let title: String = row.get(1).map_err(|e| failed(&self.dir, e))?;
            let body: String = row.get(2).map_err(|e| failed(&self.dir, e))?;
            let tags: String = row.get(3).map_err(|e| failed(&self.dir, e))?;
            let attributes: String = row.get(4).map_err(|e| failed(&self.dir, e))?;
            let mut doc = TantivyDocument::default();
            doc.add_i64(f.rowid, rowid);
            doc.add_text(f.title, &title);
            doc.add_text(f.body, &body);
            doc.add_text(f.tags, &tags);
            doc.add_text(f.extra, extra_words(&title, &attributes));
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

    /// The query for `words` at one stage of matching (weighted as FTS5's
    /// BM25 over title, body and tags, plus the extra words), every tag required.
    fn query(
        &self,
        searcher: &Searcher,
        words: &[String],
        tags: &[String],
        stage: Match,
    ) -> Box<dyn Query> {
        let close = stage != Match::Every;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let occur = match stage {
            Match::Every | Match::Close => Occur::Must,
            Match::Most | Match::Any => Occur::Should,
        };
        for (i, word) in words.iter().enumerate() {
            let last = i + 1 == words.len();
            if let Some(q) = self.word_query(searcher, word, last, close) {
                clauses.push((occur, q));
            }
        }
        let wanted = clauses.len();

        // One word alone: the word's own query. A plain disjunction of term
        // queries is ranked with block-max WAND (skipping blocks that cannot
        // reach the top); wrapped in a one-clause conjunction, every match was
        // scored.
        if wanted == 1
            && tags.is_empty()
            && let Some((_, only)) = clauses.pop()
        {
            return only;
        }
        let query = match stage {
            Match::Most => BooleanQuery::with_minimum_required_clauses(clauses, wanted.div_ceil(2)),
            _ => BooleanQuery::new(clauses),
        };
        if !tags.is_empty() {
            let mut all: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(query))];
            for tag in tags {
                all.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(self.fields.tag, tag),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
            return Box::new(BooleanQuery::new(all));
        }
        Box::new(query)
    }

    /// One word in any field: as written (stemmed); with `close`, also within a
    /// typo or two, as the start of a longer word when it is the `last`, and
    /// as two joined words the index knows when it does not know it whole.
    fn word_query(
        &self,
        searcher: &Searcher,
        word: &str,
        last: bool,
        close: bool,
    ) -> Option<Box<dyn Query>> {
        let f = self.fields;
        let token = self.analyze(word)?;
        // As written, the words match what FTS5 matches (title, body, tags), so
        // the index and FTS5 (while the index is rebuilt) find the same items;
        // the extra words count once matching is loose.
        let weighted: &[(Field, f32)] = if close {
            &[
                (f.title, TITLE_BOOST),
                (f.body, 1.0),
                (f.tags, TAGS_BOOST),
                (f.extra, EXTRA_BOOST),
            ]
        } else {
            &[(f.title, TITLE_BOOST), (f.body, 1.0), (f.tags, TAGS_BOOST)]
        };
        let mut any: Vec<(Occur, Box<dyn Query>)> = weighted
            .iter()
            .map(|&(field, boost)| (Occur::Should, term_query(field, &token, boost)))
            .collect();
        let chars = word.chars().count();
        // Near forms are looked for only in words a person types: the cost of
        // a typo automaton grows with the word (MAX_NEAR_CHARS).
        if close && chars <= MAX_NEAR_CHARS {
            let text_fields = [
                (f.title, TITLE_BOOST),
                (f.body, 1.0),
                (f.extra, EXTRA_BOOST),
            ];
            // The near terms the index holds, each scored as a word (BM25), so
            // the likeliest correction ranks as a match of it would.
            let mut near = |terms: Vec<String>, weight: f32| {
                for term in terms {
                    for (field, boost) in text_fields {
                        any.push((Occur::Should, term_query(field, &term, boost * weight)));
                    }
                }
            };
            if chars >= FUZZY_ONE {
                let distance = if chars >= FUZZY_TWO { 2 } else { 1 };
                let dfa = Near(typo_automata(distance).build_dfa(&token));
                near(self.near_terms(searcher, &dfa, &token), FUZZY_BOOST);
            }
            let plain = word.to_lowercase();
            if last && chars >= PREFIX_MIN {
                near(
                    self.near_terms(searcher, &Prefix(plain.as_bytes()), &token),
                    PREFIX_BOOST,
                );
            }
            if chars >= JOINED_MIN
                && self.doc_freq(searcher, &token) == 0
                && let Some((a, b)) = self.split_joined(searcher, &plain)
            {
                let part = |t: &str| -> Box<dyn Query> {
                    Box::new(BooleanQuery::new(
                        weighted
                            .iter()
                            .map(|&(field, boost)| (Occur::Should, term_query(field, t, boost)))
                            .collect(),
                    ))
                };
                any.push((
                    Occur::Should,
                    Box::new(BooleanQuery::new(vec![
                        (Occur::Must, part(&a)),
                        (Occur::Must, part(&b)),
                    ])),
                ));
            }
        }
        Some(Box::new(BooleanQuery::new(any)))
    }

    /// The most common terms `automaton` accepts in the title, body or extra
    /// words, at most [`MAX_NEAR_TERMS`] and not `token` itself, from the first
    /// [`MAX_NEAR_SCAN`] accepted (a short prefix accepts thousands).
    fn near_terms<A>(&self, searcher: &Searcher, automaton: &A, token: &str) -> Vec<String>
    where
        A: tantivy_fst::Automaton,
        A::State: Clone,
    {
        let f = self.fields;
        let mut seen: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
        let mut scanned = 0;
        'scan: for segment in searcher.segment_readers() {
            for field in [f.title, f.body, f.extra] {
                let Ok(index) = segment.inverted_index(field) else {
                    continue;
                };
                let Ok(mut stream) = index.terms().search(automaton).into_stream() else {
                    continue;
                };
                while stream.advance() {
                    if stream.key() != token.as_bytes() {
                        *seen.entry(stream.key().to_vec()).or_default() +=
                            u64::from(stream.value().doc_freq);
                    }
                    scanned += 1;
                    if scanned >= MAX_NEAR_SCAN {
                        break 'scan;
                    }
                }
            }
        }
        let mut terms: Vec<(Vec<u8>, u64)> = seen.into_iter().collect();
        terms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        terms
            .into_iter()
            .take(MAX_NEAR_TERMS)
            .filter_map(|(t, _)| String::from_utf8(t).ok())
            .collect()
    }

    /// `word` as the index's analyzer makes it (lowercased, folded, stemmed).
    fn analyze(&self, word: &str) -> Option<String> {
        let mut analyzer = self
            .index
            .tokenizers()
            .get(ANALYZER)
            .expect("registered in open");
        let mut stream = analyzer.token_stream(word);
        stream.next().map(|t| t.text.clone())
    }

    /// Items holding the analyzed `token` in any searched field.
    fn doc_freq(&self, searcher: &Searcher, token: &str) -> u64 {
        let f = self.fields;
        [f.title, f.body, f.tags, f.extra]
            .into_iter()
            .map(|field| {
                searcher
                    .doc_freq(&Term::from_field_text(field, token))
                    .unwrap_or(0)
            })
            .sum()
    }

    /// A word the index does not know read as two it does (`webgpu`, `darkmode`):
    /// the split whose rarer part is most common.
    fn split_joined(&self, searcher: &Searcher, word: &str) -> Option<(String, String)> {
        let bounds: Vec<usize> = word.char_indices().map(|(i, _)| i).collect();
        let mut best: Option<(u64, String, String)> = None;
        for (n, &at) in bounds.iter().enumerate() {
            if n < PART_MIN || bounds.len() - n < PART_MIN {
                continue;
            }
            let (Some(a), Some(b)) = (self.analyze(&word[..at]), self.analyze(&word[at..])) else {
                continue;
            };
            let rarer = self.doc_freq(searcher, &a).min(self.doc_freq(searcher, &b));
            if rarer > 0 && best.as_ref().is_none_or(|(r, _, _)| rarer > *r) {
                best = Some((rarer, a, b));
            }
        }
        best.map(|(_, a, b)| (a, b))
    }

    /// The best `limit` hits after `offset`, best first, at the strictest stage
    /// of matching that finds anything, and that stage.
    pub(crate) fn search(
        &self,
        words: &[String],
        tags: &[String],
        offset: usize,
        limit: usize,
        from_cursor: Option<Match>,
    ) -> Result<(Vec<Found>, Snippets, Match), SearchIndexError> {
        let searcher = self.reader.searcher();
        let stages = Match::plan(words.len(), from_cursor, true);
        // Plain TopDocs, so that tantivy can skip what cannot reach the page
        // (a tie-breaking score tweak turned that off). Ties go in the index's
        // document order: the same in every process reading it. The last
        // search made is the chosen page's; its query marks the snippets.
        let mut used = None;
        let (top, stage) =
            Match::first_answering(&stages, offset, limit, |stage, limit, offset| {
                let query = self.query(&searcher, words, tags, stage);
                let collector = TopDocs::with_limit(limit.max(1)).and_offset(offset);
                let top: Vec<(f32, DocAddress)> = searcher
                    .search(query.as_ref(), &collector)
                    .map_err(|e| failed(&self.dir, e))?;
                used = Some(query);
                Ok(top)
            })?;
        let query = used.unwrap_or_else(|| self.query(&searcher, words, tags, stage));
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
        Ok((found, snippets, stage))
    }
}

/// A Levenshtein automaton over the term dictionary (the one tantivy's own
/// fuzzy query uses), so near terms can be listed rather than matched alike.
struct Near(levenshtein_automata::DFA);

impl tantivy_fst::Automaton for Near {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(
            self.0.distance(*state),
            levenshtein_automata::Distance::Exact(_)
        )
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != levenshtein_automata::SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// Terms that start with the bytes it holds.
struct Prefix<'a>(&'a [u8]);

impl tantivy_fst::Automaton for Prefix<'_> {
    /// Bytes of the prefix matched so far; `None` once a byte differed.
    type State = Option<usize>;

    fn start(&self) -> Option<usize> {
        Some(0)
    }

    fn is_match(&self, state: &Option<usize>) -> bool {
        *state == Some(self.0.len())
    }

    fn can_match(&self, state: &Option<usize>) -> bool {
        state.is_some()
    }

    fn will_always_match(&self, state: &Option<usize>) -> bool {
        *state == Some(self.0.len())
    }

    fn accept(&self, state: &Option<usize>, byte: u8) -> Option<usize> {
        match *state {
            Some(i) if i == self.0.len() => Some(i),
            Some(i) if self.0[i] == byte => Some(i + 1),
            _ => None,
        }
    }
}

/// The typo automaton builder for `distance` (1 or 2), made once: building
/// one is costly, each query's automaton from it is cheap.
fn typo_automata(distance: u8) -> &'static levenshtein_automata::LevenshteinAutomatonBuilder {
    static ONE: std::sync::OnceLock<levenshtein_automata::LevenshteinAutomatonBuilder> =
        std::sync::OnceLock::new();
    static TWO: std::sync::OnceLock<levenshtein_automata::LevenshteinAutomatonBuilder> =
        std::sync::OnceLock::new();
    let cell = if distance >= 2 { &TWO } else { &ONE };
    cell.get_or_init(|| {
        levenshtein_automata::LevenshteinAutomatonBuilder::new(distance.min(2), true)
    })
}

fn term_query(field: Field, token: &str, boost: f32) -> Box<dyn Query> {
    let q = Box::new(TermQuery::new(
        Term::from_field_text(field, token),
        IndexRecordOption::WithFreqs,
    ));
    if boost == 1.0 {
        q
    } else {
        Box::new(BoostQuery::new(q, boost))
    }
}

/// The words of an item searched besides its title, body and tags: the
/// parts of joined words in the title (`GPUDevice`: `GPU Device`,
/// `getElementById`: `get Element By Id`) and every string in its attributes
/// (the sample's specification URLs name the spec: `css-flexbox`), at most
/// [`MAX_EXTRA_BYTES`].
pub(crate) fn extra_words(title: &str, attributes: &str) -> String {
    let mut out = String::new();
    for word in title.split(|c: char| !c.is_alphanumeric()) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        let mut start = 0;
        for k in 1..chars.len() {
            let (p, c) = (chars[k - 1].1, chars[k].1);
            let next_lower = chars.get(k + 1).is_some_and(|(_, n)| n.is_lowercase());
            if (p.is_lowercase() && c.is_uppercase())
                || (p.is_uppercase() && c.is_uppercase() && next_lower)
            {
                out.push_str(&word[start..chars[k].0]);
                out.push(' ');
                start = chars[k].0;
            }
        }
        if start > 0 {
            out.push_str(&word[start..]);
            out.push(' ');
        }
    }
    fn strings(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push(' ');
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(attributes) {
        strings(&v, &mut out);
    }
    if out.len() > MAX_EXTRA_BYTES {
        let mut cut = MAX_EXTRA_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
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
