//! Corruption tests: garble or truncate the tail of the data files, reopen, and get either a
//! clear error or a clean truncation to the last valid record, never garbage.
//!
//! - Journal: a child process appends a few thousand records and exits without closing the
//!   log, so everything is still in fjall's journal. The parent parses that journal (to know
//!   which bytes hold which records), then mangles its tail in many ways, each on a fresh copy
//!   of the directory, and reopens.
//! - Tables: after a clean close and a forced flush, bytes in the middle of a table file are
//!   flipped; reading everything back must fail or return exactly what was written.
//!
//! fjall's journal is preallocated (64 MiB of zeros after the data), so "the tail" is the end
//! of the written data, not the end of the file; both are tested.

// A synchronous test: it drives child processes from plain threads, where the standard clock
// and sleep are right (`clippy.toml` bans them in async code).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use common::{ChildAppender, PARTITIONS, random_u64};
use draft_log::{Error, Log, LogConfig, NewRecord, Offset, PartitionName};

/// The child's entry point (see `crash.rs`): an appender when `DRAFT_LOG_CHILD_DIR` is set.
#[test]
fn corruption_child_process() {
    common::child_entry_point();
}

/// How many records the child appends before it exits without closing the log.
const CHILD_RECORDS: usize = 3000;

// ---------------------------------------------------------------------------------------------
// Directory helpers
// ---------------------------------------------------------------------------------------------

/// Copies a directory tree.
fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("create the copy");
    for entry in fs::read_dir(src).expect("read dir") {
        let entry = entry.expect("dir entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).expect("copy a file");
        }
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The newest journal (`<n>.jnl` with the highest `n`) in fjall's data directory.
fn newest_journal(dir: &Path) -> PathBuf {
    let mut journals: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .expect("read the data dir")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let id = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jnl")?
                .parse()
                .ok()?;
            Some((id, path))
        })
        .collect();
    journals.sort();
    journals
        .pop()
        .expect("fjall keeps a journal in the data directory")
        .1
}

// ---------------------------------------------------------------------------------------------
// A minimal reader of fjall 3.1's journal format, to know which bytes hold which records.
// Format (fjall src/journal/entry.rs): a batch is Start, N Items, End.
//   Start: tag 1, item count u32, seqno u64
//   Item:  tag 2, value type u8, compression u8, keyspace id u64, key len u16,
//          value len u32, on-disk value len u32, key, value
//   End:   tag 3, checksum u64, magic "FJL\x03"
//   Clear: tag 4, keyspace id u64
// Tag 0 is the preallocated, never written part of the file.
// ---------------------------------------------------------------------------------------------

struct JournalItem {
    keyspace: u64,
    key: Vec<u8>,
    value: Vec<u8>,
}

struct JournalBatch {
    /// The byte just past this batch's End marker.
    end: usize,
    items: Vec<JournalItem>,
}

