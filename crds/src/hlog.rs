//! The interval histogram log (`.hlog`): HdrHistogram's own text format, so its tools read our files.
//!
//! This module owns three things and nothing else:
//! - the histogram configuration every Barrage recorder uses ([`HistogramConfig::STANDARD`],
//!   [`new_histogram`]): values are microseconds, from 1 µs to one hour at 3 significant digits;
//! - the V2-compressed histogram encoding ([`encode_v2_compressed`], [`decode_v2_compressed`]);
//! - the interval log text ([`write_log`], [`parse_log`], [`HistogramLog::parse`]).
//!
//! It does no I/O: callers hand it strings and get strings back.
//!
//! # The log format
//! The format is the one written by HdrHistogram's `HistogramLogWriter` and read by its
//! `HistogramLogReader` and `HistogramLogProcessor`:
//! ```text
//! #[Histogram log format version 1.3]
//! #[StartTime: 1732567200.000 (seconds since epoch), 2024-11-25T20:40:00Z]
//! #[BaseTime: 1732567200.000 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=produce,0.000,10.000,12.345,HISTFAAAAB...
//! ```
//! Every interval line is `[Tag=TAG,]START,LENGTH,MAX,BASE64`: start and length in seconds
//! (start relative to the base time), `MAX` the interval's largest value divided by 1000
//! (microseconds printed as milliseconds, as the Java tool prints nanoseconds as milliseconds
//! by default) and `BASE64` a V2-compressed histogram. Other lines starting with `#` are comments.
//!
//! # The V2 compressed encoding
//! A compressed blob is a big-endian `u32` cookie (`0x1c849304`, with the word-size bits
//! `0x10` set by every V2 writer: `0x1c849314`), a big-endian `u32` length of the zlib stream
//! that follows, and the zlib stream itself. Inflated, it is a V2 histogram: cookie
//! `0x1c849303` (written `0x1c849313`), payload length, normalizing index offset, significant
//! digits, lowest discernible value (`u64`), highest trackable value (`u64`), integer-to-double
//! ratio (`f64`), then `payload length` bytes of zig-zag LEB128 counts where a negative number
//! is a run of empty buckets. All integers are big-endian.
//!
//! # Hardened decoding
//! Blobs come from agents, from object storage and from people's files, so decoding trusts
//! nothing in them. [`decode_v2_compressed`] checks every size a blob claims against what it
//! actually carries and against [`DecodeLimits`] *before* anything of that size is allocated:
//! the base64 text length, the claimed compressed length, the inflated size (the zlib stream is
//! read through a hard cap, so a deflate bomb stops at the cap), the inner payload length, and the
//! counts array the header's configuration would need. Only then are the bytes handed to the
//! `hdrhistogram` deserializer, whose own V2 reader sizes a buffer from the payload length in the
//! blob before reading it.

use std::fmt;

use base64::Engine as _;
use flate2::{Decompress, FlushDecompress, Status};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// The cookie of a V2 histogram, without the word-size bits (`0x1c849303`).
pub const V2_COOKIE_BASE: u32 = 0x1c84_9303;
/// The cookie of a V2 compressed histogram, without the word-size bits (`0x1c849304`).
pub const V2_COMPRESSED_COOKIE_BASE: u32 = 0x1c84_9304;
/// The bits of a cookie that carry the word size; V2 writers set `0x10`, readers ignore them.
const COOKIE_WORD_SIZE_BITS: u32 = 0xf0;
/// The V2 cookie exactly as the `hdrhistogram` deserializer expects it.
const V2_COOKIE_AS_WRITTEN: u32 = V2_COOKIE_BASE | 0x10;
/// Bytes in the compressed envelope before the zlib stream: cookie and length.
const COMPRESSED_HEADER_LEN: usize = 8;
/// Bytes in the V2 header before the counts payload.
const V2_HEADER_LEN: usize = 40;

/// The version line [`write_log`] writes.
pub const LOG_FORMAT_VERSION: &str = "1.3";
/// The legend line of an interval log (the CSV header).
pub const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";
/// `Interval_Max` is the interval's largest value divided by this: recorded microseconds are
/// printed as milliseconds.
pub const MAX_VALUE_UNIT_RATIO: f64 = 1000.0;

/// The range and precision of a histogram: what decides its bucket layout.
///
/// Two histograms with the same `lowest` and `sigfig` have the same buckets (a larger `highest`
/// only adds buckets at the top), so adding one to the other is exact; see
/// [`HistogramConfig::is_compatible_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistogramConfig {
    /// Lowest discernible value (≥ 1).
    pub lowest: u64,
    /// Highest trackable value (≥ 2 × `lowest`).
    pub highest: u64,
    /// Significant value digits, 1..=5.
    pub sigfig: u8,
}

impl HistogramConfig {
    /// The configuration every Barrage recorder uses: microseconds from 1 µs to one hour
    /// (3 600 000 000 µs, past which a value is counted as overflow, not recorded), 3
    /// significant digits.
    pub const STANDARD: HistogramConfig = HistogramConfig {
        lowest: 1,
        highest: 3_600_000_000,
        sigfig: 3,
    };

