use super::*;
use crate::codec::{encode_record, name_key, record_key, stats_key};

fn partition() -> PartitionName {
    PartitionName::new("garbled").expect("valid")
}

fn payload(offset: u64) -> Vec<u8> {
    format!("payload number {offset}").into_bytes()
}

/// Writes records 0..3 of `partition()` straight into fjall with consistent metadata,
/// passing the value of offset 1 through `garble` first; then reopens the store.
fn store_with_garbled_record(dir: &std::path::Path, garble: impl Fn(&mut Vec<u8>)) -> Store {
    let time = Timestamp::from_unix_nanos(1_000);
    let items = (0..3)
        .map(|offset| {
            let mut value = encode_record(0, Offset(offset), time, None, &payload(offset));
            if offset == 1 {
                garble(&mut value);
            }
            (record_key(0, Offset(offset)).to_vec(), value)
        })
        .collect();
    store_with_items(dir, items, 3)
}

fn assert_corrupt_at_1(result: Result<Vec<Record>>, reason_has: &str) {
    match result {
        Err(Error::Corrupt {
            partition,
            offset,
            reason,
        }) => {
            assert_eq!(partition, "garbled");
            assert_eq!(offset, Offset(1));
            assert!(reason.contains(reason_has), "reason: {reason}");
        }
        other => panic!("expected corruption at garbled/1, got {other:?}"),
    }
}

#[test]
fn a_flipped_payload_byte_is_corruption_naming_partition_and_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with_garbled_record(dir.path(), |value| {
        // Flip one bit inside the payload itself: the rkyv layout stays valid, so only
        // the checksum can tell.
        let p = payload(1);
        let at = value
            .windows(p.len())
            .position(|w| w == p.as_slice())
            .expect("the payload is stored verbatim");
        value[at + 3] ^= 0x01;
    });
    let error = store
        .read(&partition(), Offset(0), 10)
        .expect_err("garbled");
    assert!(error.is_fatal(), "{error}");
    assert!(error.to_string().contains("garbled"), "{error}");
    assert_corrupt_at_1(Err(error), "checksum");
    // Reading from offset 1 fails the same way; the intact records around it still read.
    assert_corrupt_at_1(store.read(&partition(), Offset(1), 1), "checksum");
    let first = store
        .read(&partition(), Offset(0), 1)
        .expect("offset 0 is intact");
    assert_eq!(&first[0].payload[..], payload(0).as_slice());
    let last = store
        .read(&partition(), Offset(2), 10)
        .expect("offset 2 is intact");
    assert_eq!(&last[0].payload[..], payload(2).as_slice());
    // Time lookups validate what they read too.
    let time_lookup = store.offset_at_time(&partition(), Timestamp::from_unix_nanos(1_000));
    assert!(
        matches!(
            time_lookup,
            Err(Error::Corrupt {
                offset: Offset(1),
                ..
            })
        ),
        "{time_lookup:?}"
    );
}

#[test]
fn a_truncated_value_is_corruption() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with_garbled_record(dir.path(), |value| value.truncate(value.len() / 2));
    assert_corrupt_at_1(store.read(&partition(), Offset(0), 10), "layout");
}

#[test]
fn a_record_stored_under_another_offset_is_corruption() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with_garbled_record(dir.path(), |value| {
        *value = encode_record(
            0,
            Offset(2),
            Timestamp::from_unix_nanos(1_000),
            None,
            &payload(2),
        );
    });
    assert_corrupt_at_1(store.read(&partition(), Offset(0), 10), "claims offset 2");
}

/// Opens a store holding `items` (key, value) of partition `garbled` (pid 0), with stats
/// saying offsets `0..next`, written straight into fjall; then reopens it.
fn store_with_items(dir: &std::path::Path, items: Vec<(Vec<u8>, Vec<u8>)>, next: u64) -> Store {
    let config = LogConfig::new(dir);
    {
        let store = Store::open(&config).expect("open");
        let stats = Stats {
            first: 0,
            next,
            bytes: items.iter().map(|(_, v)| v.len() as u64).sum(),
            last_time: 1_000,
        };
        let mut batch = store
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        batch.insert(&store.meta, name_key(&partition()), 0u32.to_be_bytes());
        for (key, value) in items {
            batch.insert(&store.records, key, value);
        }
        batch.insert(&store.meta, stats_key(0), stats.encode());
        batch.commit().expect("commit");
    }
    Store::open(&config).expect("reopen: the bounds agree")
}

/// A frame of records `offsets` of partition 0, passing record 1's value through `garble`.
fn frame_item(
    offsets: std::ops::RangeInclusive<u64>,
    garble: impl Fn(&mut Vec<u8>),
) -> (Vec<u8>, Vec<u8>) {
    let time = Timestamp::from_unix_nanos(1_000);
    let mut value = Vec::new();
    for offset in offsets.clone() {
        let mut record = encode_record(0, Offset(offset), time, None, &payload(offset));
        if offset == 1 {
            garble(&mut record);
        }
        frame::push_record(&mut value, &record);
    }
    let key = frame::frame_key(0, Offset(*offsets.start()), Offset(*offsets.end()));
    (key.to_vec(), value)
}