struct ParsedJournal {
    batches: Vec<JournalBatch>,
    /// Where the written data ends (the first zero tag).
    data_end: usize,
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

fn parse_journal(bytes: &[u8]) -> ParsedJournal {
    let format_changed = |pos: usize, what: &str| -> ! {
        panic!("journal byte {pos}: {what}; has fjall's journal format changed?")
    };
    let mut batches = Vec::new();
    let mut items = Vec::new();
    let mut in_batch = false;
    let mut pos = 0;
    while pos < bytes.len() {
        match bytes[pos] {
            0 => break,
            1 => {
                if in_batch {
                    format_changed(pos, "batch start inside a batch");
                }
                in_batch = true;
                pos += 1 + 4 + 8;
            }
            2 => {
                let h = &bytes[pos..pos + 21];
                if h[2] != 0 {
                    format_changed(pos, "compressed journal value");
                }
                let keyspace = le_u64(&h[3..11]);
                let key_len = usize::from(u16::from_le_bytes([h[11], h[12]]));
                let value_len = le_u32(&h[17..21]) as usize;
                let key_start = pos + 21;
                let value_start = key_start + key_len;
                items.push(JournalItem {
                    keyspace,
                    key: bytes[key_start..value_start].to_vec(),
                    value: bytes[value_start..value_start + value_len].to_vec(),
                });
                pos = value_start + value_len;
            }
            3 => {
                if &bytes[pos + 9..pos + 13] != b"FJL\x03" {
                    format_changed(pos, "end marker without its magic");
                }
                pos += 1 + 8 + 4;
                batches.push(JournalBatch {
                    end: pos,
                    items: std::mem::take(&mut items),
                });
                in_batch = false;
            }
            4 => pos += 1 + 8,
            tag => format_changed(pos, &format!("unknown tag {tag}")),
        }
    }
    assert!(!in_batch, "the journal ends inside a batch");
    ParsedJournal {
        batches,
        data_end: pos,
    }
}

/// Where each acknowledged record sits in the journal.
struct JournalMap {
    /// `(partition, offset)` → the end of the journal batch that holds it.
    batch_end: HashMap<(String, u64), usize>,
    /// Every batch: its end and its records (to check that batches are all-or-nothing).
    batches: Vec<(usize, Vec<(String, u64)>)>,
    data_end: usize,
}

fn map_journal(bytes: &[u8], acks: &[(String, u64, String)]) -> JournalMap {
    let parsed = parse_journal(bytes);
    let items = || parsed.batches.iter().flat_map(|b| &b.items);
    // The meta keyspace holds `n<name>` → partition id (u32 big-endian).
    let mut pid_names = HashMap::new();
    let mut meta_keyspace = None;
    for item in items() {
        for name in PARTITIONS {
            if item.key == [b"n", name.as_bytes()].concat() && item.value.len() == 4 {
                let pid = u32::from_be_bytes(item.value[..].try_into().expect("4 bytes"));
                pid_names.insert(pid, name.to_owned());
                meta_keyspace = Some(item.keyspace);
            }
        }
    }
    assert_eq!(
        pid_names.len(),
        PARTITIONS.len(),
        "both partitions are named in the journal"
    );
    // The records keyspace is the one whose values hold the acknowledged payloads.
    let probe = acks[0].2.as_bytes();
    let records_keyspace = items()
        .find(|i| {
            matches!(i.key.len(), 12 | 20) && i.value.windows(probe.len()).any(|w| w == probe)
        })
        .map(|i| i.keyspace)
        .expect("an acknowledged payload is in the journal");
    assert_ne!(Some(records_keyspace), meta_keyspace);
    let mut batch_end = HashMap::new();
    let mut batches = Vec::new();
    for batch in &parsed.batches {
        let mut records = Vec::new();
        for item in batch
            .items
            .iter()
            .filter(|i| i.keyspace == records_keyspace)
        {
            // A single record's key is `pid ++ offset`, a frame's `pid ++ first ++ last`.
            let pid = u32::from_be_bytes(item.key[..4].try_into().expect("pid"));
            let first = u64::from_be_bytes(item.key[4..12].try_into().expect("offset"));
            let last = item.key.get(12..20).map_or(first, |last| {
                u64::from_be_bytes(last.try_into().expect("last offset"))
            });
            let name = pid_names.get(&pid).expect("a known partition id").clone();
            for offset in first..=last {
                batch_end.insert((name.clone(), offset), batch.end);
                records.push((name.clone(), offset));
            }
        }
        batches.push((batch.end, records));
    }
    for (p, offset, _) in acks {
        assert!(
            batch_end.contains_key(&(p.clone(), *offset)),
            "acknowledged {p}/{offset} is in the journal"
        );
    }
    JournalMap {
        batch_end,
        batches,
        data_end: parsed.data_end,
    }
}

// ---------------------------------------------------------------------------------------------
// Checking a reopened log
// ---------------------------------------------------------------------------------------------

/// What reopening a mangled copy gave.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Outcome {
    /// `Log::open` failed with a clear error (its message).
    OpenError(String),
    /// It opened, and reading reported corruption (a clear error).
    ReadError,
    /// It opened with every record intact: `lost` acknowledged records were dropped from the
    /// tail (a clean truncation).
    Recovered { lost: usize },
}

