//! The log handle's own tests: frames, trims, retention racing reads, the writer's nice value.
use super::*;

/// The nice value of every thread of this process named `name`.
#[cfg(target_os = "linux")]
fn nice_of_threads(name: &str) -> Vec<i64> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("procfs") {
        let dir = task.expect("task").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses; nice is field 19.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if let Some(nice) = after
            .split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
        {
            found.push(nice);
        }
    }
    found
}

#[test]
fn an_append_is_stored_as_frames_of_bounded_size_and_one_record_as_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(LogConfig::new(dir.path())).expect("open");
    let part = PartitionName::new("framed").expect("name");
    let big: Vec<NewRecord> = (0..40).map(|i| NewRecord::new(vec![i; 30_000])).collect();
    log.append_blocking(&part, big).expect("append");
    log.append_blocking(&part, vec![NewRecord::new("alone")])
        .expect("append");
    let items: Vec<(crate::frame::ItemKey, usize)> = log
        .inner
        .store
        .records
        .iter()
        .map(|guard| {
            let (key, value) = guard.into_inner().expect("item");
            (
                crate::frame::parse_item_key(&key).expect("item key"),
                value.len(),
            )
        })
        .collect();
    let counts: Vec<u64> = items.iter().map(|(key, _)| key.count()).collect();
    assert_eq!(counts.iter().sum::<u64>(), 41);
    assert!(items.len() >= 5, "40 x 30 KB cut into frames: {counts:?}");
    assert!(
        items
            .iter()
            .all(|(_, len)| *len <= crate::frame::MAX_FRAME_BYTES),
        "{items:?}"
    );
    assert_eq!(counts.last(), Some(&1), "one record alone: {counts:?}");
    let read = log.read(&part, Offset(0), 100).expect("read");
    assert_eq!(read.len(), 41);
    log.close();
}

#[test]
fn one_trim_command_reads_a_bounded_number_of_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(LogConfig::new(dir.path())).expect("open");
    let part = PartitionName::new("trimmed").expect("name");
    let big: Vec<NewRecord> = (0..80).map(|_| NewRecord::new(vec![7; 300_000])).collect();
    log.append_blocking(&part, big).expect("append");
    let trim = || send_trim(&log, &part, Offset(80));
    let first = trim();
    assert!(first.more && first.records < 80, "{first:?}");
    assert!(first.records * 300_000 >= crate::writer::MAX_TRIM_BYTES);
    let mut removed = first.records;
    while removed < 80 {
        let next = trim();
        assert!(next.records > 0, "{next:?}");
        removed += next.records;
    }
    assert_eq!(trim().records, 0);
    assert_eq!(
        log.head(&part).map(|h| (h.first, h.count())),
        Some((Offset(80), 0))
    );
    log.close();
}

/// Sends a trim straight to the writer and waits for its answer.
fn send_trim(log: &Log, partition: &PartitionName, before: Offset) -> crate::writer::Trimmed {
    let (reply, rx) = oneshot::channel();
    let command = Command::Trim {
        partition: partition.clone(),
        before,
        max_bytes: None,
        limit: 10_000,
        reply,
    };
    log.inner
        .tx
        .as_ref()
        .expect("open")
        .blocking_send(command)
        .expect("send");
    rx.blocking_recv().expect("reply").expect("trim")
}

#[test]
fn reads_racing_retention_never_report_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(LogConfig::new(dir.path())).expect("open");
    let part = PartitionName::new("raced").expect("name");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut reads = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let records = log.read(&part, Offset(0), 5000).expect("no corruption");
                        assert!(
                            records
                                .windows(2)
                                .all(|w| w[1].offset == w[0].offset.next()),
                            "dense"
                        );
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for round in 0..3000u64 {
            let batch = (0..10)
                .map(|i| NewRecord::new(format!("{round}.{i}")))
                .collect();
            let ack = log.append_blocking(&part, batch).expect("append");
            send_trim(&log, &part, Offset(ack.first.0.saturating_sub(60)));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().expect("reader") > 0);
        }
    });
    log.close();
}

#[cfg(target_os = "linux")]
#[test]
fn the_writer_thread_runs_at_the_nice_value_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A positive value needs no privilege, so this holds for any user.
    let log = Log::open(LogConfig::new(dir.path()).writer_nice(7)).expect("open");
    // Linux keeps 15 bytes of a thread's name: "draft-log-writer" shows as this.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !nice_of_threads("draft-log-write").contains(&7) {
        assert!(
            std::time::Instant::now() < deadline,
            "no writer thread at nice 7: {:?}",
            nice_of_threads("draft-log-write")
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    log.close();
}
