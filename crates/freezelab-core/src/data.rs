//! Labelled text datasets from bytes: JSONL, CSV, TSV; label maps; seeded stratified splits
//! and subsets. Errors name the file, the line and the problem.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::seeded::{self, Draw};
use crate::{CoreError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub text: String,
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Csv,
    Tsv,
}

impl Format {
    /// From a file name's extension.
    pub fn from_file_name(name: &str) -> Result<Format> {
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        match ext.as_str() {
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "tsv" | "tab" => Ok(Format::Tsv),
            _ => Err(CoreError::data(name, "unknown format: use a .jsonl, .csv or .tsv file")),
        }
    }
}

/// Which fields hold the text and the label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Columns {
    pub text: String,
    pub label: String,
}

impl Default for Columns {
    fn default() -> Self {
        Columns { text: "text".into(), label: "label".into() }
    }
}

/// Parses `bytes` (the file `file`, for messages) into examples. Extra columns are ignored.
pub fn parse(file: &str, bytes: &[u8], format: Format, columns: &Columns) -> Result<Vec<Example>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CoreError::data(file, "the file is empty"));
    }
    let examples = match format {
        Format::Jsonl => parse_jsonl(file, bytes, columns)?,
        Format::Csv => parse_delimited(file, bytes, b',', columns)?,
        Format::Tsv => parse_delimited(file, bytes, b'\t', columns)?,
    };
    if examples.is_empty() {
        return Err(CoreError::data(file, "no examples (only a header?)"));
    }
    Ok(examples)
}

/// A file's column names (a delimited file's header, or the keys of a JSONL file's first
/// object) and its first `rows` rows as text, for the page's column pickers.
pub fn preview(file: &str, bytes: &[u8], format: Format, rows: usize) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CoreError::data(file, "the file is empty"));
    }
    match format {
        Format::Jsonl => {
            let mut columns: Vec<String> = Vec::new();
            let mut out = Vec::new();
            for (line_no, line) in json_lines(bytes).take(rows.max(1)) {
                let line = std::str::from_utf8(line).map_err(|_| CoreError::line(file, line_no, "not valid UTF-8"))?;
                let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(line) else {
                    return Err(CoreError::line(file, line_no, "expected a JSON object"));
                };
                if columns.is_empty() {
                    columns = map.keys().cloned().collect();
                }
                let cell = |k: &String| map.get(k).map(|v| label_string(v).unwrap_or_else(|| v.to_string()));
                out.push(columns.iter().map(|k| cell(k).unwrap_or_default()).collect());
            }
            if columns.is_empty() {
                return Err(CoreError::data(file, "the file is empty"));
            }
            out.truncate(rows);
            Ok((columns, out))
        }
        Format::Csv | Format::Tsv => {
            let delim = if format == Format::Csv { b',' } else { b'\t' };
            let mut reader = csv::ReaderBuilder::new().delimiter(delim).flexible(true).from_reader(bytes);
            let header = reader.headers().map_err(|e| csv_error(file, e))?;
            let columns: Vec<String> = header.iter().map(str::to_string).collect();
            let mut out = Vec::new();
            for record in reader.records().take(rows) {
                let record = record.map_err(|e| csv_error(file, e))?;
                out.push(record.iter().map(str::to_string).collect());
            }
            if out.is_empty() {
                return Err(CoreError::data(file, "no examples (only a header?)"));
            }
            Ok((columns, out))
        }
    }
}

/// Non-blank lines with 1-based line numbers.
fn json_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
}