/// Reopens `dir` and checks it against what the child acknowledged. `mangled_from` is the first
/// journal byte the mangling changed or removed: every batch that ends at or before it was not
/// touched, so its records must survive if the log opens.
fn reopen_and_check(
    case: &str,
    dir: &Path,
    acks: &[(String, u64, String)],
    map: &JournalMap,
    mangled_from: usize,
) -> Outcome {
    let opened = catch_unwind(AssertUnwindSafe(|| Log::open(LogConfig::new(dir))))
        .unwrap_or_else(|_| panic!("{case}: Log::open panicked instead of returning an error"));
    let log = match opened {
        Err(e) => {
            eprintln!("{case}: open refused with a clear error: {e}");
            assert!(e.is_fatal(), "{case}: {e:?}");
            return Outcome::OpenError(e.to_string());
        }
        Ok(log) => log,
    };
    let acked: HashMap<(&str, u64), &str> = acks
        .iter()
        .map(|(p, o, payload)| ((p.as_str(), *o), payload.as_str()))
        .collect();
    let mut sizes: HashMap<&str, u64> = HashMap::new();
    for name in PARTITIONS {
        let partition = PartitionName::new(name).expect("name");
        let read = catch_unwind(AssertUnwindSafe(|| {
            log.read(&partition, Offset(0), usize::MAX)
        }))
        .unwrap_or_else(|_| panic!("{case}: reading {name} panicked"));
        let records = match read {
            Err(e) => {
                eprintln!("{case}: read of {name} refused with a clear error: {e}");
                assert!(
                    matches!(e, Error::Corrupt { .. } | Error::Storage { .. }),
                    "{case}: {e:?}"
                );
                return Outcome::ReadError;
            }
            Ok(records) => records,
        };
        for (i, record) in records.iter().enumerate() {
            assert_eq!(
                record.offset,
                Offset(i as u64),
                "{case}: {name} dense from 0"
            );
            // The child acknowledged every record it wrote, so every record must be one of
            // them, byte for byte: anything else is garbage.
            let expected = acked.get(&(name, i as u64)).unwrap_or_else(|| {
                panic!("{case}: {name}/{i} was never acknowledged: garbage record")
            });
            assert_eq!(
                &record.payload[..],
                expected.as_bytes(),
                "{case}: {name}/{i} payload"
            );
        }
        let head = log.head(&partition).map_or(0, |h| h.next.0);
        assert_eq!(head, records.len() as u64, "{case}: {name} head = records");
        sizes.insert(name, head);
    }
    let present = |p: &str, o: u64| o < sizes.get(p).copied().unwrap_or(0);
    // Records the mangling could not have touched survive.
    for (p, o, _) in acks {
        let end = map.batch_end[&(p.clone(), *o)];
        if end <= mangled_from {
            assert!(
                present(p, *o),
                "{case}: {p}/{o} (batch ends at byte {end}, mangling starts at \
                 {mangled_from}) was lost"
            );
        }
    }
    // A batch (one group commit) is atomic: all of its records or none.
    for (_, batch) in &map.batches {
        let n = batch.iter().filter(|(p, o)| present(p, *o)).count();
        assert!(
            n == 0 || n == batch.len(),
            "{case}: a batch survived in part ({n} of {} records)",
            batch.len()
        );
    }
    // The log takes appends again, dense after what it recovered.
    for name in PARTITIONS {
        let partition = PartitionName::new(name).expect("name");
        let ack = log
            .append_blocking(&partition, vec![NewRecord::new("after")])
            .expect("append after recovery");
        assert_eq!(
            ack.first,
            Offset(sizes[name]),
            "{case}: {name} appends continue densely"
        );
    }
    drop(log);
    let lost = acks.iter().filter(|(p, o, _)| !present(p, *o)).count();
    Outcome::Recovered { lost }
}

/// Runs the child once and returns its directory, its acknowledgements, the newest journal
/// and the map of that journal.
fn child_journal() -> (
    tempfile::TempDir,
    Vec<(String, u64, String)>,
    PathBuf,
    JournalMap,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let acks = ChildAppender::spawn("corruption_child_process", dir.path(), CHILD_RECORDS).wait();
    eprintln!(
        "child appended {} records in {:?}",
        acks.len(),
        started.elapsed()
    );
    assert!(
        acks.len() >= CHILD_RECORDS,
        "the child appended {}",
        acks.len()
    );
    let journal = newest_journal(dir.path());
    let bytes = fs::read(&journal).expect("read the journal");
    let map = map_journal(&bytes, &acks);
    assert_eq!(
        map.batch_end.len(),
        acks.len(),
        "the journal holds exactly the acknowledged records (nothing flushed to tables)"
    );
    eprintln!(
        "journal {}: {} data bytes in a {}-byte file, {} batches, {} records",
        journal.display(),
        map.data_end,
        bytes.len(),
        map.batches.len(),
        acks.len()
    );
    (dir, acks, journal, map)
}

/// A mangling of the journal file: returns the first byte it changes or removes.
type Mangle<'a> = (String, Box<dyn Fn(&mut Vec<u8>) -> usize + 'a>);

