//! Reads the metadata of a GGUF file (the key/value header), without the
//! weights: what a model listing needs, in pure Rust, so a malformed file is
//! an error, never an abort inside llama.cpp.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

/// Why a file's metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot open it: {0}")]
    Open(#[from] std::io::Error),
    #[error("not a GGUF file ({0})")]
    NotGguf(&'static str),
    #[error("unsupported GGUF version {0}")]
    Version(u32),
    #[error("truncated GGUF metadata")]
    Truncated,
    #[error("corrupt GGUF metadata: {0}")]
    Corrupt(String),
}

/// A metadata value we keep (arrays are skipped: they hold the vocabulary).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i128),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// The scalar metadata of a GGUF file.
#[derive(Debug, Default)]
pub struct Metadata {
    values: HashMap<String, Value>,
}

impl Metadata {
    pub fn read(path: &Path) -> Result<Self, GgufError> {
        let file = File::open(path)?;
        Self::parse(&mut BufReader::with_capacity(1 << 16, file))
    }

    pub fn text(&self, key: &str) -> Option<&str> {
        match self.values.get(key)? {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i128> {
        match self.values.get(key)? {
            Value::Int(value) => Some(*value),
            _ => None,
        }
    }

    /// Every scalar key and value, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(key, value)| (key.as_str(), value))
    }

    #[cfg(test)]
    fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    fn parse(input: &mut (impl Read + Seek)) -> Result<Self, GgufError> {
        let mut magic = [0_u8; 4];
        input
            .read_exact(&mut magic)
            .map_err(|_| GgufError::NotGguf("too short"))?;
        if &magic != b"GGUF" {
            return Err(GgufError::NotGguf("bad magic"));
        }
        let version = read_u32(input)?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::Version(version));
        }
        let _tensors = read_u64(input)?;
        let count = read_u64(input)?;
        let mut values = HashMap::new();
        for _ in 0..count {
            let key = read_string(input)?;
            let kind = read_u32(input)?;
            if let Some(value) = read_value(input, kind)? {
                values.insert(key, value);
            }
        }
        Ok(Self { values })
    }
}

fn read_bytes<const N: usize>(input: &mut impl Read) -> Result<[u8; N], GgufError> {
    let mut bytes = [0_u8; N];
    input
        .read_exact(&mut bytes)
        .map_err(|_| GgufError::Truncated)?;
    Ok(bytes)
}

fn read_u32(input: &mut impl Read) -> Result<u32, GgufError> {
    read_bytes(input).map(u32::from_le_bytes)
}

fn read_u64(input: &mut impl Read) -> Result<u64, GgufError> {
    read_bytes(input).map(u64::from_le_bytes)
}

/// Strings longer than this are not metadata we want, and likely corruption.
const MAX_STRING: u64 = 16 << 20;

fn read_string(input: &mut impl Read) -> Result<String, GgufError> {
    let len = read_u64(input)?;
    if len > MAX_STRING {
        return Err(GgufError::Corrupt(format!("a string of {len} bytes")));
    }
    let mut bytes = vec![0_u8; len as usize];
    input
        .read_exact(&mut bytes)
        .map_err(|_| GgufError::Truncated)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Size in bytes of a fixed-size GGUF type, or None for strings and arrays.
fn fixed_size(kind: u32) -> Option<i64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn read_value(input: &mut (impl Read + Seek), kind: u32) -> Result<Option<Value>, GgufError> {
    let value = match kind {
        0 => Value::Int(read_bytes::<1>(input)?[0].into()),
        1 => Value::Int(i8::from_le_bytes(read_bytes(input)?).into()),
        2 => Value::Int(u16::from_le_bytes(read_bytes(input)?).into()),
        3 => Value::Int(i16::from_le_bytes(read_bytes(input)?).into()),
        4 => Value::Int(u32::from_le_bytes(read_bytes(input)?).into()),
        5 => Value::Int(i32::from_le_bytes(read_bytes(input)?).into()),
        6 => Value::Float(f32::from_le_bytes(read_bytes(input)?).into()),
        7 => Value::Bool(read_bytes::<1>(input)?[0] != 0),
        8 => Value::Text(read_string(input)?),
        9 => {
            skip_array(input)?;
            return Ok(None);
        }
        10 => Value::Int(u64::from_le_bytes(read_bytes(input)?).into()),
        11 => Value::Int(i64::from_le_bytes(read_bytes(input)?).into()),
        12 => Value::Float(f64::from_le_bytes(read_bytes(input)?)),
        other => return Err(GgufError::Corrupt(format!("unknown value type {other}"))),
    };
    Ok(Some(value))
}

fn skip_array(input: &mut (impl Read + Seek)) -> Result<(), GgufError> {
    let kind = read_u32(input)?;
    let len = read_u64(input)?;
    if let Some(size) = fixed_size(kind) {
        let bytes = i64::try_from(len)
            .ok()
            .and_then(|len| len.checked_mul(size))
            .ok_or_else(|| GgufError::Corrupt("an array too large".into()))?;
        return Ok(input.seek_relative(bytes)?);
    }
    for _ in 0..len {
        match kind {
            8 => {
                let len = read_u64(input)?;
                let len = i64::try_from(len)
                    .map_err(|_| GgufError::Corrupt("a string too large".into()))?;
                input.seek_relative(len)?;
            }
            9 => skip_array(input)?,
            other => return Err(GgufError::Corrupt(format!("unknown array type {other}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn string(text: &str) -> Vec<u8> {
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        bytes
    }

    fn file(entries: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3_u32.to_le_bytes());
        bytes.extend_from_slice(&0_u64.to_le_bytes());
        bytes.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (key, kind, value) in entries {
            bytes.extend(string(key));
            bytes.extend_from_slice(&kind.to_le_bytes());
            bytes.extend_from_slice(value);
        }
        bytes
    }

    #[test]
    fn scalars_are_read_and_arrays_skipped() {
        let mut tokens = 8_u32.to_le_bytes().to_vec();
        tokens.extend_from_slice(&2_u64.to_le_bytes());
        tokens.extend(string("<bos>"));
        tokens.extend(string("hello"));
        let bytes = file(&[
            ("general.architecture", 8, string("gemma3")),
            ("tokenizer.ggml.tokens", 9, tokens),
            ("general.file_type", 4, 15_u32.to_le_bytes().to_vec()),
            ("tokenizer.ggml.add_bos_token", 7, vec![1]),
        ]);
        let metadata = Metadata::parse(&mut Cursor::new(bytes)).unwrap();
        assert_eq!(metadata.text("general.architecture"), Some("gemma3"));
        assert_eq!(metadata.int("general.file_type"), Some(15));
        assert!(!metadata.contains("tokenizer.ggml.tokens"));
        assert!(metadata.contains("tokenizer.ggml.add_bos_token"));
    }

    #[test]
    fn a_file_that_is_not_gguf_is_an_error() {
        let error = Metadata::parse(&mut Cursor::new(b"PK\x03\x04....".to_vec())).unwrap_err();
        assert!(error.to_string().contains("not a GGUF file"), "{error}");
        let truncated = file(&[("general.name", 8, string("x"))]);
        let error = Metadata::parse(&mut Cursor::new(truncated[..truncated.len() - 1].to_vec()));
        assert!(error.is_err());
    }
}
