//! Reading items from JSON Lines, a JSON array or CSV, with the line of every bad row.

use std::io::{BufRead, Read};

use serde_json::{Map, Value};

use wharf_core::Problem;

use crate::item::Item;

/// The formats `wharf catalog import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    JsonArray,
    Csv,
}

impl Format {
    /// From a file name's extension.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            "json" => Some(Self::JsonArray),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// Where a row is: its 1-based line (for a JSON array, the line where the
/// element starts).
fn line_at(line: usize) -> String {
    format!("line {line}")
}

/// One row of a file: the item and its line, or why the row is bad (at `line N`).
pub type Row = Result<(usize, Item), Problem>;

/// Every item and every bad row of `input`, in file order.
/// A problem with the whole file (not JSON, no CSV header) is the error.
pub fn parse(input: impl Read, format: Format) -> Result<Vec<Row>, Problem> {
    match format {
        Format::JsonLines => Ok(parse_jsonl(input)),
        Format::JsonArray => parse_json_array(input),
        Format::Csv => parse_csv(input),
    }
}

fn parse_jsonl(input: impl Read) -> Vec<Row> {
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(input).lines().enumerate() {
        let n = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                out.push(Err(Problem::new(
                    line_at(n),
                    format!("cannot be read: {e}"),
                )));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str::<Value>(&line)
                .map_err(|e| format!("not valid JSON: {e}"))
                .and_then(|v| Item::from_json(v).map_err(|e| e.0))
                .map(|item| (n, item))
                .map_err(|message| Problem::new(line_at(n), message)),
        );
    }
    out
}

fn parse_json_array(mut input: impl Read) -> Result<Vec<Row>, Problem> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(|e| Problem::new("the file", format!("cannot be read: {e}")))?;
    // Borrowed raw values point into `text`, which gives each element's line.
    let values: Vec<&serde_json::value::RawValue> = serde_json::from_str(&text)
        .map_err(|e| Problem::new(line_at(e.line()), format!("not a JSON array of items: {e}")))?;
    Ok(values
        .into_iter()
        .map(|raw| {
            let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            let line = text[..offset].matches('\n').count() + 1;
            serde_json::from_str::<Value>(raw.get())
                .map_err(|e| e.to_string())
                .and_then(|v| Item::from_json(v).map_err(|e| e.0))
                .map(|item| (line, item))
                .map_err(|message| Problem::new(line_at(line), message))
        })
        .collect())
}

/// CSV with a header row naming item fields. `tags` is a JSON array or a list
/// separated by `;`; `attributes` is a JSON object.
fn parse_csv(input: impl Read) -> Result<Vec<Row>, Problem> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| Problem::new(line_at(1), format!("no CSV header row: {e}")))?
        .clone();
    let mut out = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                out.push(Err(Problem::new(
                    line_at(line),
                    format!("not valid CSV: {e}"),
                )));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let mut map = Map::new();
        let mut problem = None;
        for (name, field) in headers.iter().zip(record.iter()) {
            let value = match name {
                _ if field.is_empty() && name != "id" && name != "title" => continue,
                "tags" if field.trim_start().starts_with('[') => serde_json::from_str(field)
                    .unwrap_or_else(|e| {
                        problem.get_or_insert(format!("`tags` is not a JSON array: {e}"));
                        Value::Null
                    }),
                "tags" => Value::Array(
                    field
                        .split(';')
                        .map(|t| Value::String(t.trim().to_owned()))
                        .filter(|t| t != "")
                        .collect(),
                ),
                "attributes" => serde_json::from_str(field).unwrap_or_else(|e| {
                    problem.get_or_insert(format!("`attributes` is not a JSON object: {e}"));
                    Value::Null
                }),
                _ => Value::String(field.to_owned()),
            };
            map.insert(name.to_owned(), value);
        }
        let result = match problem {
            Some(message) => Err(message),
            None => Item::from_json(Value::Object(map)).map_err(|e| e.0),
        };
        out.push(
            result
                .map(|item| (line, item))
                .map_err(|message| Problem::new(line_at(line), message)),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_reports_the_line_of_bad_json() {
        let input = "{\"id\":\"a\",\"title\":\"A\"}\n\n{\"id\":\"b\",\"title\":\n{\"id\":\"c\",\"title\":\"C\"}\n";
        let rows = parse(input.as_bytes(), Format::JsonLines).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].is_ok());
        let err = rows[1].as_ref().unwrap_err();
        assert_eq!(err.at, "line 3");
        assert!(err.message.starts_with("not valid JSON"), "{err}");
        assert_eq!(rows[2].as_ref().unwrap().0, 4);
    }

    #[test]
    fn a_json_array_reports_the_line_of_each_element() {
        let input = "[\n  {\"id\": \"a\", \"title\": \"A\"},\n  {\"id\": \"b\", \"title\": 5}\n]";
        let rows = parse(input.as_bytes(), Format::JsonArray).unwrap();
        assert_eq!(rows[1].as_ref().unwrap_err().at, "line 3");
        assert!(parse("{\"id\":1}".as_bytes(), Format::JsonArray).is_err());
    }

    #[test]
    fn csv_reads_tags_and_attributes() {
        let input =
            "id,title,body,tags,attributes\na,A,body a,x;y,\"{\"\"k\"\":1}\"\nb,,body b,,\n";
        let rows = parse(input.as_bytes(), Format::Csv).unwrap();
        let (_, a) = rows[0].as_ref().unwrap();
        assert_eq!(a.tags, ["x", "y"]);
        assert_eq!(a.attributes["k"], 1);
        let err = rows[1].as_ref().unwrap_err();
        assert_eq!(err.at, "line 3");
        assert!(err.message.contains("`title`"), "{err}");
    }
}