    /// Whether histograms of the two configurations share a bucket layout (same `lowest` and
    /// `sigfig`), so that adding one to the other loses nothing.
    pub fn is_compatible_with(&self, other: &HistogramConfig) -> bool {
        self.lowest == other.lowest && self.sigfig == other.sigfig
    }

    /// How many counters a histogram of this configuration allocates, computed the way
    /// `hdrhistogram` does, without allocating them. `None` if the configuration is invalid.
    pub fn counts_len(&self) -> Option<usize> {
        if self.lowest < 1 || self.lowest > u64::MAX / 2 || self.highest < 2 * self.lowest {
            return None;
        }
        if self.sigfig > 5 {
            return None;
        }
        let largest = 2 * 10_u32.pow(u32::from(self.sigfig));
        // ceil(log2(largest)) and floor(log2(lowest)), in integers.
        let sub_bucket_count_magnitude = u32::BITS - (largest - 1).leading_zeros();
        let unit_magnitude = u64::BITS - 1 - self.lowest.leading_zeros();
        if unit_magnitude + sub_bucket_count_magnitude > 63 {
            return None;
        }
        let sub_bucket_count = 1_u64 << sub_bucket_count_magnitude;
        let mut smallest_untrackable = sub_bucket_count << unit_magnitude;
        let mut buckets: u64 = 1;
        while smallest_untrackable <= self.highest {
            if smallest_untrackable > u64::MAX / 2 {
                buckets += 1;
                break;
            }
            smallest_untrackable <<= 1;
            buckets += 1;
        }
        usize::try_from((buckets + 1) * (sub_bucket_count / 2)).ok()
    }
}

impl HistogramConfig {
    /// The value position `index` of the counts array stands for (the lowest value of its
    /// bucket), computed as `hdrhistogram` does. Meaningful for `index < counts_len()`.
    pub fn value_at_index(&self, index: usize) -> u64 {
        let largest = 2 * 10_u32.pow(u32::from(self.sigfig.min(5)));
        let sub_bucket_count_magnitude = u32::BITS - (largest - 1).leading_zeros();
        let half_magnitude = sub_bucket_count_magnitude - 1;
        let half_count = 1_u64 << half_magnitude;
        let unit_magnitude = u64::BITS - 1 - self.lowest.max(1).leading_zeros();
        let mut bucket = (index >> half_magnitude) as i64 - 1;
        let mut sub = (index as u64 & (half_count - 1)) + half_count;
        if bucket < 0 {
            sub -= half_count;
            bucket = 0;
        }
        let shift = u32::try_from(bucket)
            .unwrap_or(u32::MAX)
            .saturating_add(unit_magnitude);
        sub.checked_shl(shift).unwrap_or(u64::MAX)
    }

    /// The position of `value` in the counts array, computed as `hdrhistogram` does (the
    /// inverse of [`value_at_index`](Self::value_at_index) on each bucket's lowest value).
    pub fn index_of(&self, value: u64) -> usize {
        let largest = 2 * 10_u32.pow(u32::from(self.sigfig.min(5)));
        let sub_bucket_count_magnitude = u32::BITS - (largest - 1).leading_zeros();
        let half_magnitude = sub_bucket_count_magnitude - 1;
        let half_count = 1_u64 << half_magnitude;
        let unit_magnitude = u64::BITS - 1 - self.lowest.max(1).leading_zeros();
        let mask = ((1_u64 << sub_bucket_count_magnitude) - 1) << unit_magnitude;
        let base = (u64::BITS - unit_magnitude - sub_bucket_count_magnitude) as i64;
        let bucket = (base - i64::from((value | mask).leading_zeros())).max(0) as u32;
        let sub = value >> (bucket + unit_magnitude);
        let index = ((u64::from(bucket) + 1) << half_magnitude) + sub - half_count;
        usize::try_from(index).unwrap_or(usize::MAX)
    }
}

impl Default for HistogramConfig {
    fn default() -> Self {
        HistogramConfig::STANDARD
    }
}

impl fmt::Display for HistogramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lowest={} highest={} sigfig={}",
            self.lowest, self.highest, self.sigfig
        )
    }
}

/// The configuration of a histogram: its lowest discernible value, highest trackable value
/// (which grows when an auto-resizing histogram records past it) and significant digits.
pub fn histogram_config_of(h: &Histogram<u64>) -> HistogramConfig {
    HistogramConfig {
        lowest: h.low(),
        highest: h.high(),
        sigfig: h.sigfig(),
    }
}

/// A new, empty histogram of [`HistogramConfig::STANDARD`] with auto-resize on.
///
/// Recorders must still count values above [`HistogramConfig::STANDARD`]`.highest` as overflow
/// instead of recording them: auto-resize only keeps a stray value from being lost.
pub fn new_histogram() -> Histogram<u64> {
    let c = HistogramConfig::STANDARD;
    let mut h = Histogram::new_with_bounds(c.lowest, c.highest, c.sigfig)
        // Constant, valid bounds (the tests construct it): this cannot fail at run time.
        .expect("the standard histogram configuration is valid");
    h.auto(true);
    h
}

