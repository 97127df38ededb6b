//! Compact HdrHistogram counts: the bucket index arithmetic of the `hdrhistogram` crate
//! ([`Layout`], which the crate keeps private) and the V2 counts encoding (zig-zag LEB128
//! counts, a run of zeros as one negative number) written from and read into sparse
//! `(bucket index, count)` lists.
//!
//! Two users: the rolling windows keep every closed slot's histogram in this encoding (about
//! 1.2 bytes per non-zero bucket instead of 16 for a `(u64, u64)` pair), and the flush writes
//! stored histograms straight from sparse counts (the bytes equal the crate's own
//! `V2Serializer`, so any V2 reader decodes them) without building a dense histogram.

use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer, V2Serializer},
};

/// How a histogram with given bounds maps values to bucket indices (same arithmetic as the
/// `hdrhistogram` crate; tested against it below).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    unit_magnitude: u8,
    sub_bucket_half_count_magnitude: u8,
    sub_bucket_half_count: u32,
    sub_bucket_mask: u64,
    leading_zero_count_base: u8,
    /// Length of the counts array.
    len: u32,
}

impl Layout {
    /// The layout of `hist` (any histogram made by `Histogram::new_with_bounds`).
    pub fn of(hist: &Histogram<u64>) -> Self {
        let largest = 2 * 10_u32.pow(u32::from(hist.sigfig()));
        let unit_magnitude = (hist.low() as f64).log2().floor() as u8;
        let sub_bucket_count_magnitude = f64::from(largest).log2().ceil() as u8;
        let sub_bucket_half_count_magnitude = sub_bucket_count_magnitude - 1;
        let sub_bucket_count = 1_u32 << sub_bucket_count_magnitude;
        Layout {
            unit_magnitude,
            sub_bucket_half_count_magnitude,
            sub_bucket_half_count: sub_bucket_count / 2,
            sub_bucket_mask: (u64::from(sub_bucket_count) - 1) << unit_magnitude,
            leading_zero_count_base: 64 - unit_magnitude - sub_bucket_count_magnitude,
            len: hist.distinct_values() as u32,
        }
    }

    /// Length of the counts array (number of buckets).
    pub fn buckets(&self) -> u32 {
        self.len
    }

    /// The bucket index of `value` (may be `>= len()` for a value beyond the highest).
    #[inline]
    pub fn index_of(&self, value: u64) -> u32 {
        let bucket =
            self.leading_zero_count_base - (value | self.sub_bucket_mask).leading_zeros() as u8;
        let sub_bucket = (value >> (bucket + self.unit_magnitude)) as u32;
        ((u32::from(bucket) + 1) << self.sub_bucket_half_count_magnitude) + sub_bucket
            - self.sub_bucket_half_count
    }

    /// The lowest value of bucket `index`.
    #[inline]
    pub fn value_of(&self, index: u32) -> u64 {
        let mut bucket = (index >> self.sub_bucket_half_count_magnitude) as i32 - 1;
        let mut sub_bucket =
            (index & (self.sub_bucket_half_count - 1)) + self.sub_bucket_half_count;
        if bucket < 0 {
            sub_bucket -= self.sub_bucket_half_count;
            bucket = 0;
        }
        u64::from(sub_bucket) << (bucket as u32 + u32::from(self.unit_magnitude))
    }
}

/// A histogram's bounds (what the V2 header stores): together with [`Layout`] they give sparse
/// `(bucket index, count)` counts their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistBounds {
    pub low: u64,
    pub high: u64,
    pub sigfig: u8,
}

impl HistBounds {
    /// The bounds of `hist`.
    pub fn of(hist: &Histogram<u64>) -> Self {
        Self {
            low: hist.low(),
            high: hist.high(),
            sigfig: hist.sigfig(),
        }
    }
}

/// A histogram's non-zero buckets as `(bucket index, count)`, ascending by index.
pub fn sparse_of(hist: &Histogram<u64>, out: &mut Vec<(u32, u64)>) {
    out.clear();
    let layout = Layout::of(hist);
    out.extend(
        hist.iter_recorded()
            .map(|v| (layout.index_of(v.value_iterated_to()), v.count_at_value())),
    );
}

