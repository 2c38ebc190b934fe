//! The sample catalog embedded in the binary (see data/SOURCE.md).

use std::io::Read;

use crate::{import, item::Item};

static SAMPLE: &[u8] = include_bytes!("../data/sample.jsonl.gz");

/// The sample items, decompressed and checked like any import.
pub fn sample_items() -> Result<Vec<Item>, String> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(SAMPLE)
        .read_to_end(&mut text)
        .map_err(|e| format!("the embedded sample is damaged: {e}"))?;
    import::parse(text.as_slice(), import::Format::JsonLines)?
        .into_iter()
        .map(|r| {
            r.map(|(_, item)| item)
                .map_err(|e| format!("the embedded sample has a bad row: {e}"))
        })
        .collect()
}