/// Caps applied while decoding a histogram blob, all checked before allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest compressed blob (after base64 decoding) accepted, in bytes. Default 4 MiB.
    pub max_compressed_bytes: usize,
    /// Largest inflated V2 histogram accepted, in bytes. Default 16 MiB.
    pub max_inflated_bytes: usize,
    /// Largest counts array a blob's configuration may require, in counters (8 bytes each).
    /// Default 2 Mi counters (16 MiB).
    pub max_counts: usize,
    /// Largest highest trackable value accepted. Default `i64::MAX` (Java's limit).
    pub max_highest: u64,
    /// When set, a blob whose configuration is not [compatible](HistogramConfig::is_compatible_with)
    /// with this one (different `lowest` or `sigfig`) is rejected. Default: not set.
    pub expected: Option<HistogramConfig>,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_compressed_bytes: 4 * 1024 * 1024,
            max_inflated_bytes: 16 * 1024 * 1024,
            max_counts: 2 * 1024 * 1024,
            max_highest: i64::MAX.unsigned_abs(),
            expected: None,
        }
    }
}

impl DecodeLimits {
    /// These limits, also requiring the blob's configuration to be compatible with `config`.
    pub fn expecting(self, config: HistogramConfig) -> Self {
        DecodeLimits {
            expected: Some(config),
            ..self
        }
    }
}

/// Why a histogram or an interval log could not be encoded, decoded or merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HlogError {
    /// The base64 text is longer than [`DecodeLimits::max_compressed_bytes`] allows.
    #[error(
        "histogram blob is {len} base64 characters, more than the {max_bytes}-byte compressed limit allows"
    )]
    Base64TooLong {
        /// Characters in the text.
        len: usize,
        /// The compressed limit, in bytes.
        max_bytes: usize,
    },
    /// The blob is not valid base64.
    #[error("histogram blob is not valid base64: {0}")]
    Base64(String),
    /// The blob ends before a header or a claimed length does.
    #[error("histogram blob is truncated: {what} needs {needed} bytes, only {available} present")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        available: usize,
    },
    /// A cookie is not the one expected (older V0/V1 encodings and DoubleHistograms are not
    /// supported).
    #[error("histogram blob has cookie {found:#010x}, expected {expected:#010x} ({what})")]
    WrongCookie {
        /// The cookie found.
        found: u32,
        /// The expected cookie base.
        expected: u32,
        /// Which cookie: the compressed envelope or the inner V2 histogram.
        what: &'static str,
    },
    /// The compressed envelope claims more bytes than [`DecodeLimits::max_compressed_bytes`].
    #[error("histogram blob claims {claimed} compressed bytes, more than the limit of {max}")]
    CompressedTooLarge {
        /// Claimed (or actual) compressed length.
        claimed: u64,
        /// The limit.
        max: usize,
    },
    /// The compressed envelope's length does not match the bytes that follow it.
    #[error("histogram blob claims {claimed} compressed bytes but carries {actual}")]
    CompressedLengthMismatch {
        /// Claimed length.
        claimed: u64,
        /// Bytes actually present after the envelope header.
        actual: usize,
    },
    /// Inflating the blob would exceed [`DecodeLimits::max_inflated_bytes`] (a deflate bomb, or
    /// a histogram far larger than ours).
    #[error("histogram blob inflates to more than the limit of {max} bytes")]
    InflatedTooLarge {
        /// The limit.
        max: usize,
    },
    /// The zlib stream is corrupt.
    #[error("histogram blob is corrupt: zlib stream: {0}")]
    Inflate(String),
    /// The inner V2 header claims a payload longer than what was inflated.
    #[error(
        "histogram header claims a {claimed}-byte payload but only {available} bytes follow the header"
    )]
    PayloadLengthMismatch {
        /// Claimed payload length.
        claimed: u64,
        /// Bytes available after the header.
        available: usize,
    },
    /// The header uses a feature this reader does not support.
    #[error("histogram header: unsupported {0}")]
    Unsupported(&'static str),
    /// The significant digits are outside 1..=5.
    #[error("histogram header: significant digits must be 1..=5 (got {0})")]
    SigFig(u32),
    /// The value range is invalid or above [`DecodeLimits::max_highest`].
    #[error("histogram header: invalid range lowest={lowest} highest={highest}: {rule}")]
    Range {
        /// Lowest discernible value.
        lowest: u64,
        /// Highest trackable value.
        highest: u64,
        /// The rule broken.
        rule: String,
    },
    /// The configuration would need more counters than [`DecodeLimits::max_counts`].
    #[error("histogram header: {config} needs {counts} counters, more than the limit of {max}")]
    TooManyCounts {
        /// The configuration.
        config: HistogramConfig,
        /// Counters it needs.
        counts: u64,
        /// The limit.
        max: usize,
    },
    /// Two histogram configurations do not share a bucket layout.
    #[error("histogram configuration mismatch: expected {expected}, found {found}")]
    ConfigMismatch {
        /// The configuration required.
        expected: HistogramConfig,
        /// The configuration found.
        found: HistogramConfig,
    },
    /// The counts payload is corrupt (reported by the `hdrhistogram` deserializer).
    #[error("histogram payload is corrupt: {0}")]
    Payload(String),
    /// Encoding a histogram failed.
    #[error("could not encode histogram: {0}")]
    Encode(String),
    /// Adding one histogram to another failed.
    #[error("could not merge histograms: {0}")]
    Merge(String),
    /// A tag is empty or contains a comma, whitespace or a control character.
    #[error(
        "invalid tag {0:?}: a tag must be non-empty, without commas, whitespace or control characters"
    )]
    InvalidTag(String),
    /// A time is negative, not finite, or out of range.
    #[error("invalid {what}: {value} (must be a finite number of seconds ≥ 0)")]
    InvalidTime {
        /// Which time.
        what: &'static str,
        /// The value given.
        value: f64,
    },
    /// A line of an interval log could not be read.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A histogram on a line of an interval log could not be decoded.
    #[error("line {line}: {source}")]
    LineHistogram {
        /// 1-based line number.
        line: usize,
        /// Why the histogram could not be decoded.
        #[source]
        source: Box<HlogError>,
    },
}