/// Adds sparse counts to `hist` (same layout). Counts beyond its range are dropped.
pub fn record_sparse(hist: &mut Histogram<u64>, layout: &Layout, sparse: &[(u32, u64)]) {
    for &(index, count) in sparse {
        let _ = hist.record_n(layout.value_of(index), count);
    }
}

#[inline]
fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    // The V2 format's LEB128 stops at 9 bytes: the 9th byte holds 8 full bits.
    for _ in 0..8 {
        if value < 0x80 {
            out.push(value as u8);
            return;
        }
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[inline]
fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0_u64;
    for i in 0..9 {
        let byte = *bytes.get(*at)?;
        *at += 1;
        if i == 8 {
            return Some(value | (u64::from(byte) << 56));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    Some(value)
}

/// Appends the V2 counts encoding of sparse counts (ascending indices, non-zero counts) to
/// `out`: counts from index 0 to the last non-zero one, each count as a zig-zag varint, a run
/// of two or more zeros as one negative number. An empty list encodes as one zero count, as
/// the crate encodes an empty histogram.
pub fn encode_counts(sparse: impl IntoIterator<Item = (u32, u64)>, out: &mut Vec<u8>) {
    let zigzag = |n: i64| ((n << 1) ^ (n >> 63)) as u64;
    let mut next = 0_u32;
    for (index, count) in sparse {
        if count == 0 {
            continue;
        }
        match index - next {
            0 => {}
            1 => out.push(0),
            zeros => write_varint(out, zigzag(-i64::from(zeros))),
        }
        write_varint(out, zigzag(count.min(i64::MAX as u64) as i64));
        next = index + 1;
    }
    if next == 0 {
        out.push(0);
    }
}

/// Calls `each(index, count)` for every non-zero count of a V2 counts encoding, in ascending
/// index order. `None` when the bytes are not a valid encoding.
pub fn decode_counts(bytes: &[u8], mut each: impl FnMut(u32, u64)) -> Option<()> {
    let mut at = 0;
    let mut index = 0_u64;
    while at < bytes.len() {
        let raw = read_varint(bytes, &mut at)?;
        let n = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        if n < 0 {
            index += n.unsigned_abs();
        } else {
            if n > 0 {
                each(u32::try_from(index).ok()?, n as u64);
            }
            index += 1;
        }
        if index > u64::from(u32::MAX) {
            return None;
        }
    }
    Some(())
}

/// Sorts sparse counts by bucket index and adds the counts of equal indices.
pub fn combine_sparse(counts: &mut Vec<(u32, u64)>) {
    counts.sort_unstable_by_key(|&(index, _)| index);
    counts.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 += next.1;
            true
        } else {
            false
        }
    });
}

/// Merges ascending sparse `other` into ascending sparse `into` (counts of equal indices add),
/// in place: it allocates only when `into` must grow beyond its capacity.
pub fn merge_sparse(into: &mut Vec<(u32, u64)>, other: &[(u32, u64)]) {
    if other.is_empty() {
        return;
    }
    if into.last().is_none_or(|last| last.0 < other[0].0) {
        into.extend_from_slice(other);
        return;
    }
    // Add the counts of indices both have; count the indices only `other` has.
    let (mut i, mut extra) = (0, 0);
    for &(index, count) in other {
        while i < into.len() && into[i].0 < index {
            i += 1;
        }
        match into.get_mut(i) {
            Some(slot) if slot.0 == index => slot.1 += count,
            _ => extra += 1,
        }
    }
    if extra == 0 {
        return;
    }
    // Then merge those in from the back, each entry moving at most once.
    let (mut i, mut j) = (into.len(), other.len());
    into.resize(i + extra, (0, 0));
    let mut k = into.len();
    while j > 0 {
        let b = other[j - 1];
        if i > 0 && into[i - 1].0 == b.0 {
            // Added above; the entry stays where it is.
            j -= 1;
            continue;
        }
        k -= 1;
        if i > 0 && into[i - 1].0 > b.0 {
            into[k] = into[i - 1];
            i -= 1;
        } else {
            into[k] = b;
            j -= 1;
        }
    }
}