fn label_string(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_jsonl(file: &str, bytes: &[u8], columns: &Columns) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for (line_no, line) in json_lines(bytes) {
        let line = std::str::from_utf8(line)
            .map_err(|e| CoreError::line(file, line_no, format!("not valid UTF-8 (byte {})", e.valid_up_to())))?;
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| CoreError::line(file, line_no, format!("unparsable JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| CoreError::line(file, line_no, "expected a JSON object"))?;
        let text = object
            .get(&columns.text)
            .ok_or_else(|| CoreError::line(file, line_no, format!("missing field \"{}\"", columns.text)))?
            .as_str()
            .ok_or_else(|| CoreError::line(file, line_no, format!("field \"{}\" is not a string", columns.text)))?;
        let label = object
            .get(&columns.label)
            .ok_or_else(|| CoreError::line(file, line_no, format!("missing field \"{}\"", columns.label)))
            .and_then(|v| {
                label_string(v).ok_or_else(|| {
                    CoreError::line(file, line_no, format!("field \"{}\" is not a string or number", columns.label))
                })
            })?;
        out.push(Example { text: text.to_string(), label });
    }
    Ok(out)
}

fn csv_error(file: &str, e: csv::Error) -> CoreError {
    match e.position() {
        Some(pos) => CoreError::line(file, pos.line() as usize, csv_message(e.kind())),
        None => CoreError::data(file, csv_message(e.kind())),
    }
}

fn csv_message(kind: &csv::ErrorKind) -> String {
    match kind {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        other => format!("{other:?}"),
    }
}

fn parse_delimited(file: &str, bytes: &[u8], delimiter: u8, columns: &Columns) -> Result<Vec<Example>> {
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(bytes);
    let header = reader.headers().map_err(|e| csv_error(file, e))?.clone();
    let find = |name: &str| {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            let have: Vec<&str> = header.iter().collect();
            CoreError::data(file, format!("missing column \"{name}\" (columns: {})", have.join(", ")))
        })
    };
    let (text_at, label_at) = (find(&columns.text)?, find(&columns.label)?);
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(file, e))?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let (Some(text), Some(label)) = (record.get(text_at), record.get(label_at)) else {
            return Err(CoreError::line(file, line, "row is missing the text or label column"));
        };
        if label.trim().is_empty() {
            return Err(CoreError::line(file, line, "empty label"));
        }
        out.push(Example { text: text.to_string(), label: label.trim().to_string() });
    }
    Ok(out)
}

/// Label names in a stable order: numeric order when every label is an integer, else sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMap {
    pub names: Vec<String>,
}

impl LabelMap {
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Self {
        let mut names: Vec<String> = labels.into_iter().map(str::to_string).collect();
        names.sort();
        names.dedup();
        if names.iter().all(|n| n.parse::<i64>().is_ok()) {
            names.sort_by_key(|n| n.parse::<i64>().expect("checked"));
        }
        LabelMap { names }
    }

    pub fn id(&self, label: &str) -> Option<usize> {
        self.names.iter().position(|n| n == label)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Texts with label ids, ready to train on.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub labels: LabelMap,
    pub train: Vec<(String, usize)>,
    pub validation: Vec<(String, usize)>,
}

impl Dataset {
    /// Builds the label map from the training split. Refuses a single class and labels that
    /// appear only in validation (the model could never predict them).
    pub fn new(train: Vec<Example>, validation: Vec<Example>, train_file: &str, validation_file: &str) -> Result<Self> {
        let labels = LabelMap::from_labels(train.iter().map(|e| e.label.as_str()));
        if labels.len() < 2 {
            return Err(CoreError::data(
                train_file,
                format!("only one class ({}): a classifier needs at least two", labels.names.join(", ")),
            ));
        }
        if validation.is_empty() {
            return Err(CoreError::data(validation_file, "the validation split is empty"));
        }
        let mut val = Vec::with_capacity(validation.len());
        for e in validation {
            let id = labels.id(&e.label).ok_or_else(|| {
                CoreError::data(
                    validation_file,
                    format!("label \"{}\" appears in validation but never in training", e.label),
                )
            })?;
            val.push((e.text, id));
        }
        let train = train
            .into_iter()
            .map(|e| {
                let id = labels.id(&e.label).expect("map built from train");
                (e.text, id)
            })
            .collect();
        Ok(Dataset { labels, train, validation: val })
    }