/// Encodes a histogram in the V2 compressed format and returns it as base64 (standard alphabet,
/// padded), exactly what an interval log line carries.
pub fn encode_v2_compressed(h: &Histogram<u64>) -> Result<String, HlogError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| HlogError::Encode(format!("{e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

fn cookie_base(cookie: u32) -> u32 {
    cookie & !COOKIE_WORD_SIZE_BITS
}

/// A lenient standard-alphabet engine: padding optional, as some writers drop it.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Buffers reused across many decodes: the compressed bytes, the inflated histogram and the
/// inflater's state. Decoding thousands of blobs with one scratch allocates nothing per blob
/// once the buffers have grown to the largest blob seen.
#[derive(Default)]
pub struct DecodeScratch {
    compressed: Vec<u8>,
    inflated: Vec<u8>,
    inflater: Option<Decompress>,
}

impl fmt::Debug for DecodeScratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeScratch")
            .field("compressed", &self.compressed.len())
            .field("inflated", &self.inflated.len())
            .finish()
    }
}

/// Decodes a base64 V2-compressed histogram, checking every claimed size against `limits`
/// before allocating (see the [module documentation](self#hardened-decoding)).
///
/// The result has auto-resize on, like [`new_histogram`], so it can be merged into.
pub fn decode_v2_compressed(b64: &str, limits: &DecodeLimits) -> Result<Histogram<u64>, HlogError> {
    let mut scratch = DecodeScratch::default();
    checked_inflate(b64, limits, &mut scratch)?;
    let inflated = &mut scratch.inflated;
    // Everything the deserializer will allocate is now bounded; let it read the counts.
    inflated[0..4].copy_from_slice(&V2_COOKIE_AS_WRITTEN.to_be_bytes());
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &inflated[..])
        .map_err(|e| HlogError::Payload(e.to_string()))?;
    h.auto(true);
    Ok(h)
}

/// Decodes a base64 V2-compressed histogram into its non-zero counts, `(index, count)` in
/// ascending index order, without building a histogram: the same hardened checks as
/// [`decode_v2_compressed`], buffers reused from `scratch`, `out` cleared first.
///
/// Indexes are positions in the counts array of the returned configuration; histograms of
/// [compatible](HistogramConfig::is_compatible_with) configurations share them, and
/// [`HistogramConfig::value_at_index`] gives the value a position stands for. Recording
/// `count` times that value into a compatible histogram adds exactly what the blob holds.
pub fn decode_v2_counts(
    b64: &str,
    limits: &DecodeLimits,
    scratch: &mut DecodeScratch,
    out: &mut Vec<(u32, u64)>,
) -> Result<HistogramConfig, HlogError> {
    out.clear();
    let (config, payload) = checked_inflate(b64, limits, scratch)?;
    let payload = scratch.inflated.get(payload).unwrap_or(&[]);
    // Checked in `checked_config`: the counts array length is known and within the limits.
    let counts_len = config.counts_len().unwrap_or(0);
    let mut index: usize = 0;
    let mut at = 0;
    while at < payload.len() {
        let (zz, used) = read_varint(&payload[at..]).ok_or_else(|| {
            HlogError::Payload("the counts payload ends inside a number".to_string())
        })?;
        at += used;
        // Zig-zag: a negative number is a run of empty buckets.
        let n = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        if n < 0 {
            let zeros = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
            index = index.saturating_add(zeros);
        } else {
            if n > 0 {
                if index >= counts_len {
                    return Err(HlogError::Payload(format!(
                        "the counts payload runs past the end of the counts array ({counts_len} counters)"
                    )));
                }
                let i = u32::try_from(index).map_err(|_| {
                    HlogError::Payload(format!("counts index {index} is too large"))
                })?;
                out.push((i, n.unsigned_abs()));
            }
            index = index.saturating_add(1);
        }
    }
    Ok(config)
}

/// Reads one HdrHistogram LEB128 number (at most 9 bytes; the 9th carries 8 bits).
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..8 {
        let b = *bytes.get(i)?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    let b = *bytes.get(8)?;
    Some((value | (u64::from(b) << 56), 9))
}

