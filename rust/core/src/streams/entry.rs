//! Stream entries as the consumer hands them over: the entry id as two
//! numbers (cheap to keep, compare and send back in an XACK) and the fields
//! as bytes, in the order the producer wrote them. Parsed from the replies
//! of XREADGROUP and XAUTOCLAIM as the `redis` crate reads them (a
//! [`redis::Value`]); the crate's own `StreamId` keeps fields in a hash map
//! of `String` keys, which loses their order and refuses binary names.

use std::{fmt, str::FromStr};

use bytes::Bytes;
use redis::Value;

/// A stream entry id, `<milliseconds>-<sequence>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntryId {
    /// The milliseconds part.
    pub ms: u64,
    /// The sequence number within that millisecond.
    pub seq: u64,
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for EntryId {
    type Err = String;

    /// Parses `123-4` (or `123`, sequence 0, as Redis accepts it).
    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("'{text}' is not a stream entry id (expected <milliseconds>-<sequence>, e.g. 1700000000000-0)");
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u64>().map_err(|_| bad())
        };
        Ok(EntryId { ms: number(ms)?, seq: number(seq)? })
    }
}

impl redis::ToRedisArgs for EntryId {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        out.write_arg_fmt(self);
    }
}

impl redis::ToSingleRedisArg for EntryId {}

/// One entry: its id and its field/value pairs in the producer's order. A
/// field may repeat (a stream entry is a list of pairs, not a map).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Entry {
    /// The entry's id.
    pub id: EntryId,
    /// The field/value pairs, byte for byte.
    pub fields: Vec<(Bytes, Bytes)>,
}

impl Entry {
    /// The bytes of its names and values, for queue bounds.
    pub fn byte_len(&self) -> usize {
        self.fields.iter().map(|(name, value)| name.len() + value.len()).sum::<usize>() + 24
    }
}

/// What an entry in a reply was: a whole entry, or the id of one that is
/// still pending but was deleted from the stream meanwhile (XDEL, trimming),
/// whose fields Redis sends as nil.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// An entry with its fields.
    Entry(Entry),
    /// A pending entry that no longer exists: acknowledge it, there is nothing to deliver.
    Deleted(EntryId),
}

/// The entries of an XREADGROUP reply for one stream (we read one): RESP3
/// gives a map of stream name to entries, RESP2 an array of [name, entries]
/// pairs, and a BLOCK that timed out gives nil.
pub fn parse_read_reply(reply: Value) -> Result<Vec<Read>, String> {
    let per_stream = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs.into_iter().map(|(_, entries)| entries).collect::<Vec<_>>(),
        Value::Array(streams) => streams
            .into_iter()
            .map(|pair| match pair {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.swap_remove(1)),
                other => Err(format!("unexpected XREADGROUP stream reply: {other:?}")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("unexpected XREADGROUP reply: {}", kind(&other))),
    };
    let mut reads = Vec::new();
    for entries in per_stream {
        parse_entries(entries, &mut reads)?;
    }
    Ok(reads)
}

/// An XAUTOCLAIM reply: the cursor for the next call (`0-0` when the whole
/// pending list was scanned), the claimed entries, and the ids it found
/// deleted (Redis 7 removes those from the pending list itself).
pub fn parse_autoclaim_reply(reply: Value) -> Result<(EntryId, Vec<Read>, Vec<EntryId>), String> {
    let Value::Array(mut parts) = reply else {
        return Err(format!("unexpected XAUTOCLAIM reply: {}", kind(&reply)));
    };
    if !(2..=3).contains(&parts.len()) {
        return Err(format!("unexpected XAUTOCLAIM reply of {} parts", parts.len()));
    }
    let deleted = if parts.len() == 3 { ids(parts.pop().unwrap_or_default())? } else { Vec::new() };
    let mut reads = Vec::new();
    parse_entries(parts.pop().unwrap_or_default(), &mut reads)?;
    let cursor = id(&parts.pop().unwrap_or_default())?;
    Ok((cursor, reads, deleted))
}

fn parse_entries(entries: Value, reads: &mut Vec<Read>) -> Result<(), String> {
    let entries = match entries {
        Value::Array(entries) => entries,
        Value::Nil => return Ok(()),
        other => return Err(format!("unexpected list of entries: {}", kind(&other))),
    };
    reads.reserve(entries.len());
    for entry in entries {
        let Value::Array(mut parts) = entry else {
            // Redis 6's XAUTOCLAIM sends nil for a deleted entry, without its id: nothing to do.
            continue;
        };
        if parts.len() != 2 {
            return Err(format!("unexpected entry of {} parts", parts.len()));
        }
        let fields = parts.pop().unwrap_or_default();
        let id = id(&parts[0])?;
        let pairs = match fields {
            Value::Nil => {
                reads.push(Read::Deleted(id));
                continue;
            }
            Value::Array(values) => {
                if values.len() % 2 != 0 {
                    return Err(format!("entry {id} has an odd number of field names and values"));
                }
                let mut values = values.into_iter().map(bytes);
                let mut pairs = Vec::with_capacity(values.len() / 2);
                while let (Some(name), Some(value)) = (values.next(), values.next()) {
                    pairs.push((name?, value?));
                }
                pairs
            }
            Value::Map(map) => {
                map.into_iter().map(|(n, v)| Ok((bytes(n)?, bytes(v)?))).collect::<Result<_, String>>()?
            }
            other => return Err(format!("entry {id}: unexpected fields: {}", kind(&other))),
        };
        reads.push(Read::Entry(Entry { id, fields: pairs }));
    }
    Ok(())
}

