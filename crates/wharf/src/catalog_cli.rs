//! `wharf catalog import` and `wharf catalog export`.

use std::{io::Write, path::Path, sync::Arc};

use anyhow::{Context, bail};
use wharf_catalog::{
    Catalog,
    import::{self, Format},
};

/// Rows validated between progress bar updates.
const PROGRESS_STEP: u64 = 1_000;

/// How an import treats bad rows and the items already there.
pub(crate) struct Mode {
    /// Import the good rows when some are bad.
    pub skip_invalid: bool,
    /// Delete every item the file does not list.
    pub replace: bool,
}

pub(crate) async fn import(
    catalog: Arc<dyn Catalog>,
    file: &Path,
    format: Option<&str>,
    Mode {
        skip_invalid,
        replace,
    }: Mode,
) -> anyhow::Result<()> {
    let format = match format {
        Some("jsonl" | "ndjson") => Format::JsonLines,
        Some("json") => Format::JsonArray,
        Some("csv") => Format::Csv,
        Some(other) => bail!("--format {other}: use jsonl, json or csv"),
        None => Format::from_path(file).with_context(|| {
            format!(
                "cannot tell the format of {} from its extension; pass --format jsonl, json or csv",
                file.display()
            )
        })?,
    };
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let rows = import::parse(std::io::BufReader::new(input), format)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let progress = progress_bar(rows.len() as u64);
    let mut items = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        match row {
            Ok((_, item)) => items.push(item),
            Err(e) => bad.push(e),
        }
        if (i as u64).is_multiple_of(PROGRESS_STEP) {
            progress.set_position(i as u64);
        }
    }
    progress.finish_and_clear();
    for e in bad.iter().take(20) {
        eprintln!("{}: {e}", file.display());
    }
    if bad.len() > 20 {
        eprintln!("{}: … and {} more bad rows", file.display(), bad.len() - 20);
    }
    if !bad.is_empty() && !skip_invalid {
        bail!(
            "{} bad row(s); nothing was imported. Fix them, or pass --skip-invalid to import the {} good rows",
            bad.len(),
            items.len()
        );
    }
    let total = items.len();
    if replace && items.is_empty() {
        bail!(
            "{} holds no items; --replace would empty the catalog. Nothing was changed",
            file.display()
        );
    }
    let summary = if replace {
        catalog.replace(items).await
    } else {
        catalog.upsert(items).await
    }
    .context("the import failed; nothing was written")?;
    eprintln!(
        "imported {total} item(s) from {}: {} inserted, {} updated, {} unchanged{}{}",
        file.display(),
        summary.inserted,
        summary.updated,
        summary.unchanged,
        if replace {
            format!(", {} removed", summary.removed)
        } else {
            String::new()
        },
        if bad.is_empty() {
            String::new()
        } else {
            format!(", {} bad row(s) skipped", bad.len())
        }
    );
    let started = tokio::time::Instant::now();
    catalog
        .prepare_search()
        .await
        .context("the items were imported, but the search index was not rebuilt (searches use FTS5 and rebuild it in the background)")?;
    eprintln!(
        "search index up to date ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) async fn export(catalog: Arc<dyn Catalog>, output: Option<&Path>) -> anyhow::Result<()> {
    let items = catalog.export().await?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for item in &items {
        serde_json::to_writer(&mut out, item)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!("exported {} item(s)", items.len());
    Ok(())
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows checked")
    {
        bar.set_style(style);
    }
    bar
}