/// Inflates `body` (a zlib stream) into `out`, writing at most `limit` bytes.
fn inflate_capped(
    inflater: &mut Decompress,
    body: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), HlogError> {
    inflater.reset(true);
    out.clear();
    let mut input = body;
    while out.len() < limit {
        let len = out.len();
        let grow = len.max(4096).min(limit - len);
        out.resize(len + grow, 0);
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(input, &mut out[len..], FlushDecompress::None)
            .map_err(|e| HlogError::Inflate(e.to_string()));
        let consumed = usize::try_from(inflater.total_in() - in_before).unwrap_or(input.len());
        let produced = usize::try_from(inflater.total_out() - out_before).unwrap_or(0);
        out.truncate(len + produced);
        input = input.get(consumed..).unwrap_or(&[]);
        match status? {
            Status::StreamEnd => return Ok(()),
            _ if consumed == 0 && produced == 0 => {
                return Err(HlogError::Inflate(
                    "the zlib stream ends before its end marker".to_string(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Steps 1 to 4 of hardened decoding: base64, the compressed envelope, inflating through the
/// cap, the inner V2 header. Leaves the inflated histogram in `scratch.inflated` and returns
/// its configuration and where its counts payload lies.
fn checked_inflate(
    b64: &str,
    limits: &DecodeLimits,
    scratch: &mut DecodeScratch,
) -> Result<(HistogramConfig, std::ops::Range<usize>), HlogError> {
    let DecodeScratch {
        compressed,
        inflated,
        inflater,
    } = scratch;
    checked_base64(b64, limits, compressed)?;
    let body = checked_envelope(compressed, limits)?;
    let inflater = inflater.get_or_insert_with(|| Decompress::new(true));
    checked_inflated(inflater, body, limits, inflated)?;
    checked_v2_header(inflated, limits)
}

/// Step 1, base64: bounds the text before decoding it into `bytes`.
fn checked_base64(b64: &str, limits: &DecodeLimits, bytes: &mut Vec<u8>) -> Result<(), HlogError> {
    let max_b64 = limits
        .max_compressed_bytes
        .div_ceil(3)
        .saturating_mul(4)
        .saturating_add(4);
    if b64.len() > max_b64 {
        return Err(HlogError::Base64TooLong {
            len: b64.len(),
            max_bytes: limits.max_compressed_bytes,
        });
    }
    bytes.clear();
    BASE64
        .decode_vec(b64.trim(), bytes)
        .map_err(|e| HlogError::Base64(e.to_string()))
}

/// Step 2, the compressed envelope: cookie and claimed length, against the real length and the
/// cap. Returns the zlib body.
fn checked_envelope<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Result<&'a [u8], HlogError> {
    let cookie = be_u32(bytes, 0).ok_or(HlogError::Truncated {
        what: "compressed header",
        needed: COMPRESSED_HEADER_LEN as u64,
        available: bytes.len(),
    })?;
    if cookie_base(cookie) != V2_COMPRESSED_COOKIE_BASE {
        return Err(HlogError::WrongCookie {
            found: cookie,
            expected: V2_COMPRESSED_COOKIE_BASE,
            what: "V2 compressed histogram",
        });
    }
    let claimed = be_u32(bytes, 4).ok_or(HlogError::Truncated {
        what: "compressed header",
        needed: COMPRESSED_HEADER_LEN as u64,
        available: bytes.len(),
    })?;
    let claimed64 = u64::from(claimed);
    if claimed64 > limits.max_compressed_bytes as u64 {
        return Err(HlogError::CompressedTooLarge {
            claimed: claimed64,
            max: limits.max_compressed_bytes,
        });
    }
    let body = &bytes[COMPRESSED_HEADER_LEN..];
    if claimed64 > body.len() as u64 {
        return Err(HlogError::Truncated {
            what: "compressed histogram",
            needed: claimed64,
            available: body.len(),
        });
    }
    if claimed64 != body.len() as u64 {
        return Err(HlogError::CompressedLengthMismatch {
            claimed: claimed64,
            actual: body.len(),
        });
    }
    Ok(body)
}

/// Step 3, inflating `body` into `inflated` through a hard cap: a deflate bomb stops at
/// `max_inflated_bytes + 1`.
fn checked_inflated(
    inflater: &mut Decompress,
    body: &[u8],
    limits: &DecodeLimits,
    inflated: &mut Vec<u8>,
) -> Result<(), HlogError> {
    inflate_capped(
        inflater,
        body,
        inflated,
        limits.max_inflated_bytes.saturating_add(1),
    )?;
    if inflated.len() > limits.max_inflated_bytes {
        return Err(HlogError::InflatedTooLarge {
            max: limits.max_inflated_bytes,
        });
    }
    Ok(())
}

/// Step 4, the inner V2 header of the inflated histogram: its cookie, payload length and
/// configuration. Returns the configuration and where the counts payload lies.
fn checked_v2_header(
    inflated: &[u8],
    limits: &DecodeLimits,
) -> Result<(HistogramConfig, std::ops::Range<usize>), HlogError> {
    let truncated = |available| HlogError::Truncated {
        what: "V2 histogram header",
        needed: V2_HEADER_LEN as u64,
        available,
    };
    if inflated.len() < V2_HEADER_LEN {
        return Err(truncated(inflated.len()));
    }
    let inner_cookie = be_u32(inflated, 0).ok_or(truncated(inflated.len()))?;
    if cookie_base(inner_cookie) != V2_COOKIE_BASE {
        return Err(HlogError::WrongCookie {
            found: inner_cookie,
            expected: V2_COOKIE_BASE,
            what: "V2 histogram inside the compressed envelope",
        });
    }
    let payload_len = u64::from(be_u32(inflated, 4).ok_or(truncated(inflated.len()))?);
    let available = inflated.len() - V2_HEADER_LEN;
    if payload_len > available as u64 {
        return Err(HlogError::PayloadLengthMismatch {
            claimed: payload_len,
            available,
        });
    }
    let normalizing_offset = be_u32(inflated, 8).ok_or(truncated(inflated.len()))?;
    if normalizing_offset != 0 {
        return Err(HlogError::Unsupported(
            "normalizing index offset (non-zero)",
        ));
    }
    let sigfig = be_u32(inflated, 12).ok_or(truncated(inflated.len()))?;
    let lowest = be_u64(inflated, 16).ok_or(truncated(inflated.len()))?;
    let highest = be_u64(inflated, 24).ok_or(truncated(inflated.len()))?;
    let ratio = f64::from_bits(be_u64(inflated, 32).ok_or(truncated(inflated.len()))?);
    let config = checked_config(sigfig, lowest, highest, limits)?;
    if ratio != 1.0 {
        return Err(HlogError::Unsupported(
            "integer-to-double conversion ratio other than 1 (a DoubleHistogram?)",
        ));
    }
    if let Some(expected) = limits.expected
        && !expected.is_compatible_with(&config)
    {
        return Err(HlogError::ConfigMismatch {
            expected,
            found: config,
        });
    }
    // The payload length fits: it is at most the inflated length.
    let payload_len = usize::try_from(payload_len).unwrap_or(available);
    Ok((config, V2_HEADER_LEN..V2_HEADER_LEN + payload_len))
}

/// Checks a header's configuration against the rules and the limits.
fn checked_config(
    sigfig: u32,
    lowest: u64,
    highest: u64,
    limits: &DecodeLimits,
) -> Result<HistogramConfig, HlogError> {
    let range = |rule: String| HlogError::Range {
        lowest,
        highest,
        rule,
    };
    let sigfig_u8 = match u8::try_from(sigfig) {
        Ok(s @ 1..=5) => s,
        _ => return Err(HlogError::SigFig(sigfig)),
    };
    if lowest < 1 {
        return Err(range("lowest must be at least 1".to_string()));
    }
    if lowest > u64::MAX / 2 || highest < 2 * lowest {
        return Err(range("highest must be at least twice lowest".to_string()));
    }
    if highest > limits.max_highest {
        return Err(range(format!(
            "highest must be at most {}",
            limits.max_highest
        )));
    }
    let config = HistogramConfig {
        lowest,
        highest,
        sigfig: sigfig_u8,
    };
    let counts = config
        .counts_len()
        .ok_or_else(|| range("lowest is too large for this many significant digits".to_string()))?;
    if counts > limits.max_counts {
        return Err(HlogError::TooManyCounts {
            config,
            counts: counts as u64,
            max: limits.max_counts,
        });
    }
    Ok(config)
}

/// Adds `src` into `dst`, refusing histograms whose configurations do not share a bucket
/// layout (different lowest discernible value or significant digits), which could only be
/// merged approximately.
///
/// Values of `src` above `dst`'s range are an error unless `dst` auto-resizes.
pub fn merge_into(dst: &mut Histogram<u64>, src: &Histogram<u64>) -> Result<(), HlogError> {
    let expected = histogram_config_of(dst);
    let found = histogram_config_of(src);
    if !expected.is_compatible_with(&found) {
        return Err(HlogError::ConfigMismatch { expected, found });
    }
    dst.add(src).map_err(|e| {
        HlogError::Merge(match e {
            hdrhistogram::AdditionError::OtherAddendValueExceedsRange => format!(
                "a value ({}) exceeds the destination's highest trackable value ({}) and it does not auto-resize",
                src.max(),
                dst.high()
            ),
            other => format!("{other:?}"),
        })
    })
}

/// One interval of one metric: a line of an interval log.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalEntry {
    /// The metric (`produce`, `service`, `lag`, `e2e`); `None` for untagged (legacy) lines.
    pub tag: Option<String>,
    /// Start of the interval, seconds after the log's base time (millisecond precision in text).
    pub start_secs: f64,
    /// Length of the interval, seconds (millisecond precision in text).
    pub length_secs: f64,
    /// The values recorded during the interval.
    pub histogram: Histogram<u64>,
}

/// A parsed interval log: header times and entries.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramLog {
    /// `#[StartTime: …]`, seconds since the epoch, if present.
    pub start_time_secs: Option<f64>,
    /// `#[BaseTime: …]`, seconds since the epoch, if present: interval starts are relative to it.
    pub base_time_secs: Option<f64>,
    /// The interval lines, in file order.
    pub entries: Vec<IntervalEntry>,
}

impl HistogramLog {
    /// Parses an interval log, keeping its header times; see [`parse_log`].
    pub fn parse(text: &str, limits: &DecodeLimits) -> Result<HistogramLog, HlogError> {
        let mut log = HistogramLog {
            start_time_secs: None,
            base_time_secs: None,
            entries: Vec::new(),
        };
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix("#[StartTime:") {
                log.start_time_secs = Some(header_seconds(rest, line, "StartTime")?);
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix("#[BaseTime:") {
                log.base_time_secs = Some(header_seconds(rest, line, "BaseTime")?);
                continue;
            }
            if trimmed.starts_with('#') || trimmed.starts_with("\"StartTimestamp\"") {
                continue;
            }
            log.entries
                .push(parse_interval_line(trimmed, line, limits)?);
        }
        Ok(log)
    }
}

/// The number after `#[StartTime:` or `#[BaseTime:`.
fn header_seconds(rest: &str, line: usize, what: &str) -> Result<f64, HlogError> {
    let token = rest
        .split(|c: char| c.is_whitespace() || c == ']' || c == ',')
        .find(|t| !t.is_empty())
        .unwrap_or("");
    match token.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(HlogError::Line {
            line,
            message: format!("{what}: expected seconds since the epoch, got {token:?}"),
        }),
    }
}

/// The fields of an interval line: tag, start, length and the base64 histogram, checked.
struct LineFields<'a> {
    tag: Option<&'a str>,
    start_secs: f64,
    length_secs: f64,
    blob: &'a str,
}

fn line_fields(text: &str, line: usize) -> Result<LineFields<'_>, HlogError> {
    let mut parts = text.split(',').map(str::trim);
    let mut first = parts.next();
    let tag = match first.and_then(|f| f.strip_prefix("Tag=")) {
        Some(t) => {
            if !is_valid_tag(t) {
                return Err(HlogError::Line {
                    line,
                    message: HlogError::InvalidTag(t.to_string()).to_string(),
                });
            }
            first = parts.next();
            Some(t)
        }
        None => None,
    };
    let mut fields = [""; 4];
    let mut n = 0;
    for f in first.into_iter().chain(parts) {
        if n < fields.len() {
            fields[n] = f;
        }
        n += 1;
    }
    if n != fields.len() {
        return Err(HlogError::Line {
            line,
            message: format!(
                "expected [Tag=TAG,]StartTimestamp,Interval_Length,Interval_Max,Interval_Compressed_Histogram; found {n} fields"
            ),
        });
    }
    let [start, length, max, blob] = fields;
    let number = |name: &str, s: &str| -> Result<f64, HlogError> {
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(HlogError::Line {
                line,
                message: format!("{name}: expected a number, got {s:?}"),
            }),
        }
    };
    let start_secs = number("StartTimestamp", start)?;
    let length_secs = number("Interval_Length", length)?;
    // Interval_Max is informative only (readers deduce it from the histogram), as in Java.
    number("Interval_Max", max)?;
    Ok(LineFields {
        tag,
        start_secs,
        length_secs,
        blob,
    })
}