/// Applies each mangling to a fresh copy of the child's directory, reopens and checks it.
fn run_cases(
    original: &Path,
    journal: &Path,
    acks: &[(String, u64, String)],
    map: &JournalMap,
    cases: Vec<Mangle<'_>>,
) -> Vec<(String, Outcome)> {
    let relative = journal
        .strip_prefix(original)
        .expect("journal inside the dir");
    let mut outcomes = Vec::new();
    for (case, mangle) in cases {
        let copy = tempfile::tempdir().expect("temp dir");
        copy_dir(original, copy.path());
        let path = copy.path().join(relative);
        let mut bytes = fs::read(&path).expect("read journal");
        let from = mangle(&mut bytes);
        fs::write(&path, &bytes).expect("write the mangled journal");
        let started = std::time::Instant::now();
        let outcome = reopen_and_check(&case, copy.path(), acks, map, from);
        eprintln!("{case}: {outcome:?} ({:?})", started.elapsed());
        outcomes.push((case, outcome));
    }
    outcomes
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    // xorshift: reproducible from the printed seed.
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// (a) The journal's tail
// ---------------------------------------------------------------------------------------------

/// A torn tail (the last bytes never reached the disk), as truncation or as zeros (the file is
/// preallocated, so a torn write leaves zeros): fjall must drop the torn batch and open with
/// every complete batch before it, never fail and never return a partial batch.
#[test]
fn torn_journal_tail_truncates_to_the_last_complete_batch() {
    let (dir, acks, journal, map) = child_journal();
    let end = map.data_end;
    let mut cases: Vec<Mangle<'_>> = vec![("untouched copy".to_owned(), Box::new(|_| usize::MAX))];
    for n in [1usize, 4, 9, 13, 50, 200, 777, 5000, 40_000] {
        cases.push((
            format!("truncate last {n} bytes"),
            Box::new(move |b: &mut Vec<u8>| {
                b.truncate(end - n);
                end - n
            }),
        ));
        cases.push((
            format!("zero last {n} bytes"),
            Box::new(move |b: &mut Vec<u8>| {
                b[end - n..end].fill(0);
                end - n
            }),
        ));
    }
    // Truncated exactly at a batch boundary: nothing is torn, nothing may be lost.
    let boundary = map.batches[map.batches.len() / 2].0;
    cases.push((
        "truncate at a batch boundary".to_owned(),
        Box::new(move |b: &mut Vec<u8>| {
            b.truncate(boundary);
            boundary
        }),
    ));
    let outcomes = run_cases(dir.path(), &journal, &acks, &map, cases);
    for (case, outcome) in &outcomes {
        match outcome {
            Outcome::Recovered { .. } => {}
            // fjall 3.1.13 `debug_assert`s that an entry's two length fields agree
            // (journal/entry.rs:190); zeros torn into an entry header trip it in debug builds
            // only. Release builds read on, hit the zero tag and truncate. `Store::open` turns
            // the panic into this error; any other error is a failure.
            Outcome::OpenError(e) if cfg!(debug_assertions) && e.contains("panicked") => {
                eprintln!("{case}: fjall's debug assertion (release builds truncate): {e}");
            }
            other => panic!("{case}: a torn tail must recover cleanly, got {other:?}"),
        }
    }
    assert_eq!(
        outcomes[0].1,
        Outcome::Recovered { lost: 0 },
        "the control copy loses nothing"
    );
    // Cutting into the data must lose the records of the cut batch: this proves the mangled
    // bytes were the ones recovery reads.
    assert!(
        outcomes
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Recovered { lost } if *lost > 0)),
        "no case lost anything: the mangling missed the journal's data"
    );
}