fn ids(value: Value) -> Result<Vec<EntryId>, String> {
    match value {
        Value::Array(values) => values.iter().map(id).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(format!("unexpected list of ids: {}", kind(&other))),
    }
}

/// An entry id sent as a bulk or simple string.
pub fn id(value: &Value) -> Result<EntryId, String> {
    match value {
        Value::BulkString(bytes) => {
            std::str::from_utf8(bytes).map_err(|_| "an entry id is not text".to_string())?.parse()
        }
        Value::SimpleString(text) => text.parse(),
        other => Err(format!("unexpected entry id: {}", kind(other))),
    }
}

fn bytes(value: Value) -> Result<Bytes, String> {
    match value {
        Value::BulkString(bytes) => Ok(Bytes::from(bytes)),
        Value::SimpleString(text) => Ok(Bytes::from(text.into_bytes())),
        Value::Int(n) => Ok(Bytes::from(n.to_string().into_bytes())),
        other => Err(format!("unexpected field: {}", kind(&other))),
    }
}

/// A reply's kind, for errors (never its contents: they may be a game's data).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) => "a status",
        Value::Okay => "OK",
        Value::Map(_) => "a map",
        Value::ServerError(_) => "an error",
        _ => "another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![bulk(id), Value::Array(fields.iter().map(|f| bulk(f)).collect())])
    }

    #[test]
    fn ids_parse_print_and_order() {
        let id: EntryId = "1700000000000-7".parse().unwrap();
        assert_eq!(id, EntryId { ms: 1_700_000_000_000, seq: 7 });
        assert_eq!(id.to_string(), "1700000000000-7");
        assert_eq!("5".parse::<EntryId>().unwrap(), EntryId { ms: 5, seq: 0 });
        assert!("5-1".parse::<EntryId>().unwrap() < "5-2".parse().unwrap());
        assert!("10-0".parse::<EntryId>().unwrap() > "9-99".parse().unwrap());
        for bad in ["", "-", "1-", "-1", "a-1", "1-2-3", "1 -2", "99999999999999999999-0", "+1-0"] {
            let error = bad.parse::<EntryId>().unwrap_err();
            assert!(error.contains("not a stream entry id"), "{bad}: {error}");
        }
    }

    #[test]
    fn read_replies_keep_field_order_and_binary_bytes_in_resp3_and_resp2() {
        let entries = Value::Array(vec![
            entry("1-0", &["z", "1", "a", "2", "z", "3"]),
            Value::Array(vec![bulk("2-0"), Value::Array(vec![Value::BulkString(vec![0xff, 0]), bulk("x")])]),
            Value::Array(vec![bulk("3-0"), Value::Nil]),
        ]);
        let resp3 = Value::Map(vec![(bulk("s"), entries.clone())]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries])]);
        for reply in [resp3, resp2] {
            let reads = parse_read_reply(reply).unwrap();
            assert_eq!(reads.len(), 3);
            let Read::Entry(first) = &reads[0] else { panic!("{reads:?}") };
            let names: Vec<&[u8]> = first.fields.iter().map(|(n, _)| &n[..]).collect();
            assert_eq!(names, [b"z", b"a", b"z"], "producer's order, repeats kept");
            let Read::Entry(second) = &reads[1] else { panic!("{reads:?}") };
            assert_eq!(&second.fields[0].0[..], &[0xff, 0]);
            assert_eq!(reads[2], Read::Deleted(EntryId { ms: 3, seq: 0 }));
        }
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty(), "a BLOCK that timed out");
        assert!(parse_read_reply(Value::Map(vec![(bulk("s"), Value::Array(vec![]))])).unwrap().is_empty());
    }

    #[test]
    fn autoclaim_replies_give_cursor_entries_and_deleted_ids() {
        let reply = Value::Array(vec![
            bulk("7-0"),
            Value::Array(vec![entry("5-0", &["k", "v"]), Value::Nil]),
            Value::Array(vec![bulk("6-0")]),
        ]);
        let (cursor, reads, deleted) = parse_autoclaim_reply(reply).unwrap();
        assert_eq!(cursor, EntryId { ms: 7, seq: 0 });
        assert_eq!(reads.len(), 1, "Redis 6's nil entries are skipped");
        assert_eq!(deleted, vec![EntryId { ms: 6, seq: 0 }]);
        let done = parse_autoclaim_reply(Value::Array(vec![bulk("0-0"), Value::Array(vec![])])).unwrap();
        assert_eq!(done.0, EntryId::default());
    }

    #[test]
    fn hostile_replies_are_errors_that_do_not_show_the_data() {
        let secret = "hunter2";
        for reply in [
            bulk(secret),
            Value::Map(vec![(bulk("s"), bulk(secret))]),
            Value::Map(vec![(bulk("s"), Value::Array(vec![Value::Array(vec![bulk("1-0")])]))]),
            Value::Map(vec![(bulk("s"), Value::Array(vec![entry("1-0", &["odd", secret, "x"])]))]),
            Value::Map(vec![(bulk("s"), Value::Array(vec![entry(secret, &[])]))]),
            Value::Map(vec![(
                bulk("s"),
                Value::Array(vec![Value::Array(vec![bulk("1-0"), Value::Array(vec![Value::Double(1.0), bulk("v")])])]),
            )]),
        ] {
            let error = parse_read_reply(reply).unwrap_err();
            assert!(!error.contains(secret) || error.contains("not a stream entry id"), "{error}");
        }
        assert!(parse_autoclaim_reply(Value::Array(vec![bulk("0-0")])).is_err());
        assert!(parse_autoclaim_reply(Value::Int(3)).is_err());
    }
}
