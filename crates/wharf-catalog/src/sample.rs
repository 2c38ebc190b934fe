//! The sample catalog embedded in the binary (see data/SOURCE.md).

use std::io::Read;

use wharf_core::Problem;

use crate::{import, item::Item};

static SAMPLE: &[u8] = include_bytes!("../data/sample.jsonl.gz");

/// The sample items, decompressed and checked like any import.
pub fn sample_items() -> Result<Vec<Item>, Problem> {
    let within = |p: Problem| Problem::new(format!("the embedded sample, {}", p.at), p.message);
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(SAMPLE)
        .read_to_end(&mut text)
        .map_err(|e| Problem::new("the embedded sample", format!("damaged: {e}")))?;
    import::parse(text.as_slice(), import::Format::JsonLines)
        .map_err(within)?
        .into_iter()
        .map(|r| r.map(|(_, item)| item).map_err(within))
        .collect()
}