/// Bytes flipped in the last ~200 bytes of the journal data: a clear error (fjall's batch
/// checksum) or a clean truncation, never a changed record.
#[test]
fn flipped_bytes_in_the_journal_tail_are_an_error_or_a_truncation() {
    let (dir, acks, journal, map) = child_journal();
    let end = map.data_end;
    let mut cases: Vec<Mangle<'_>> = Vec::new();
    for k in [
        1usize, 2, 4, 5, 8, 12, 13, 14, 17, 20, 30, 45, 64, 100, 128, 150, 199, 200,
    ] {
        cases.push((
            format!("flip byte at end-{k}"),
            Box::new(move |b: &mut Vec<u8>| {
                b[end - k] ^= 0xff;
                end - k
            }),
        ));
    }
    let seed = random_u64();
    for round in 0..6u64 {
        let noise = random_bytes(16, seed.wrapping_add(round));
        cases.push((
            format!("flip 8 random bytes in the last 200 (seed {seed:#x}+{round})"),
            Box::new(move |b: &mut Vec<u8>| {
                let mut first = usize::MAX;
                for pair in noise.chunks(2) {
                    let at = end - 1 - usize::from(pair[0]) % 200;
                    b[at] ^= pair[1] | 1;
                    first = first.min(at);
                }
                first
            }),
        ));
    }
    // The last batch's Start entry (tag, item count u32, seqno u64) is outside fjall's batch
    // checksum, which covers the items only.
    let start = map.batches.iter().rev().nth(1).map_or(0, |b| b.0);
    for (what, at, mask) in [
        ("item count", start + 1, 0x01u8),
        ("sequence number, low byte", start + 5, 0x01),
        ("sequence number, high byte", start + 12, 0x40),
    ] {
        cases.push((
            format!("flip the last batch's {what}"),
            Box::new(move |b: &mut Vec<u8>| {
                assert_eq!(b[start], 1, "a batch starts at {start}");
                b[at] ^= mask;
                at
            }),
        ));
    }
    // An older sequence number than the batches before it: the batch's newer partition
    // statistics would lose to older ones.
    cases.push((
        "set the last batch's sequence number to 1".to_owned(),
        Box::new(move |b: &mut Vec<u8>| {
            b[start + 5..start + 13].copy_from_slice(&1u64.to_le_bytes());
            start + 5
        }),
    ));
    let outcomes = run_cases(dir.path(), &journal, &acks, &map, cases);
    let errors = outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Recovered { .. }))
        .count();
    eprintln!(
        "flipped bytes: {errors} clear errors, {} clean recoveries",
        outcomes.len() - errors
    );
}

