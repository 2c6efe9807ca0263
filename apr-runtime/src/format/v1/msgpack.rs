//! A small, bounded MessagePack reader for the v1 metadata block.
//!
//! It reads the subset aprender writes (maps with string keys holding strings,
//! numbers, booleans, nil, nested maps and arrays) and turns every value into a
//! [`serde_json::Value`] so `inspect` can print it as it is. Binary blobs become
//! arrays of byte values and extension values become `{"ext_type", "data"}`
//! objects. Nesting is limited to [`MAX_DEPTH`] levels and every length is
//! checked against the bytes that remain before anything is allocated, so no
//! input can exhaust the stack or memory, and nothing here panics.

use serde_json::{Map, Number, Value};

/// How deeply maps and arrays may nest inside the metadata.
pub const MAX_DEPTH: usize = 32;

/// Why a metadata block is not the MessagePack we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgpackFault {
    /// Byte offset inside the metadata block where reading failed.
    pub offset: usize,
    /// What was wrong there.
    pub reason: String,
}

/// Decodes `bytes` as one MessagePack map with string keys and requires that
/// the map uses every byte.
pub fn decode_map(bytes: &[u8]) -> Result<Map<String, Value>, MsgpackFault> {
    let mut reader = MsgpackReader { bytes, pos: 0 };
    let first = reader.peek()?;
    if !is_map_marker(first) {
        return Err(MsgpackFault {
            offset: 0,
            reason: format!("expected a map, found marker byte 0x{first:02x}"),
        });
    }
    let value = reader.value(0)?;
    if reader.pos != bytes.len() {
        return Err(MsgpackFault {
            offset: reader.pos,
            reason: format!(
                "{} bytes are left over after the metadata map",
                bytes.len() - reader.pos
            ),
        });
    }
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(MsgpackFault {
            offset: 0,
            reason: "expected a map".to_string(),
        }),
    }
}

/// Whether `marker` starts a map (fixmap, map16, map32).
fn is_map_marker(marker: u8) -> bool {
    matches!(marker, 0x80..=0x8f | 0xde | 0xdf)
}

