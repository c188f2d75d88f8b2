//! How many records to read from the log at once, so one read holds about a byte budget
//! whatever the events weigh: a replay of 1 MiB events must not pull 512 of them into memory
//! per read, nor a page of 10,000 such events three times over.

/// The bytes one read of a replay, or one page, aims at.
pub(crate) const READ_BYTES: usize = 4 << 20;

/// Sizes successive reads from what the earlier ones weighed.
#[derive(Debug, Clone)]
pub(crate) struct ReadSize {
    max_records: usize,
    budget: usize,
    /// The average record size seen so far (a guess before the first read).
    average: usize,
}

impl ReadSize {
    /// Reads of at most `max_records` records and about `budget` bytes.
    pub(crate) fn new(max_records: usize, budget: usize) -> Self {
        Self {
            max_records: max_records.max(1),
            budget: budget.max(1),
            // A first guess that keeps the first read small for large events and still
            // useful for small ones.
            average: 64 << 10,
        }
    }

    /// How many records to ask for next (at least one).
    pub(crate) fn next(&self) -> usize {
        (self.budget / self.average.max(1)).clamp(1, self.max_records)
    }

    /// [`Self::next`], for a reader that has room for only `bytes` more (a consumer whose
    /// queue is nearly full reads little, so it holds little while it waits).
    pub(crate) fn within(&self, bytes: usize) -> usize {
        (self.budget.min(bytes) / self.average.max(1)).clamp(1, self.max_records)
    }

    /// A read returned `records` records of `bytes` bytes in all.
    pub(crate) fn observe(&mut self, records: usize, bytes: usize) {
        if let Some(average) = bytes.checked_div(records) {
            self.average = average.max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_with_little_room_reads_little() {
        let mut size = ReadSize::new(512, READ_BYTES);
        size.observe(10, 10 * 64 * 1024);
        assert_eq!(size.within(usize::MAX), 64);
        assert_eq!(size.within(1 << 20), 16);
        assert_eq!(size.within(0), 1, "at least one");
    }

    #[test]
    fn reads_shrink_for_large_records_and_grow_for_small_ones() {
        let mut size = ReadSize::new(512, READ_BYTES);
        assert_eq!(size.next(), 64);
        size.observe(64, 64 << 20); // 1 MiB each
        assert_eq!(size.next(), 4);
        size.observe(4, 4 * 300);
        assert_eq!(size.next(), 512, "capped by the record count");
        size.observe(0, 0);
        assert_eq!(size.next(), 512, "an empty read teaches nothing");
        let mut huge = ReadSize::new(512, 1024);
        huge.observe(1, 10 << 20);
        assert_eq!(huge.next(), 1, "always at least one");
    }
}