#[test]
fn a_garbled_record_inside_a_frame_is_corruption_at_its_own_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbled = frame_item(0..=2, |record| {
        let at = record.len() - 12;
        record[at] ^= 0x01;
    });
    let store = store_with_items(dir.path(), vec![garbled], 3);
    assert_corrupt_at_1(store.read(&partition(), Offset(0), 10), "");
    let intact = store.read(&partition(), Offset(2), 10).expect("offset 2");
    assert_eq!(&intact[0].payload[..], payload(2).as_slice());
    let first = store.read(&partition(), Offset(0), 1).expect("offset 0");
    assert_eq!(&first[0].payload[..], payload(0).as_slice());
}

#[test]
fn a_missing_item_at_the_end_of_a_window_is_corruption() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Offsets 0..=2 in a frame, 3 and 4 lost, 5 alone; the stats say 0..6.
    let time = Timestamp::from_unix_nanos(1_000);
    let last = (
        record_key(0, Offset(5)).to_vec(),
        encode_record(0, Offset(5), time, None, &payload(5)),
    );
    let store = store_with_items(dir.path(), vec![frame_item(0..=2, |_| {}), last], 6);
    let missing_at_3 = |result: Result<Vec<Record>>| {
        matches!(
            result,
            Err(Error::Corrupt {
                offset: Offset(3),
                ..
            })
        )
    };
    assert!(
        missing_at_3(store.read(&partition(), Offset(0), 4)),
        "at the end"
    );
    assert!(
        missing_at_3(store.read(&partition(), Offset(3), 1)),
        "alone"
    );
    assert!(
        missing_at_3(store.read(&partition(), Offset(0), 10)),
        "between"
    );
    assert_eq!(
        store.read(&partition(), Offset(1), 2).map(|r| r.len()).ok(),
        Some(2)
    );
}

#[test]
fn a_data_directory_records_its_format_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = LogConfig::new(dir.path());
    {
        let store = Store::open(&config).expect("open");
        let format = store
            .meta
            .get(codec::FORMAT_KEY)
            .expect("read")
            .expect("set");
        assert_eq!(&format[..], &codec::FORMAT.to_be_bytes());
        store
            .meta
            .insert(codec::FORMAT_KEY, (codec::FORMAT + 1).to_be_bytes())
            .expect("write");
        store
            .db
            .persist(fjall::PersistMode::SyncAll)
            .expect("persist");
    }
    match Store::open(&config) {
        Err(Error::UnsupportedFormat { found, supported }) => {
            assert_eq!((found, supported), (codec::FORMAT + 1, codec::FORMAT));
        }
        Err(other) => panic!("expected UnsupportedFormat, got {other}"),
        Ok(_) => panic!("expected UnsupportedFormat, the store opened"),
    }
}

#[test]
fn the_same_store_reads_back_intact_records() {
    // Control: without garbling, the helper's records read back, so the tests above fail
    // only because of the garbled byte.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_with_garbled_record(dir.path(), |_| {});
    let records = store.read(&partition(), Offset(0), 10).expect("intact");
    let payloads: Vec<_> = records.iter().map(|r| r.payload.to_vec()).collect();
    assert_eq!(payloads, (0..3).map(payload).collect::<Vec<_>>());
}

#[test]
fn records_are_compressed_from_the_first_table_on() {
    // 2,000 records of 500 bytes of event-like JSON: 1 MB that LZ4 shrinks several times over.
    // fjall's default leaves the tables of levels 0 and 1 uncompressed, which made flushes
    // write about as much as the journal holds uncompressed.
    let dir = tempfile::tempdir().expect("temp dir");
    let time = Timestamp::from_unix_nanos(1_000);
    let event = |offset: u64| {
        let mut body = format!(r#"{{"specversion":"1.0","id":"{offset}","type":"bench""#);
        while body.len() < 500 {
            body.push_str(r#","source":"/bench","data":{"n":1}"#);
        }
        body.into_bytes()
    };
    let items: Vec<_> = (0..2_000)
        .map(|offset| {
            let value = encode_record(0, Offset(offset), time, None, &event(offset));
            (record_key(0, Offset(offset)).to_vec(), value)
        })
        .collect();
    let raw: usize = items.iter().map(|(_, v)| v.len()).sum();
    let store = store_with_items(dir.path(), items, 2_000);
    store.records.rotate_memtable_and_wait().expect("flush");
    let on_disk = store.records.disk_space();
    assert!(
        on_disk > 0 && on_disk * 4 < raw as u64,
        "{raw} bytes of records took {on_disk} bytes in level 0"
    );
    assert_eq!(
        store
            .read(&partition(), Offset(1_999), 1)
            .expect("read")
            .len(),
        1
    );
}