    /// One file split into train/validation, stratified by label and seeded.
    pub fn from_single(examples: Vec<Example>, validation_fraction: f64, seed: u64, file: &str) -> Result<Self> {
        if !(0.0..1.0).contains(&validation_fraction) || validation_fraction == 0.0 {
            return Err(CoreError::Invalid(format!(
                "validation fraction must be in (0, 1), got {validation_fraction}"
            )));
        }
        let mut by_label: BTreeMap<String, Vec<Example>> = BTreeMap::new();
        for e in examples {
            by_label.entry(e.label.clone()).or_default().push(e);
        }
        let mut rng = seeded::rng(seed, Draw::Data);
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        for (_, mut group) in by_label {
            group.shuffle(&mut rng);
            // At least one example of each class stays in training when it has more than one.
            let n_val =
                ((group.len() as f64 * validation_fraction).round() as usize).min(group.len().saturating_sub(1));
            validation.extend(group.drain(..n_val));
            train.extend(group);
        }
        train.shuffle(&mut rng);
        validation.shuffle(&mut rng);
        Dataset::new(train, validation, file, file)
    }

    /// Examples per label id in the training split.
    pub fn train_counts(&self) -> Vec<usize> {
        counts(&self.train, self.labels.len())
    }

    /// Examples per label id in the validation split.
    pub fn validation_counts(&self) -> Vec<usize> {
        counts(&self.validation, self.labels.len())
    }
}

fn counts(items: &[(String, usize)], n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    for (_, l) in items {
        c[*l] += 1;
    }
    c
}

/// The first `n` of a seeded, stratified shuffle: class proportions of `items` are kept
/// (largest remainder), then the picks are shuffled together. `n` ≥ len returns all, shuffled.
pub fn stratified_subset(items: &[(String, usize)], n: usize, num_labels: usize, seed: u64) -> Vec<(String, usize)> {
    let mut rng = seeded::rng(seed, Draw::Data);
    let total = items.len();
    let n = n.min(total);
    let mut groups: Vec<Vec<&(String, usize)>> = vec![Vec::new(); num_labels];
    for item in items {
        groups[item.1].push(item);
    }
    let exact: Vec<f64> = groups.iter().map(|g| g.len() as f64 * n as f64 / total.max(1) as f64).collect();
    let mut take: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..num_labels).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let mut missing = n - take.iter().sum::<usize>();
    for &i in order.iter().cycle().take(num_labels * 2) {
        if missing == 0 {
            break;
        }
        if take[i] < groups[i].len() {
            take[i] += 1;
            missing -= 1;
        }
    }
    let mut out = Vec::with_capacity(n);
    for (group, k) in groups.iter_mut().zip(take) {
        group.shuffle(&mut rng);
        out.extend(group.iter().take(k).map(|&item| item.clone()));
    }
    out.shuffle(&mut rng);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, label: &str) -> Example {
        Example { text: text.into(), label: label.into() }
    }

    #[test]
    fn reads_the_three_formats_alike() {
        let cols = Columns::default();
        let jsonl = b"{\"text\":\"a\",\"label\":\"x\",\"extra\":1}\n\n{\"text\":\"b, c\",\"label\":2}\n";
        let csv = b"label,text,extra\nx,a,1\n2,\"b, c\",2\n";
        let tsv = b"text\tlabel\na\tx\nb, c\t2\n";
        let want = vec![ex("a", "x"), ex("b, c", "2")];
        assert_eq!(parse("d.jsonl", jsonl, Format::Jsonl, &cols).unwrap(), want);
        assert_eq!(parse("d.csv", csv, Format::Csv, &cols).unwrap(), want);
        assert_eq!(parse("d.tsv", tsv, Format::Tsv, &cols).unwrap(), want);
    }

    #[test]
    fn preview_gives_columns_and_first_rows() {
        let (cols, rows) = preview("p.csv", b"label,text\nx,a\ny,\"b, c\"\nz,d\n", Format::Csv, 2).unwrap();
        assert_eq!(cols, ["label", "text"]);
        assert_eq!(rows, [["x", "a"], ["y", "b, c"]]);
        let (cols, rows) = preview("p.jsonl", b"{\"t\":\"a\",\"n\":3}\n{\"t\":\"b\"}\n", Format::Jsonl, 5).unwrap();
        assert_eq!(cols, ["n", "t"]);
        assert_eq!(rows, [["3", "a"], ["", "b"]]);
        for (name, bytes) in [("e.csv", &b""[..]), ("e.tsv", b" \n"), ("e.jsonl", b"\n")] {
            let format = Format::from_file_name(name).unwrap();
            assert!(preview(name, bytes, format, 5).unwrap_err().to_string().contains("the file is empty"), "{name}");
        }
        assert!(preview("h.csv", b"text,label\n", Format::Csv, 5).unwrap_err().to_string().contains("only a header"));
    }

    #[test]
    fn csv_keeps_multiline_quoted_fields() {
        let csv = b"text,label\n\"line one\nline two\",a\nz,b\n";
        let got = parse("m.csv", csv, Format::Csv, &Columns::default()).unwrap();
        assert_eq!(got[0].text, "line one\nline two");
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let cols = Columns::default();
        let cases: Vec<(&str, &[u8], Format, &str)> = vec![
            ("e.jsonl", b"  \n", Format::Jsonl, "e.jsonl: the file is empty"),
            ("b.jsonl", b"{\"text\":\"a\",\"label\":1}\n{oops\n", Format::Jsonl, "b.jsonl, line 2: unparsable JSON"),
            ("m.jsonl", b"{\"text\":\"a\"}\n", Format::Jsonl, "m.jsonl, line 1: missing field \"label\""),
            ("u.jsonl", b"{\"text\":\"\xff\",\"label\":1}\n", Format::Jsonl, "u.jsonl, line 1: not valid UTF-8"),
            ("c.csv", b"text,lbl\na,b\n", Format::Csv, "c.csv: missing column \"label\""),
            ("t.tsv", b"text\tlabel\na\n", Format::Tsv, "t.tsv, line 2: 1 fields where the header has 2"),
            ("u.csv", b"text,label\n\xff\xfe,a\n", Format::Csv, "u.csv, line 2: not valid UTF-8"),
        ];
        for (file, bytes, format, want) in cases {
            let err = parse(file, bytes, format, &cols).unwrap_err().to_string();
            assert!(err.starts_with(want), "{file}: got {err:?}, want prefix {want:?}");
        }
    }

    #[test]
    fn single_class_and_validation_only_labels_are_refused() {
        let one = Dataset::new(vec![ex("a", "x"), ex("b", "x")], vec![ex("c", "x")], "tr", "va");
        assert!(one.unwrap_err().to_string().contains("only one class"));
        let only_val = Dataset::new(vec![ex("a", "x"), ex("b", "y")], vec![ex("c", "z")], "tr", "va");
        assert!(only_val.unwrap_err().to_string().contains("\"z\" appears in validation"));
    }

    #[test]
    fn integer_labels_sort_numerically() {
        let map = LabelMap::from_labels(["10", "9", "2", "10"]);
        assert_eq!(map.names, vec!["2", "9", "10"]);
    }

    #[test]
    fn single_file_split_is_stratified_and_seeded() {
        let examples: Vec<Example> =
            (0..100).map(|i| ex(&format!("t{i}"), if i % 4 == 0 { "rare" } else { "common" })).collect();
        let a = Dataset::from_single(examples.clone(), 0.2, 7, "f").unwrap();
        let b = Dataset::from_single(examples.clone(), 0.2, 7, "f").unwrap();
        let c = Dataset::from_single(examples, 0.2, 8, "f").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.validation, c.validation);
        assert_eq!(a.validation.len(), 20);
        let rare = a.labels.id("rare").unwrap();
        assert_eq!(a.validation.iter().filter(|(_, l)| *l == rare).count(), 5);
    }

    #[test]
    fn subset_keeps_class_proportions() {
        let items: Vec<(String, usize)> = (0..90).map(|i| (format!("t{i}"), usize::from(i % 3 == 0))).collect();
        let s = stratified_subset(&items, 30, 2, 1);
        assert_eq!(s.len(), 30);
        assert_eq!(s.iter().filter(|(_, l)| *l == 1).count(), 10);
        assert_eq!(s, stratified_subset(&items, 30, 2, 1));
        assert_eq!(stratified_subset(&items, 1000, 2, 1).len(), 90);
    }
}