/// Garbage after the journal's last batch (where a torn or stray write would land): a clear
/// error or every acknowledged record, never a garbage record.
#[test]
fn garbage_after_the_journal_tail_is_an_error_or_ignored() {
    let (dir, acks, journal, map) = child_journal();
    let end = map.data_end;
    let last_batch_start = map.batches.iter().rev().nth(1).map_or(0, |b| b.0);
    let seed = random_u64();
    let mut cases: Vec<Mangle<'_>> = Vec::new();
    for (i, n) in [1usize, 7, 16, 300, 4096].into_iter().enumerate() {
        let garbage = random_bytes(n, seed.wrapping_add(i as u64));
        cases.push((
            format!("{n} random bytes after the data (seed {seed:#x}+{i})"),
            Box::new(move |b: &mut Vec<u8>| {
                b[end..end + garbage.len()].copy_from_slice(&garbage);
                end
            }),
        ));
    }
    for tag in 1u8..=4 {
        let garbage = random_bytes(64, seed.wrapping_add(100 + u64::from(tag)));
        cases.push((
            format!("tag {tag} then 64 random bytes after the data"),
            Box::new(move |b: &mut Vec<u8>| {
                b[end] = tag;
                b[end + 1..end + 1 + garbage.len()].copy_from_slice(&garbage);
                end
            }),
        ));
    }
    cases.push((
        "random bytes at the end of the preallocated file".to_owned(),
        Box::new(move |b: &mut Vec<u8>| {
            let len = b.len();
            b[len - 100..].copy_from_slice(&random_bytes(100, seed));
            end
        }),
    ));
    cases.push((
        "garbage appended past the preallocated length".to_owned(),
        Box::new(move |b: &mut Vec<u8>| {
            b.extend(random_bytes(1000, seed ^ 0x55));
            end
        }),
    ));
    // A copy of the last batch with one payload byte changed: a well-formed batch whose
    // checksum fails.
    cases.push((
        "last batch repeated with a changed byte".to_owned(),
        Box::new(move |b: &mut Vec<u8>| {
            let copy = b[last_batch_start..end].to_vec();
            let len = copy.len();
            b[end..end + len].copy_from_slice(&copy);
            b[end + len - 40] ^= 0x20;
            end
        }),
    ));
    let outcomes = run_cases(dir.path(), &journal, &acks, &map, cases);
    for (case, outcome) in &outcomes {
        // Nothing before the data's end was touched: if the log opens, nothing is lost.
        if let Outcome::Recovered { lost } = outcome {
            assert_eq!(*lost, 0, "{case}: garbage after the data lost records");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Table files
// ---------------------------------------------------------------------------------------------

const TABLE_RECORDS: u64 = 100_000;

fn table_payload(i: u64) -> String {
    format!("record-{i:09}-{}", "t".repeat(180))
}

/// Reads everything from a log in chunks and checks it is exactly what was written; returns
/// how many records were read, or the error that stopped reading.
fn read_all_tables(case: &str, log: &Log, partition: &PartitionName) -> Result<u64, Error> {
    let mut from = Offset(0);
    loop {
        let chunk = catch_unwind(AssertUnwindSafe(|| log.read(partition, from, 10_000)))
            .unwrap_or_else(|_| panic!("{case}: read panicked instead of returning an error"))?;
        if chunk.is_empty() {
            return Ok(from.0);
        }
        for record in &chunk {
            assert_eq!(record.offset, from, "{case}: dense offsets");
            assert_eq!(
                &record.payload[..],
                table_payload(from.0).as_bytes(),
                "{case}: record {from} differs from what was written: garbage"
            );
            from = from.next();
        }
    }
}

#[test]
fn flipped_bytes_in_a_table_file_are_an_error_or_harmless() {
    let dir = tempfile::tempdir().expect("temp dir");
    let partition = PartitionName::new("tables").expect("name");
    {
        let log = Log::open(LogConfig::new(dir.path())).expect("open");
        for chunk in 0..TABLE_RECORDS / 1000 {
            let batch = (chunk * 1000..(chunk + 1) * 1000)
                .map(|i| NewRecord::new(table_payload(i)))
                .collect();
            log.append_blocking(&partition, batch).expect("append");
        }
        log.close();
    }
    // Force every memtable into table files (a clean close only fsyncs the journal).
    {
        let db = fjall::Database::builder(dir.path())
            .open()
            .expect("raw open");
        for name in ["records", "meta"] {
            let ks = db
                .keyspace(name, fjall::KeyspaceCreateOptions::default)
                .expect("keyspace");
            ks.rotate_memtable_and_wait().expect("flush");
            assert!(ks.table_count() > 0, "{name} has tables");
        }
    }
    let mut tables: Vec<(u64, PathBuf)> = files_under(&dir.path().join("keyspaces"))
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "tables"))
        .map(|p| (fs::metadata(&p).expect("stat").len(), p))
        .collect();
    tables.sort();
    let (size, table) = tables.pop().expect("a table file");
    eprintln!("largest table {} ({size} bytes)", table.display());
    assert!(size > 1_000_000, "the records' table holds the data");
    let relative = table.strip_prefix(dir.path()).expect("inside").to_owned();
    let size = size as usize;
    let cases: Vec<(&str, Vec<usize>)> = vec![
        ("untouched copy", vec![]),
        ("flip one byte in the middle", vec![size / 2]),
        (
            "flip 16 bytes in the middle",
            (0..16).map(|i| size / 2 + i * 97).collect(),
        ),
        ("flip one byte at a quarter", vec![size / 4]),
        ("flip one byte near the start", vec![100]),
        ("flip one byte near the end", vec![size - 100]),
    ];
    let mut errors = 0;
    for (case, positions) in cases {
        let copy = tempfile::tempdir().expect("temp dir");
        copy_dir(dir.path(), copy.path());
        let path = copy.path().join(&relative);
        let mut bytes = fs::read(&path).expect("read table");
        for &at in &positions {
            bytes[at] ^= 0x5a;
        }
        fs::write(&path, &bytes).expect("write the mangled table");
        let result = catch_unwind(AssertUnwindSafe(|| Log::open(LogConfig::new(copy.path()))))
            .unwrap_or_else(|_| panic!("{case}: Log::open panicked instead of returning an error"))
            .and_then(|log| read_all_tables(case, &log, &partition));
        match result {
            Ok(n) => {
                assert_eq!(n, TABLE_RECORDS, "{case}: every record read back");
                eprintln!("{case}: every record intact");
            }
            Err(e) => {
                eprintln!("{case}: clear error: {e}");
                assert!(
                    matches!(
                        e,
                        Error::Storage { .. } | Error::Corrupt { .. } | Error::Inconsistent { .. }
                    ),
                    "{case}: {e:?}"
                );
                assert!(
                    !positions.is_empty(),
                    "{case}: the untouched copy failed: {e}"
                );
                errors += 1;
            }
        }
    }
    // A flipped byte in the middle of the data blocks must be noticed (block checksums or
    // ours), not silently read past.
    assert!(errors > 0, "no flipped table byte was detected");
}