fn parse_interval_line(
    text: &str,
    line: usize,
    limits: &DecodeLimits,
) -> Result<IntervalEntry, HlogError> {
    let fields = line_fields(text, line)?;
    let histogram =
        decode_v2_compressed(fields.blob, limits).map_err(|source| HlogError::LineHistogram {
            line,
            source: Box::new(source),
        })?;
    Ok(IntervalEntry {
        tag: fields.tag.map(str::to_string),
        start_secs: fields.start_secs,
        length_secs: fields.length_secs,
        histogram,
    })
}

/// What [`visit_log_counts`] hands over for each interval line.
#[derive(Debug)]
pub struct CountsEntry<'a> {
    /// The line's tag; `None` for untagged (legacy) lines.
    pub tag: Option<&'a str>,
    /// The histogram's configuration.
    pub config: HistogramConfig,
    /// Its non-zero counts, `(index, count)` in ascending index order (see [`decode_v2_counts`]).
    pub counts: &'a [(u32, u64)],
}

/// Reads an interval log exactly as [`parse_log`] does (the same checks, the same errors, the
/// first bad line reported), but hands each line's histogram to `visit` as its non-zero counts
/// instead of building it, reusing `scratch` and `counts` for every line.
pub fn visit_log_counts(
    text: &str,
    limits: &DecodeLimits,
    scratch: &mut DecodeScratch,
    counts: &mut Vec<(u32, u64)>,
    mut visit: impl FnMut(CountsEntry<'_>) -> Result<(), HlogError>,
) -> Result<(), HlogError> {
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("#[StartTime:") {
            header_seconds(rest, line, "StartTime")?;
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("#[BaseTime:") {
            header_seconds(rest, line, "BaseTime")?;
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with("\"StartTimestamp\"") {
            continue;
        }
        let fields = line_fields(trimmed, line)?;
        let config = decode_v2_counts(fields.blob, limits, scratch, counts).map_err(|source| {
            HlogError::LineHistogram {
                line,
                source: Box::new(source),
            }
        })?;
        visit(CountsEntry {
            tag: fields.tag,
            config,
            counts,
        })?;
    }
    Ok(())
}

/// Parses an interval log as written by [`write_log`] or by HdrHistogram's Java tools
/// (`HistogramLogWriter`, jHiccup): comments, `#[StartTime: …]`, `#[BaseTime: …]`, the legend
/// line, and interval lines with or without `Tag=`. Every histogram is decoded with `limits`;
/// the first bad line is reported with its line number.
pub fn parse_log(text: &str, limits: &DecodeLimits) -> Result<Vec<IntervalEntry>, HlogError> {
    HistogramLog::parse(text, limits).map(|log| log.entries)
}

/// Whether `tag` can be written in a log line: non-empty, no comma, whitespace or control
/// characters (the Java reader splits lines on commas and whitespace).
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && !tag
            .chars()
            .any(|c| c == ',' || c.is_whitespace() || c.is_control())
}

fn checked_time(what: &'static str, value: f64) -> Result<f64, HlogError> {
    if value.is_finite() && value >= 0.0 {
        // Normalize -0.0 so it prints as 0.000.
        Ok(value + 0.0)
    } else {
        Err(HlogError::InvalidTime { what, value })
    }
}

/// Writes an interval log: the version, `#[StartTime: …]` and `#[BaseTime: …]` (both
/// `start_time_secs`, seconds since the epoch, so entry starts are relative to it), the legend,
/// and one line per entry. Times are written with millisecond precision, `Interval_Max` in
/// milliseconds (the histograms hold microseconds).
pub fn write_log(start_time_secs: f64, entries: &[IntervalEntry]) -> Result<String, HlogError> {
    let start = checked_time("start time", start_time_secs)?;
    let millis = (start * 1000.0).round();
    let when = if millis <= i64::MAX as f64 {
        chrono::DateTime::from_timestamp_millis(millis as i64)
    } else {
        None
    }
    .ok_or(HlogError::InvalidTime {
        what: "start time",
        value: start_time_secs,
    })?;
    let mut out = String::new();
    out.push_str(&format!(
        "#[Histogram log format version {LOG_FORMAT_VERSION}]\n"
    ));
    out.push_str(&format!(
        "#[StartTime: {start:.3} (seconds since epoch), {}]\n",
        when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    ));
    out.push_str(&format!("#[BaseTime: {start:.3} (seconds since epoch)]\n"));
    out.push_str(LEGEND);
    out.push('\n');
    for entry in entries {
        if let Some(tag) = &entry.tag {
            if !is_valid_tag(tag) {
                return Err(HlogError::InvalidTag(tag.clone()));
            }
            out.push_str("Tag=");
            out.push_str(tag);
            out.push(',');
        }
        let s = checked_time("interval start", entry.start_secs)?;
        let l = checked_time("interval length", entry.length_secs)?;
        let max = entry.histogram.max() as f64 / MAX_VALUE_UNIT_RATIO;
        let blob = encode_v2_compressed(&entry.histogram)?;
        out.push_str(&format!("{s:.3},{l:.3},{max:.3},{blob}\n"));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn standard_histogram_has_the_standard_config_and_auto_resizes() {
        let h = new_histogram();
        assert_eq!(histogram_config_of(&h), HistogramConfig::STANDARD);
        assert!(h.is_auto_resize());
    }

    #[test]
    fn counts_len_matches_what_hdrhistogram_allocates() {
        for (lowest, highest, sigfig) in [
            (1, 2, 1),
            (1, 3_600_000_000, 3),
            (1, 3_600_000_000_000, 2),
            (1000, 3_600_000_000_000, 5),
            (7, u64::MAX, 1),
            (1, u64::MAX, 5),
            (1 << 40, u64::MAX, 3),
            (3, 1000, 4),
        ] {
            let c = HistogramConfig {
                lowest,
                highest,
                sigfig,
            };
            let h =
                Histogram::<u64>::new_with_bounds(lowest, highest, sigfig).expect("valid config");
            assert_eq!(c.counts_len(), Some(h.distinct_values()), "{c}");
        }
    }

    #[test]
    fn index_of_and_value_at_index_match_hdrhistogram() {
        for (lowest, sigfig) in [(1, 3), (1, 1), (1, 5), (7, 2), (1000, 3), (1 << 20, 4)] {
            let config = HistogramConfig {
                lowest,
                highest: u64::MAX / 4,
                sigfig,
            };
            let mut h = Histogram::<u64>::new_with_bounds(lowest, u64::MAX / 4, sigfig).unwrap();
            let mut v = 1_u64;
            while v < u64::MAX / 8 {
                for w in [v, v + 1, v * 3 / 2, v * 2 - 1] {
                    h.record(w).unwrap();
                }
                v = v * 5 / 4 + 1;
            }
            for r in h.iter_recorded() {
                let value = r.value_iterated_to();
                let i = config.index_of(value);
                assert_eq!(
                    config.value_at_index(i),
                    h.lowest_equivalent(value),
                    "{config}"
                );
                assert_eq!(config.index_of(config.value_at_index(i)), i, "{config}");
            }
        }
    }

    #[test]
    fn counts_len_is_none_for_invalid_configs() {
        let bad = |lowest, highest, sigfig| HistogramConfig {
            lowest,
            highest,
            sigfig,
        };
        assert_eq!(bad(0, 10, 3).counts_len(), None);
        assert_eq!(bad(10, 19, 3).counts_len(), None);
        assert_eq!(bad(1, 10, 6).counts_len(), None);
        assert_eq!(bad(1 << 50, u64::MAX, 5).counts_len(), None);
    }
}