struct MsgpackReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> MsgpackReader<'a> {
    fn fault(&self, reason: impl Into<String>) -> MsgpackFault {
        MsgpackFault {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn peek(&self) -> Result<u8, MsgpackFault> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.fault("the metadata ends where a value should start"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackFault> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                self.fault(format!(
                    "a value needs {n} bytes but only {} remain",
                    self.remaining()
                ))
            })?;
        let slice = self.bytes.get(self.pos..end).ok_or_else(|| {
            self.fault(format!(
                "a value needs {n} bytes but only {} remain",
                self.remaining()
            ))
        })?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MsgpackFault> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, MsgpackFault> {
        Ok(u8::from_be_bytes(self.array::<1>()?))
    }

    fn u16(&mut self) -> Result<u16, MsgpackFault> {
        Ok(u16::from_be_bytes(self.array::<2>()?))
    }

    fn u32(&mut self) -> Result<u32, MsgpackFault> {
        Ok(u32::from_be_bytes(self.array::<4>()?))
    }

    fn u64(&mut self) -> Result<u64, MsgpackFault> {
        Ok(u64::from_be_bytes(self.array::<8>()?))
    }

    fn len(&mut self, width: u8) -> Result<usize, MsgpackFault> {
        let len = match width {
            1 => u64::from(self.u8()?),
            2 => u64::from(self.u16()?),
            _ => u64::from(self.u32()?),
        };
        usize::try_from(len).map_err(|_| self.fault("a length does not fit in memory"))
    }

    fn string(&mut self, len: usize) -> Result<String, MsgpackFault> {
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| MsgpackFault {
                offset: start,
                reason: "a string is not valid UTF-8".to_string(),
            })
    }

    fn binary(&mut self, len: usize) -> Result<Value, MsgpackFault> {
        let bytes = self.take(len)?;
        Ok(Value::Array(
            bytes.iter().map(|b| Value::from(u64::from(*b))).collect(),
        ))
    }

    fn extension(&mut self, len: usize) -> Result<Value, MsgpackFault> {
        let ext_type = i8::from_be_bytes(self.array::<1>()?);
        let data = self.binary(len)?;
        let mut map = Map::new();
        map.insert("ext_type".to_string(), Value::from(i64::from(ext_type)));
        map.insert("data".to_string(), data);
        Ok(Value::Object(map))
    }

    fn float(value: f64) -> Value {
        // JSON has no NaN or infinity: such metadata values read as null.
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    }

    /// Checks that `count` items, each at least `min_bytes` long, can still
    /// fit in the bytes that remain (so a hostile count allocates nothing).
    fn check_count(&self, count: usize, min_bytes: usize) -> Result<(), MsgpackFault> {
        match count.checked_mul(min_bytes) {
            Some(needed) if needed <= self.remaining() => Ok(()),
            _ => Err(self.fault(format!(
                "a container claims {count} items but only {} bytes remain",
                self.remaining()
            ))),
        }
    }

    fn array_value(&mut self, count: usize, depth: usize) -> Result<Value, MsgpackFault> {
        self.check_count(count, 1)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map_value(&mut self, count: usize, depth: usize) -> Result<Value, MsgpackFault> {
        self.check_count(count, 2)?;
        let mut map = Map::new();
        for _ in 0..count {
            let key = self.key()?;
            let value = self.value(depth + 1)?;
            // Duplicate keys: the last one wins, as in v2 metadata.
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    /// A map key: a string, or a number / bool / nil written as text.
    fn key(&mut self) -> Result<String, MsgpackFault> {
        let start = self.pos;
        let marker = self.peek()?;
        if matches!(marker, 0x80..=0x9f | 0xc4..=0xc9 | 0xd4..=0xd8 | 0xdc..=0xdf) {
            return Err(self.fault(format!(
                "a map key must be a string or a number, found marker byte 0x{marker:02x}"
            )));
        }
        match self.value(MAX_DEPTH)? {
            Value::String(s) => Ok(s),
            Value::Null => Ok("null".to_string()),
            other => {
                let text = other.to_string();
                if text.is_empty() {
                    Err(MsgpackFault {
                        offset: start,
                        reason: "an empty map key".to_string(),
                    })
                } else {
                    Ok(text)
                }
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, MsgpackFault> {
        if depth > MAX_DEPTH {
            return Err(self.fault(format!(
                "maps and arrays nest deeper than {MAX_DEPTH} levels"
            )));
        }
        let marker_at = self.pos;
        let marker = self.u8()?;
        let value = match marker {
            0x00..=0x7f => Value::from(u64::from(marker)),
            0x80..=0x8f => self.map_value(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.array_value(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => Value::String(self.string(usize::from(marker & 0x1f))?),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let len = self.len(1 << (marker - 0xc4))?;
                self.binary(len)?
            }
            0xc7..=0xc9 => {
                let len = self.len(1 << (marker - 0xc7))?;
                self.extension(len)?
            }
            0xca => Self::float(f64::from(f32::from_bits(self.u32()?))),
            0xcb => Self::float(f64::from_bits(self.u64()?)),
            0xcc => Value::from(u64::from(self.u8()?)),
            0xcd => Value::from(u64::from(self.u16()?)),
            0xce => Value::from(u64::from(self.u32()?)),
            0xcf => Value::from(self.u64()?),
            0xd0 => Value::from(i64::from(i8::from_be_bytes(self.array::<1>()?))),
            0xd1 => Value::from(i64::from(i16::from_be_bytes(self.array::<2>()?))),
            0xd2 => Value::from(i64::from(i32::from_be_bytes(self.array::<4>()?))),
            0xd3 => Value::from(i64::from_be_bytes(self.array::<8>()?)),
            0xd4..=0xd8 => self.extension(1 << (marker - 0xd4))?,
            0xd9..=0xdb => {
                let len = self.len(1 << (marker - 0xd9))?;
                Value::String(self.string(len)?)
            }
            0xdc | 0xdd => {
                let len = self.len(if marker == 0xdc { 2 } else { 4 })?;
                self.array_value(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.len(if marker == 0xde { 2 } else { 4 })?;
                self.map_value(len, depth)?
            }
            0xe0..=0xff => Value::from(i64::from(i8::from_be_bytes([marker]))),
            0xc1 => {
                return Err(MsgpackFault {
                    offset: marker_at,
                    reason: "marker byte 0xc1 is never used in MessagePack".to_string(),
                })
            }
        };
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_types_aprender_writes() {
        // {"a": "xy", "b": 1.5 (f64), "c": true, "d": {"e": -3}, "f": [1, 300], "g": nil}
        let mut bytes = vec![0x86, 0xa1, b'a', 0xa2, b'x', b'y', 0xa1, b'b', 0xcb];
        bytes.extend_from_slice(&1.5f64.to_be_bytes());
        bytes.extend_from_slice(&[0xa1, b'c', 0xc3, 0xa1, b'd', 0x81, 0xa1, b'e', 0xfd]);
        bytes.extend_from_slice(&[0xa1, b'f', 0x92, 0x01, 0xcd, 0x01, 0x2c]);
        bytes.extend_from_slice(&[0xa1, b'g', 0xc0]);
        let map = decode_map(&bytes).unwrap();
        assert_eq!(
            Value::Object(map),
            json!({"a": "xy", "b": 1.5, "c": true, "d": {"e": -3}, "f": [1, 300], "g": null})
        );
    }

    #[test]
    fn rejects_trailing_bytes_and_truncation() {
        assert!(decode_map(&[0x80, 0x00]).is_err());
        assert!(decode_map(&[0x81, 0xa1, b'a']).is_err());
        assert!(decode_map(&[0x81, 0xa5, b'a']).is_err());
        assert!(decode_map(&[]).is_err());
        assert!(decode_map(&[0x92, 0x01, 0x02]).is_err());
    }

    #[test]
    fn hostile_counts_and_depth_fail_cleanly() {
        assert!(decode_map(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
        let mut deep = vec![0x81, 0xa1, b'k'];
        deep.extend(std::iter::repeat_n(0x91, 100));
        deep.push(0x00);
        let fault = decode_map(&deep).unwrap_err();
        assert!(fault.reason.contains("nest"), "{fault:?}");
    }

    #[test]
    fn non_finite_floats_read_as_null() {
        let mut bytes = vec![0x81, 0xa1, b'n', 0xca];
        bytes.extend_from_slice(&f32::NAN.to_be_bytes());
        assert_eq!(
            Value::Object(decode_map(&bytes).unwrap()),
            json!({"n": null})
        );
    }
}
