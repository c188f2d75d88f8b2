//! A channel's expiry queue: appended events in time order, kept in blocks of up to [`BLOCK`]
//! entries. Growing never copies more than the short list of blocks (a `VecDeque` of a million
//! entries copied itself whole, under the lock every producer waits on), and a queue that
//! holds a steady number of entries keeps that many plus at most two blocks in memory (a ring
//! buffer sized for the cap wraps around and ends up touching all of it). A new block is sized
//! for what the queue holds (at least [`MIN_BLOCK`]), so a quiet channel stays small too.

use std::collections::VecDeque;

/// The most entries a block holds.
const BLOCK: usize = 8192;

/// The fewest entries a block has room for.
const MIN_BLOCK: usize = 64;

/// A first-in first-out queue in fixed-size blocks.
pub(super) struct BlockQueue<T> {
    /// Full blocks, then the one being filled; never an empty block.
    blocks: VecDeque<Vec<T>>,
    /// Where the live entries of the first block start.
    head: usize,
    len: usize,
}

impl<T> Default for BlockQueue<T> {
    fn default() -> Self {
        Self {
            blocks: VecDeque::new(),
            head: 0,
            len: 0,
        }
    }
}

impl<T: Copy> BlockQueue<T> {
    /// How many entries the queue holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The oldest entry.
    pub(super) fn front(&self) -> Option<&T> {
        self.blocks.front().map(|block| &block[self.head])
    }

    /// Adds an entry at the back.
    pub(super) fn push_back(&mut self, entry: T) {
        match self.blocks.back_mut() {
            // Blocks never grow: a full one is followed by a new one.
            Some(block) if block.len() < block.capacity() => block.push(entry),
            _ => {
                let mut block = Vec::with_capacity(self.len.clamp(MIN_BLOCK, BLOCK));
                block.push(entry);
                self.blocks.push_back(block);
            }
        }
        self.len += 1;
    }

    /// Takes the oldest entry.
    pub(super) fn pop_front(&mut self) -> Option<T> {
        let block = self.blocks.front()?;
        let entry = block[self.head];
        self.head += 1;
        self.len -= 1;
        if self.head == block.len() {
            self.blocks.pop_front();
            self.head = 0;
        }
        Some(entry)
    }

    /// How many entries the blocks have room for.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_in_the_order_they_went_in() {
        let mut queue = BlockQueue::default();
        let mut expected = VecDeque::new();
        for round in 0..5u64 {
            for i in 0..(BLOCK as u64 * 2 + 17) {
                queue.push_back((round, i));
                expected.push_back((round, i));
            }
            for _ in 0..BLOCK + round as usize * 1000 {
                assert_eq!(queue.pop_front(), expected.pop_front());
            }
            assert_eq!(queue.len(), expected.len());
            assert_eq!(queue.front(), expected.front());
        }
        while let Some(entry) = expected.pop_front() {
            assert_eq!(queue.pop_front(), Some(entry));
        }
        assert_eq!(
            (queue.pop_front(), queue.front(), queue.len()),
            (None, None, 0)
        );
        queue.push_back((9, 9));
        assert_eq!(queue.pop_front(), Some((9, 9)), "usable again once empty");
    }

    #[test]
    fn a_steady_queue_keeps_at_most_two_blocks_more_than_it_holds() {
        let mut queue = BlockQueue::default();
        let steady = 100_000u64;
        for i in 0..steady {
            queue.push_back(i);
        }
        for i in steady..steady * 20 {
            queue.push_back(i);
            assert_eq!(queue.pop_front(), Some(i - steady));
            assert!(queue.capacity() <= queue.len() + 2 * BLOCK, "at {i}");
        }
    }

    #[test]
    fn a_small_queue_stays_small_however_many_entries_pass_through() {
        let mut queue = BlockQueue::default();
        for i in 0..120u32 {
            queue.push_back(i);
        }
        for i in 120..100_000u32 {
            queue.push_back(i);
            assert_eq!(queue.pop_front(), Some(i - 120));
            assert!(queue.capacity() <= 3 * 120, "{} at {i}", queue.capacity());
        }
    }
}