/// HdrHistogram's V2 compressed cookie (`0x1c849304 | 0x10`): a V2 encoding inside a zlib stream.
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

/// Reused per thread: serialising and inflating allocate nothing after the first call.
struct Codec {
    v2: V2Serializer,
    plain: Vec<u8>,
    inflate: flate2::Decompress,
    deserializer: Deserializer,
}

thread_local! {
    static CODEC: std::cell::RefCell<Codec> = std::cell::RefCell::new(Codec {
        v2: V2Serializer::new(),
        plain: Vec::new(),
        inflate: flate2::Decompress::new(true),
        deserializer: Deserializer::new(),
    });
}

/// Adler-32 of `data` (the zlib trailer).
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5_552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Encodes a histogram in the standard HdrHistogram V2 compressed format, which any V2 reader
/// (this crate's `Deserializer`, the Java and Go libraries) decodes: the V2 encoding inside a
/// zlib stream. The zlib stream uses stored (uncompressed) deflate blocks: a fresh deflate
/// compressor costs ~400 µs (it allocates and clears ~300 KB of tables), a reset one still
/// ~30 µs, against ~2 µs here, and the V2 encoding is already compact (zig-zag LEB128 counts,
/// runs of zeros as one number), so most rows (1-second buckets) lose nothing in size.
pub fn encode_histogram(hist: &Histogram<u64>) -> Vec<u8> {
    CODEC.with_borrow_mut(|codec| {
        codec.plain.clear();
        if let Err(error) = codec.v2.serialize(hist, &mut codec.plain) {
            // Serialising into a Vec cannot fail for a valid histogram.
            tracing::error!(?error, "histogram serialisation failed");
            return Vec::new();
        }
        let mut out = Vec::new();
        wrap_stored_zlib(&codec.plain, &mut out);
        out
    })
}

/// HdrHistogram's V2 (uncompressed) cookie (`0x1c849303 | 0x10`).
const V2_COOKIE: u32 = 0x1c84_9313;
/// Bytes of the V2 header: cookie, payload length, normalising offset, significant figures,
/// lowest, highest, integer-to-double ratio.
const V2_HEADER: usize = 40;

/// [`encode_histogram`] from sparse `(bucket index, count)` counts (ascending; see
/// [the sparse counts above](sparse_of)): the same bytes as encoding the dense histogram, without
/// building it.
pub fn encode_sparse_histogram(bounds: HistBounds, sparse: &[(u32, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_sparse_histogram_into(bounds, sparse, &mut out);
    out
}

/// [`encode_sparse_histogram`] into `out` (cleared first), reusing its allocation.
pub fn encode_sparse_histogram_into(bounds: HistBounds, sparse: &[(u32, u64)], out: &mut Vec<u8>) {
    CODEC.with_borrow_mut(|codec| {
        let plain = &mut codec.plain;
        plain.clear();
        plain.extend_from_slice(&V2_COOKIE.to_be_bytes());
        plain.extend_from_slice(&[0; 8]); // payload length (below), normalising offset 0
        plain.extend_from_slice(&u32::from(bounds.sigfig).to_be_bytes());
        plain.extend_from_slice(&bounds.low.to_be_bytes());
        plain.extend_from_slice(&bounds.high.to_be_bytes());
        plain.extend_from_slice(&1.0_f64.to_be_bytes());
        encode_counts(sparse.iter().copied(), plain);
        let payload = (plain.len() - V2_HEADER) as u32;
        plain[4..8].copy_from_slice(&payload.to_be_bytes());
        wrap_stored_zlib(plain, out);
    })
}

/// A zlib stream of stored (uncompressed) deflate blocks around `plain`, behind the V2
/// compressed cookie and payload length, into `out` (cleared first).
fn wrap_stored_zlib(plain: &[u8], out: &mut Vec<u8>) {
    let blocks = plain.len().div_ceil(usize::from(u16::MAX)).max(1);
    out.clear();
    out.reserve(8 + 2 + 5 * blocks + plain.len() + 4);
    out.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // payload length, below
    out.extend_from_slice(&[0x78, 0x01]); // zlib: deflate, 32 KiB window, no dictionary
    let mut chunks = plain.chunks(usize::from(u16::MAX)).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]); // one empty final block
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(last)); // BFINAL, BTYPE = 00 (stored)
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(plain).to_be_bytes());
    let payload = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&payload.to_be_bytes());
}

