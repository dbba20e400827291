//! Whether libunit would find room in shared memory for a message, as
//! `nxt_unit_mmap_get` looks, from what the segments it made say.
//!
//! libunit makes shared memory in segments of equal chunks, no more segments
//! than the application's `limits.shm` allows. A message takes whole chunks in
//! a row of one segment: one the router has taken, or one the calling thread
//! made and sent to the same router port. When none has the chunks and no
//! segment may be made, libunit waits for the router to free some.

/// The shape of libunit's shared memory in one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shm {
    /// Bytes of one segment's data, the largest message it holds.
    segment: usize,
    /// Bytes of one chunk.
    chunk: usize,
    /// Segments the process may make.
    allowed: usize,
}

/// What libunit would do for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Room {
    /// Find room, or make a new segment, or refuse a message larger than a
    /// segment at once: it does not wait.
    Free,
    /// Wait for the router.
    Full,
    /// Unknown: a segment's header could not be read, so libunit may wait.
    Unknown,
}

/// What is known of one segment made, for a message from this thread to one
/// router port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment<M> {
    /// Its header could not be read.
    Unknown,
    /// libunit would not use it for this message.
    Unusable,
    /// libunit would look in it: its map of free chunks, as words whose set
    /// bits are free chunks, the first chunk in the lowest bit.
    Usable(M),
}

impl Shm {
    /// Segments of `segment` bytes in chunks of `chunk` bytes, as many as a
    /// `limits.shm` of `shm_limit` bytes allows (at least one, as libunit
    /// counts them).
    pub fn new(segment: usize, chunk: usize, shm_limit: u32) -> Shm {
        let allowed = usize::try_from(shm_limit)
            .unwrap_or(usize::MAX)
            .div_ceil(segment)
            .max(1);
        Shm {
            segment,
            chunk,
            allowed,
        }
    }

    /// What libunit does for a message of `bytes` with `made` the segments it
    /// made so far, in its order.
    pub fn room<M, I>(&self, bytes: usize, made: I) -> Room
    where
        M: IntoIterator<Item = u64>,
        I: ExactSizeIterator<Item = Segment<M>>,
    {
        if made.len() < self.allowed || bytes > self.segment {
            return Room::Free;
        }
        let chunks = bytes.div_ceil(self.chunk);
        let mut room = Room::Full;
        for segment in made {
            match segment {
                Segment::Usable(free) => {
                    if has_free_run(free, chunks) {
                        return Room::Free;
                    }
                }
                Segment::Unusable => {}
                Segment::Unknown => room = Room::Unknown,
            }
        }
        room
    }
}

/// Whether `chunks` chunks in a row are free. libunit's first-fit search finds
/// such a run whenever there is one: it restarts past each busy chunk, and the
/// map ends with the segment.
fn has_free_run(free: impl IntoIterator<Item = u64>, chunks: usize) -> bool {
    let mut run = 0;
    for word in free {
        if word == 0 {
            run = 0;
            continue;
        }
        for bit in 0..u64::BITS {
            if word >> bit & 1 == 1 {
                run += 1;
                if run >= chunks {
                    return true;
                }
            } else {
                run = 0;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEGMENT: usize = 10 << 20;
    const CHUNK: usize = 16 << 10;

    fn shm(segments: u32) -> Shm {
        Shm::new(SEGMENT, CHUNK, segments * SEGMENT as u32)
    }

    fn usable(words: &[u64]) -> Segment<Vec<u64>> {
        Segment::Usable(words.to_vec())
    }

    #[test]
    fn the_limit_counts_whole_segments_and_at_least_one() {
        assert_eq!(Shm::new(SEGMENT, CHUNK, 0).allowed, 1);
        assert_eq!(Shm::new(SEGMENT, CHUNK, 1).allowed, 1);
        assert_eq!(Shm::new(SEGMENT, CHUNK, SEGMENT as u32 + 1).allowed, 2);
        assert_eq!(shm(10).allowed, 10);
    }

    #[test]
    fn while_segments_may_be_made_or_the_message_is_too_large_libunit_does_not_wait() {
        let full = || [usable(&[0])].into_iter();
        assert_eq!(shm(2).room(CHUNK, full()), Room::Free);
        assert_eq!(shm(1).room(CHUNK, full()), Room::Full);
        assert_eq!(shm(1).room(SEGMENT + 1, full()), Room::Free);
    }

    #[test]
    fn a_message_needs_its_chunks_in_a_row() {
        // Chunks 0, 2 and 3 free: two in a row, not three.
        let gappy = || [usable(&[0b1101])].into_iter();
        assert_eq!(shm(1).room(2 * CHUNK, gappy()), Room::Free);
        assert_eq!(shm(1).room(2 * CHUNK + 1, gappy()), Room::Full);
        // A run may span two words of the map.
        let across = || [usable(&[1 << 63, 1])].into_iter();
        assert_eq!(shm(1).room(2 * CHUNK, across()), Room::Free);
        assert_eq!(shm(1).room(3 * CHUNK, across()), Room::Full);
    }

    #[test]
    fn only_usable_segments_count_and_an_unknown_one_may_make_libunit_wait() {
        let room = |segments: Vec<Segment<Vec<u64>>>| shm(2).room(CHUNK, segments.into_iter());
        assert_eq!(room(vec![Segment::Unusable, usable(&[0])]), Room::Full);
        assert_eq!(room(vec![Segment::Unknown, usable(&[0])]), Room::Unknown);
        assert_eq!(room(vec![Segment::Unknown, usable(&[1])]), Room::Free);
    }
}