/// No histogram of ours encodes to more than a few hundred KiB; a blob inflating further is
/// corrupt (or hostile).
const MAX_INFLATED: usize = 16 << 20;

/// A stored histogram that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad stored histogram: {0}")]
pub struct HistogramError(String);

fn bad_histogram(detail: impl std::fmt::Display) -> HistogramError {
    HistogramError(detail.to_string())
}

/// Decodes any V2 encoding (compressed with any deflate blocks, or plain), reusing the
/// inflater of the thread.
pub fn decode_histogram(blob: &[u8]) -> Result<Histogram<u64>, HistogramError> {
    with_plain(blob, |codec, plain| {
        codec
            .deserializer
            .deserialize(&mut &plain[..])
            .map_err(|e| bad_histogram(format!("{e:?}")))
    })
}

/// Decodes a stored histogram (as [`decode_histogram`]) into sparse `(bucket index, count)`
/// counts appended to `out` (ascending), without building a dense histogram; returns its
/// bounds.
pub fn decode_sparse_histogram(
    blob: &[u8],
    out: &mut Vec<(u32, u64)>,
) -> Result<HistBounds, HistogramError> {
    with_plain(blob, |_, plain| {
        if plain.len() < V2_HEADER || plain[..4] != V2_COOKIE.to_be_bytes() {
            return Err(bad_histogram("not a V2 encoding"));
        }
        let u32_at = |at: usize| u32::from_be_bytes(plain[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_be_bytes(plain[at..at + 8].try_into().expect("8 bytes"));
        let payload = u32_at(4) as usize;
        if u32_at(8) != 0 || plain.len() < V2_HEADER + payload {
            return Err(bad_histogram("unsupported or truncated V2 header"));
        }
        let bounds = HistBounds {
            low: u64_at(16),
            high: u64_at(24),
            sigfig: u8::try_from(u32_at(12)).map_err(|_| bad_histogram("significant figures"))?,
        };
        decode_counts(&plain[V2_HEADER..V2_HEADER + payload], |i, c| {
            out.push((i, c))
        })
        .ok_or_else(|| bad_histogram("bad counts"))?;
        Ok(bounds)
    })
}

/// Runs `f` on the plain V2 bytes of `blob`: the blob itself, or its inflated payload.
fn with_plain<T>(
    blob: &[u8],
    f: impl FnOnce(&mut Codec, &[u8]) -> Result<T, HistogramError>,
) -> Result<T, HistogramError> {
    CODEC.with_borrow_mut(|codec| {
        let compressed = blob.len() >= 8 && blob[..4] == V2_COMPRESSED_COOKIE.to_be_bytes();
        if !compressed {
            return f(codec, blob);
        }
        let payload = &blob[8..];
        codec.inflate.reset(true);
        let mut plain = std::mem::take(&mut codec.plain);
        plain.clear();
        plain.reserve(payload.len() * 8 + 64);
        let inflated = loop {
            let consumed = codec.inflate.total_in() as usize;
            let status = match codec.inflate.decompress_vec(
                &payload[consumed..],
                &mut plain,
                flate2::FlushDecompress::Finish,
            ) {
                Ok(status) => status,
                Err(error) => break Err(bad_histogram(error)),
            };
            match status {
                flate2::Status::StreamEnd => break Ok(()),
                _ if plain.len() >= MAX_INFLATED => {
                    break Err(bad_histogram("inflates beyond 16 MiB"));
                }
                _ if plain.len() == plain.capacity() => {
                    plain.reserve(plain.len().max(1024));
                }
                _ => break Err(bad_histogram("truncated deflate stream")),
            }
        };
        let result = inflated.and_then(|()| f(codec, &plain));
        codec.plain = plain;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2Serializer};

    fn bounds() -> [(u64, u64, u8); 5] {
        [
            (1, 3_600_000, 2),
            (1, 100_000_000, 2),
            (1, 16 * 1024 * 1024, 3),
            (10, 1_000_000, 1),
            (1000, 1 << 40, 2),
        ]
    }

    #[test]
    fn layout_matches_the_crate() {
        for (low, high, sigfig) in bounds() {
            let hist = Histogram::<u64>::new_with_bounds(low, high, sigfig).unwrap();
            let layout = Layout::of(&hist);
            let mut value = 0_u64;
            let mut last_index = None;
            while value <= high {
                let index = layout.index_of(value);
                assert_eq!(
                    layout.value_of(index),
                    hist.lowest_equivalent(value),
                    "{low}..{high}/{sigfig} at {value}"
                );
                assert!(index < layout.buckets(), "{value} -> {index}");
                if let Some(last) = last_index {
                    assert!(index >= last, "{value}: {index} after {last}");
                }
                last_index = Some(index);
                value = if value < 5000 {
                    value + 1
                } else {
                    value + value / 97
                };
            }
            // Every recorded bucket round-trips through the sparse form.
            let mut h = hist.clone();
            for v in [low, low + 1, 999, 12_345, high / 3, high] {
                h.record_n(v, v % 7 + 1).unwrap();
            }
            let mut sparse = Vec::new();
            sparse_of(&h, &mut sparse);
            let mut back = hist.clone();
            record_sparse(&mut back, &layout, &sparse);
            assert_eq!(back, h);
        }
    }

    #[test]
    fn counts_encoding_equals_the_crate_v2_payload() {
        for (low, high, sigfig) in bounds() {
            let template = Histogram::<u64>::new_with_bounds(low, high, sigfig).unwrap();
            let cases: [&[u64]; 5] = [
                &[],
                &[low],
                &[low, low + 1, low + 3],
                &[high],
                &[5_000, 5_001, 70_000, 70_000, 123_456_789 % high + low],
            ];
            for values in cases {
                let mut h = template.clone();
                for &v in values {
                    h.record_n(v, v % 300 + 1).unwrap();
                }
                let mut standard = Vec::new();
                V2Serializer::new().serialize(&h, &mut standard).unwrap();
                let mut sparse = Vec::new();
                sparse_of(&h, &mut sparse);
                let mut ours = Vec::new();
                encode_counts(sparse.iter().copied(), &mut ours);
                assert_eq!(ours, standard[40..], "{values:?} in {low}..{high}/{sigfig}");
                let mut decoded = Vec::new();
                decode_counts(&ours, |i, c| decoded.push((i, c))).unwrap();
                assert_eq!(decoded, sparse);
            }
        }
    }

    #[test]
    fn big_counts_and_bad_bytes() {
        let sparse = [(0, 1), (1, 1 << 40), (1000, u64::from(u32::MAX) + 7)];
        let mut bytes = Vec::new();
        encode_counts(sparse, &mut bytes);
        let mut decoded = Vec::new();
        decode_counts(&bytes, |i, c| decoded.push((i, c))).unwrap();
        assert_eq!(decoded, sparse);
        // A truncated varint is an error, not a panic.
        assert!(decode_counts(&[0x80], |_, _| {}).is_none());
    }

    #[test]
    fn combine_sorts_and_adds() {
        let mut counts = vec![(5, 1), (1, 2), (5, 3), (0, 1), (1, 1)];
        combine_sparse(&mut counts);
        assert_eq!(counts, [(0, 1), (1, 3), (5, 4)]);
    }

    #[test]
    fn sparse_merge_adds_equal_indices() {
        let mut a = vec![(1, 1), (5, 2)];
        merge_sparse(&mut a, &[(0, 1), (5, 3), (9, 1)]);
        assert_eq!(a, [(0, 1), (1, 1), (5, 5), (9, 1)]);
        merge_sparse(&mut a, &[(10, 4)]);
        assert_eq!(a.last(), Some(&(10, 4)));
    }

    #[test]
    fn sparse_merge_equals_adding_dense_counts() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(11);
        let sparse = |rng: &mut StdRng| -> Vec<(u32, u64)> {
            let n = rng.random_range(0..12);
            let mut indices: Vec<u32> = (0..n).map(|_| rng.random_range(0..24)).collect();
            indices.sort_unstable();
            indices.dedup();
            indices
                .into_iter()
                .map(|i| (i, rng.random_range(1..5)))
                .collect()
        };
        for _ in 0..2_000 {
            let (mut a, b) = (sparse(&mut rng), sparse(&mut rng));
            let mut dense = [0u64; 24];
            for &(i, c) in a.iter().chain(&b) {
                dense[i as usize] += c;
            }
            let want: Vec<(u32, u64)> = (0..24u32)
                .filter(|&i| dense[i as usize] > 0)
                .map(|i| (i, dense[i as usize]))
                .collect();
            merge_sparse(&mut a, &b);
            assert_eq!(a, want, "merging {b:?}");
        }
    }
}

#[cfg(test)]
mod codec_tests {
    use super::*;
    use hdrhistogram::serialization::V2DeflateSerializer;

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn stored_block_encoding_is_standard_v2_compressed() {
        for h in [
            histogram([]),
            histogram([5]),
            histogram((1..2_000).map(|v| v * 37 % 3_000_000 + 1)),
        ] {
            let blob = encode_histogram(&h);
            assert_eq!(blob[..4], V2_COMPRESSED_COOKIE.to_be_bytes());
            // The library's own reader (a fresh zlib inflater) accepts it.
            let standard: Histogram<u64> = Deserializer::new().deserialize(&mut &blob[..]).unwrap();
            assert_eq!(standard, h);
            assert_eq!(decode_histogram(&blob).unwrap(), h);
        }
    }

    #[test]
    fn sparse_encoding_equals_the_dense_one_and_decodes_back() {
        for h in [
            histogram([]),
            histogram([5]),
            histogram((1..2_000).map(|v| v * 37 % 3_000_000 + 1)),
        ] {
            let mut sparse = Vec::new();
            sparse_of(&h, &mut sparse);
            let bounds = HistBounds {
                low: 1,
                high: 3_600_000,
                sigfig: 2,
            };
            let blob = encode_sparse_histogram(bounds, &sparse);
            assert_eq!(blob, encode_histogram(&h));
            let mut back = Vec::new();
            assert_eq!(decode_sparse_histogram(&blob, &mut back).unwrap(), bounds);
            assert_eq!(back, sparse);
        }
        // Blobs with real deflate blocks decode sparsely too.
        let h = histogram((1..500).map(|v| v * 7));
        let mut blob = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut blob).unwrap();
        let (mut back, mut sparse) = (Vec::new(), Vec::new());
        decode_sparse_histogram(&blob, &mut back).unwrap();
        sparse_of(&h, &mut sparse);
        assert_eq!(back, sparse);
        assert!(decode_sparse_histogram(&blob[..blob.len() - 3], &mut back).is_err());
    }

    #[test]
    fn real_deflate_blobs_still_decode() {
        let h = histogram((1..500).map(|v| v * 7));
        let mut blob = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut blob).unwrap();
        assert_eq!(decode_histogram(&blob).unwrap(), h);
        // And again with the same thread's inflater (reset between uses).
        assert_eq!(decode_histogram(&encode_histogram(&h)).unwrap(), h);
        assert_eq!(decode_histogram(&blob).unwrap(), h);
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        let blob = encode_histogram(&histogram([1, 2, 3]));
        assert!(decode_histogram(&blob[..blob.len() - 6]).is_err());
        assert!(decode_histogram(b"nonsense").is_err());
        let mut flipped = blob.clone();
        let at = flipped.len() - 1;
        flipped[at] ^= 0xff; // adler32 mismatch
        assert!(decode_histogram(&flipped).is_err());
    }

    #[test]
    fn adler32_matches_the_reference() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
