//! Avro record values: random values of any Avro schema, shaped by the spec's field generators,
//! encoded as binary datums — optionally in the Confluent wire format (magic byte `0`, the
//! schema id as 4 big-endian bytes, then the datum) for Schema Registry users.
//!
//! Pure and seeded: a record's bytes depend only on the schema, the generators, the seed, the
//! base time and the record's [`RecordAt`] (its fleet-wide index and intended send time). No I/O:
//! the schema arrives as text (the CLI inlines `schemaFile` when applying). Nothing here panics
//! on a schema: anything it cannot generate is a [`PayloadError`] naming the spec path.
//!
//! # Random values
//! | type | values |
//! |---|---|
//! | `null`, `boolean` | `null`; `true` or `false` |
//! | `int`, `long` | uniform over the whole range |
//! | `float`, `double` | uniform in ±1 000 000 |
//! | `bytes`, `string` | 4 to 16 random bytes; 4 to 16 alphanumeric characters |
//! | `record`, `enum`, `fixed` | every field; a uniform symbol; `size` random bytes |
//! | `array`, `map` | 0 to 4 items; 0 to 4 entries with alphanumeric keys |
//! | union | a uniform branch |
//! | `decimal` | a uniform unscaled value within `precision` digits (and the fixed size) |
//! | `big-decimal` | up to 9 digits with 0 to 4 decimals |
//! | `uuid` | a random version-4 UUID |
//! | `date`, `time-*` | a day in the year before the base time; a uniform time of day |
//! | `timestamp-*`, `local-timestamp-*` | an instant in the year before the base time |
//! | `duration` | months 0..=24, days 0..=31, millis within a day |
//!
//! Recursive schemas end: past [`SOFT_DEPTH`] nested levels (or [`SOFT_PARTS`] parts in one
//! value) unions take their ending branch (`null` first) and arrays and maps are empty. A schema
//! that cannot end within [`MAX_DEPTH`] levels, or needs more than [`MAX_PARTS`] parts for one
//! value, is an error.
//!
//! # Field generators
//! Keyed by field name, dotted through nested records (`user.age`); a path goes through unions
//! to their record branches. A generator on a union field fills the first branch it can fill.
//! | generator | fills |
//! |---|---|
//! | `sequence {start}` | start plus the record's fleet-wide index: unique in the run, across agents, replacements and re-splits (int, long, float, double, string, date, time and timestamp types; leaving an int's range is an error for that record) |
//! | `uniformInt {min, max}` | a uniform integer in `[min, max]` (the same types) |
//! | `oneOf [..]`, `constant ..` | the given JSON values, converted to the field's type (any type) |
//! | `uuid {}` | a version-4 UUID, fresh per record (unique per index, see [`record_uuid`]) (string, uuid) |
//! | `timestampMillis {}` | the record's intended send time, in ms (long, string, timestamp types, scaled to micros or nanos) |
//! | `stringLength {min, max}` | alphanumeric text of a uniform length (string, bytes) |
//!
//! A generator fills its field at most once per value (paths go through records and unions,
//! never into arrays or maps), so one `sequence` value per record is enough.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use apache_avro::schema::{
    DecimalSchema, Name, Namespace, RecordSchema, ResolvedSchema, Schema, UnionSchema,
};
use apache_avro::types::Value;
use apache_avro::{BigDecimal, Days, Decimal, Duration, Millis, Months};
use barrage_crds::spec::{AvroValue, FieldGenerator};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore};

use super::{RecordAt, record_rng, record_uuid};

/// Where the Avro value spec sits in a LoadTest; error paths start here.
pub const SPEC_PATH: &str = "spec.workload.records.value.avro";
/// The base time of timestamps when none is given: 2025-01-01T00:00:00Z in ms.
pub const DEFAULT_BASE_MILLIS: i64 = 1_735_689_600_000;
/// Nesting depth past which values take their shortest form (unions `null`, empty arrays).
pub const SOFT_DEPTH: usize = 10;
/// Nesting depth past which a value is an error (a recursive schema that cannot end).
pub const MAX_DEPTH: usize = 128;
/// Parts in one value past which values take their shortest form.
pub const SOFT_PARTS: usize = 10_000;
/// Parts in one value past which the schema is an error.
pub const MAX_PARTS: usize = 100_000;
/// Largest `fixed` size and `stringLength` this generator makes (10 MiB, the record limit).
pub const MAX_SIZE: usize = 10 * 1024 * 1024;
/// The Confluent wire format's magic byte.
pub const CONFLUENT_MAGIC: u8 = 0;

const MAX_ITEMS: usize = 4;
const STRING_LEN: (usize, usize) = (4, 16);
const DAY_MS: i64 = 86_400_000;
const YEAR_MS: i64 = 365 * DAY_MS;
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why values could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The spec asks for something that cannot be generated: the path names the spec field.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Bytes that are not a value of the schema.
    #[error("{path}: {message}")]
    Decode { path: String, message: String },
    /// A spec value (`oneOf`, `constant`) or a schema's decimal that breaks a rule of its
    /// field; the path names the spec field, the error the place inside the value.
    #[error("{path}: {error}")]
    Value { path: String, error: ValueError },
    /// A generated value that the writer refused (the value and the schema disagree).
    #[error("{path}: a generated value did not encode: {error}")]
    Encode { path: String, error: ValueError },
}

/// The rule a value broke, converting spec JSON to a value of its field or writing a value.
///
/// Displayed in full (the place, then the rule), so the nested error is not also a `source`.
/// Errors of other libraries are kept as their message: the error stays `Clone` and `Eq`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Inside a record field, an array item or a map entry.
    #[error("{at}: {error}")]
    In { at: Step, error: Box<ValueError> },
    /// Nested deeper than `limit` levels.
    #[error("nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// A named type that does not resolve.
    #[error(transparent)]
    Schema(Box<PayloadError>),
    /// JSON of the wrong kind for the field.
    #[error("expected {expected}, got {got}")]
    Expected {
        expected: Expected,
        got: serde_json::Value,
    },
    /// A string that is not a UUID.
    #[error("expected a UUID, got {got}: {error}")]
    NotUuid {
        got: serde_json::Value,
        error: uuid::Error,
    },
    /// A number or string that is not a big-decimal.
    #[error("expected a decimal number, got {got}: {reason}")]
    NotBigDecimal {
        got: serde_json::Value,
        reason: String,
    },
    /// A reference left after resolving.
    #[error("unresolved reference")]
    Unresolved,
    /// No branch of the union takes the JSON; one reason per branch.
    #[error("fits no branch of the union ({})", joined(.reasons))]
    NoBranch { reasons: Vec<ValueError> },
    /// A JSON object with a key that is not a field of the record.
    #[error("record {record} has no field {field:?}")]
    UnknownField { record: String, field: String },
    /// A field neither given nor defaulted.
    #[error("missing field {field:?} of record {record}")]
    MissingField { record: String, field: String },
    /// A string that is not a symbol of the enum.
    #[error("{got} is not a symbol of enum {name} (symbols: {})", .symbols.join(", "))]
    NotASymbol {
        got: serde_json::Value,
        name: String,
        symbols: Vec<String>,
    },
    /// A string of the wrong length for a fixed.
    #[error("expected a string of exactly {size} bytes for fixed {name}, got {got} bytes")]
    FixedSize {
        name: String,
        size: usize,
        got: usize,
    },
    /// A position (enum symbol, union branch) past Avro's 32-bit indexes.
    #[error("position {index} does not fit a 32-bit index")]
    Index { index: usize },
    /// A type spec values cannot be given for.
    #[error("no JSON form for {kind}")]
    NoJsonForm { kind: String },
    /// Decimal text that is not plain digits.
    #[error("expected plain decimal digits like -12.50, got {raw:?}")]
    DecimalText { raw: String },
    /// Decimal text with more decimal places than the field's scale.
    #[error("{raw} has more than the {scale} decimal places of the field")]
    DecimalPlaces { raw: String, scale: usize },
    /// Decimal text with more digits than the field's precision.
    #[error("{raw} has more than the {precision} digits of the field")]
    DecimalDigits { raw: String, precision: usize },
    /// An unscaled value past what the decimal (its precision, its fixed size) holds.
    #[error(
        "{} does not fit the decimal (precision {precision}, scale {scale})",
        format_decimal(*.unscaled, *.scale)
    )]
    DecimalRange {
        unscaled: i128,
        precision: usize,
        scale: usize,
    },
    /// A decimal on a fixed of size 0.
    #[error("decimal on fixed {fixed} of size 0 cannot hold a value")]
    DecimalOnEmptyFixed { fixed: String },
    /// A decimal on something other than bytes or fixed.
    #[error("decimal must annotate bytes or fixed, not {kind}")]
    DecimalOn { kind: String },
    /// A decimal value whose bytes are not its fixed's size (or whose inner type is wrong).
    #[error("a {len}-byte decimal for a decimal on {kind}")]
    DecimalWidth { len: usize, kind: String },
    /// apache-avro could not turn a decimal or big-decimal value into bytes.
    #[error("{kind}: {reason}")]
    DecimalBytes { kind: &'static str, reason: String },
    /// A union value naming a branch the union does not have.
    #[error("no union branch {index}")]
    NoUnionBranch { index: u32 },
    /// A record value without a field of its schema.
    #[error("no value for field {field:?}")]
    NoFieldValue { field: String },
    /// A value of another type than its schema.
    #[error("a {value:?} value for a {schema} schema")]
    Mismatch {
        value: apache_avro::schema::SchemaKind,
        schema: String,
    },
}

/// Where inside a value a [`ValueError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A record field, by name.
    Field(String),
    /// An array item, by position.
    Item(usize),
    /// A map entry, by key.
    Entry(String),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Field(name) => write!(f, "{name}"),
            Step::Item(i) => write!(f, "[{i}]"),
            Step::Entry(key) => write!(f, "[{key:?}]"),
        }
    }
}

/// What JSON a field takes, for [`ValueError::Expected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Null,
    Boolean,
    Number,
    /// An integer within the field's range.
    Integer {
        lo: i64,
        hi: i64,
    },
    String,
    Array,
    Object,
    Decimal,
    Duration,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Null => f.write_str("null"),
            Expected::Boolean => f.write_str("true or false"),
            Expected::Number => f.write_str("a number"),
            Expected::Integer { lo, hi } => write!(f, "an integer in {lo}..={hi}"),
            Expected::String => f.write_str("a string"),
            Expected::Array => f.write_str("an array"),
            Expected::Object => f.write_str("an object"),
            Expected::Decimal => f.write_str("a decimal number"),
            Expected::Duration => f.write_str("{months, days, millis} as unsigned 32-bit integers"),
        }
    }
}

impl ValueError {
    /// This error, found at `at` inside the value.
    fn at(self, at: Step) -> Self {
        ValueError::In {
            at,
            error: Box::new(self),
        }
    }

    fn expected(expected: Expected, got: &serde_json::Value) -> Self {
        ValueError::Expected {
            expected,
            got: got.clone(),
        }
    }

    fn index(index: usize) -> Result<u32, Self> {
        u32::try_from(index).map_err(|_| ValueError::Index { index })
    }
}

impl From<PayloadError> for ValueError {
    fn from(e: PayloadError) -> Self {
        ValueError::Schema(Box::new(e))
    }
}

fn joined(reasons: &[ValueError]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl PayloadError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        PayloadError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    fn decode(message: impl Into<String>) -> Self {
        PayloadError::Decode {
            path: "avro value".to_string(),
            message: message.into(),
        }
    }

    /// The spec path (or object) the error is about.
    pub fn path(&self) -> &str {
        match self {
            PayloadError::Invalid { path, .. }
            | PayloadError::Decode { path, .. }
            | PayloadError::Value { path, .. }
            | PayloadError::Encode { path, .. } => path,
        }
    }
}

/// `a.b`, or `a["x.y"]` for keys that are not identifiers (the validator's spelling).
pub(crate) fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

/// Generates `count` Avro values of `schema` (JSON text), encoded as binary datums, seeded.
///
/// With `confluent_schema_id`, each value is framed as Confluent's wire format.
pub fn generate_pool(
    schema: &str,
    generators: &BTreeMap<String, FieldGenerator>,
    seed: u64,
    count: usize,
    confluent_schema_id: Option<u32>,
) -> Result<Vec<Vec<u8>>, PayloadError> {
    AvroGenerator::new(schema, generators, confluent_schema_id)?.generate(seed, count)
}

/// Decodes one value written with `schema`; `confluent` strips and checks the 5-byte frame.
pub fn decode(schema: &str, bytes: &[u8], confluent: bool) -> Result<Value, PayloadError> {
    AvroDecoder::new(schema)?.decode(bytes, confluent)
}

/// The schema id of a Confluent-framed value, if the bytes carry the frame.
pub fn confluent_schema_id(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [CONFLUENT_MAGIC, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

fn parse_schema(schema: &str) -> Result<(Schema, HashMap<Name, Schema>), PayloadError> {
    let path = format!("{SPEC_PATH}.schema");
    let parsed = Schema::parse_str(schema)
        .map_err(|e| PayloadError::invalid(&path, format!("is not a usable Avro schema: {e}")))?;
    let names = ResolvedSchema::try_from(&parsed)
        .map_err(|e| PayloadError::invalid(&path, format!("has unresolved names: {e}")))?
        .get_names()
        .iter()
        .map(|(n, s)| (n.clone(), (*s).clone()))
        .collect();
    Ok((parsed, names))
}

/// Reads values back (tests, and the system test that consumes what was produced).
#[derive(Debug, Clone)]
pub struct AvroDecoder {
    schema: Schema,
}

impl AvroDecoder {
    /// Parses the schema once.
    pub fn new(schema: &str) -> Result<Self, PayloadError> {
        let (schema, _) = parse_schema(schema)?;
        Ok(AvroDecoder { schema })
    }

    /// Decodes one whole value; leftover bytes are an error.
    pub fn decode(&self, bytes: &[u8], confluent: bool) -> Result<Value, PayloadError> {
        let mut body = bytes;
        if confluent {
            if confluent_schema_id(bytes).is_none() {
                return Err(PayloadError::decode(format!(
                    "not in the Confluent wire format (needs magic byte 0 and a 4-byte schema id; got {} bytes starting {:?})",
                    bytes.len(),
                    bytes.iter().take(5).collect::<Vec<_>>()
                )));
            }
            body = bytes.get(5..).unwrap_or_default();
        }
        let mut reader = body;
        let value = apache_avro::from_avro_datum(&self.schema, &mut reader, None)
            .map_err(|e| PayloadError::decode(format!("does not decode with the schema: {e}")))?;
        if !reader.is_empty() {
            return Err(PayloadError::decode(format!(
                "{} bytes left over after the value",
                reader.len()
            )));
        }
        Ok(value)
    }
}

/// What a generator fills, after unions and references are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Int,
    Long,
    Float,
    Double,
    String,
    Bytes,
    Uuid,
    Date,
    TimeMillis,
    TimeMicros,
    TsMillis,
    TsMicros,
    TsNanos,
    LocalTsMillis,
    LocalTsMicros,
    LocalTsNanos,
}

impl Target {
    fn of(schema: &Schema) -> Option<Target> {
        Some(match schema {
            Schema::Int => Target::Int,
            Schema::Long => Target::Long,
            Schema::Float => Target::Float,
            Schema::Double => Target::Double,
            Schema::String => Target::String,
            Schema::Bytes => Target::Bytes,
            Schema::Uuid => Target::Uuid,
            Schema::Date => Target::Date,
            Schema::TimeMillis => Target::TimeMillis,
            Schema::TimeMicros => Target::TimeMicros,
            Schema::TimestampMillis => Target::TsMillis,
            Schema::TimestampMicros => Target::TsMicros,
            Schema::TimestampNanos => Target::TsNanos,
            Schema::LocalTimestampMillis => Target::LocalTsMillis,
            Schema::LocalTimestampMicros => Target::LocalTsMicros,
            Schema::LocalTimestampNanos => Target::LocalTsNanos,
            _ => return None,
        })
    }

    /// The integer `n` as a value of this type, if it fits.
    fn integer(self, n: i64) -> Option<Value> {
        Some(match self {
            Target::Int => Value::Int(i32::try_from(n).ok()?),
            Target::Long => Value::Long(n),
            Target::Float => Value::Float(n as f32),
            Target::Double => Value::Double(n as f64),
            Target::String => Value::String(n.to_string()),
            Target::Date => Value::Date(i32::try_from(n).ok()?),
            Target::TimeMillis => Value::TimeMillis(i32::try_from(n).ok()?),
            Target::TimeMicros => Value::TimeMicros(n),
            Target::TsMillis => Value::TimestampMillis(n),
            Target::TsMicros => Value::TimestampMicros(n),
            Target::TsNanos => Value::TimestampNanos(n),
            Target::LocalTsMillis => Value::LocalTimestampMillis(n),
            Target::LocalTsMicros => Value::LocalTimestampMicros(n),
            Target::LocalTsNanos => Value::LocalTimestampNanos(n),
            Target::Bytes | Target::Uuid => return None,
        })
    }

    /// Whether integers of this type are 32-bit.
    fn is_32_bit(self) -> bool {
        matches!(self, Target::Int | Target::Date | Target::TimeMillis)
    }

    /// Milliseconds since the epoch as a value of this type (scaled for micros and nanos).
    fn millis(self, ms: i64) -> Option<Value> {
        match self {
            Target::Long | Target::String | Target::TsMillis | Target::LocalTsMillis => {
                self.integer(ms)
            }
            Target::TsMicros | Target::LocalTsMicros => self.integer(ms.checked_mul(1_000)?),
            Target::TsNanos | Target::LocalTsNanos => self.integer(ms.checked_mul(1_000_000)?),
            _ => None,
        }
    }
}

/// A field generator compiled against its field.
#[derive(Debug, Clone)]
enum RuleKind {
    Sequence {
        start: i64,
    },
    UniformInt {
        min: i64,
        max: i64,
    },
    /// `oneOf` and `constant`: whole values of the field, unions already wrapped.
    Choice(Vec<Value>),
    Uuid,
    TimestampMillis,
    StringLength {
        min: usize,
        max: usize,
    },
}

impl RuleKind {
    fn name(&self) -> &'static str {
        match self {
            RuleKind::Sequence { .. } => "sequence",
            RuleKind::UniformInt { .. } => "uniformInt",
            RuleKind::Choice(_) => "oneOf",
            RuleKind::Uuid => "uuid",
            RuleKind::TimestampMillis => "timestampMillis",
            RuleKind::StringLength { .. } => "stringLength",
        }
    }

    fn fills(&self, t: Target) -> bool {
        match self {
            RuleKind::Sequence { .. } | RuleKind::UniformInt { .. } => t.integer(0).is_some(),
            RuleKind::Choice(_) => false,
            RuleKind::Uuid => matches!(t, Target::Uuid | Target::String),
            RuleKind::TimestampMillis => t.millis(0).is_some(),
            RuleKind::StringLength { .. } => matches!(t, Target::String | Target::Bytes),
        }
    }

    fn fills_text(&self) -> &'static str {
        match self {
            RuleKind::Sequence { .. } | RuleKind::UniformInt { .. } => {
                "int, long, float, double, string, date, time and timestamp fields"
            }
            RuleKind::Choice(_) => "any field",
            RuleKind::Uuid => "string and uuid fields",
            RuleKind::TimestampMillis => "long, string and timestamp fields",
            RuleKind::StringLength { .. } => "string and bytes fields",
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    /// The spec path of the generator, for errors while generating.
    path: String,
    kind: RuleKind,
    target: Option<Target>,
    union_index: Option<u32>,
}

/// Generators by field name, nested like the records.
#[derive(Debug, Clone, Default)]
struct GenTree {
    rule: Option<usize>,
    children: HashMap<String, GenTree>,
}

/// The state of making one record's value.
struct Run {
    rng: SmallRng,
    seed: u64,
    at: RecordAt,
    /// Parts made so far for the current value.
    parts: usize,
    /// Bytes of large parts (fixed, generated strings) in the current value.
    bytes: usize,
}

/// Random values of one schema with its field generators, ready to fill pools.
#[derive(Debug, Clone)]
pub struct AvroGenerator {
    schema: Schema,
    names: HashMap<Name, Schema>,
    tree: GenTree,
    rules: Vec<Rule>,
    confluent_schema_id: Option<u32>,
    base_millis: i64,
}

impl AvroGenerator {
    /// Parses `schema` and compiles `generators` against it; errors name the spec path.
    pub fn new(
        schema: &str,
        generators: &BTreeMap<String, FieldGenerator>,
        confluent_schema_id: Option<u32>,
    ) -> Result<Self, PayloadError> {
        let (schema, names) = parse_schema(schema)?;
        let mut g = AvroGenerator {
            schema,
            names,
            tree: GenTree::default(),
            rules: Vec::new(),
            confluent_schema_id,
            base_millis: DEFAULT_BASE_MILLIS,
        };
        for (name, generator) in generators {
            g.add_rule(name, generator)?;
        }
        Ok(g)
    }

    /// From the LoadTest's `value.avro`: the schema must be inline by now.
    pub fn from_spec(spec: &AvroValue) -> Result<Self, PayloadError> {
        let Some(schema) = spec.schema.as_deref() else {
            return Err(match &spec.schema_file {
                Some(_) => PayloadError::invalid(
                    format!("{SPEC_PATH}.schemaFile"),
                    "the agent reads inline schemas only; the CLI inlines schemaFile when applying",
                ),
                None => PayloadError::invalid(SPEC_PATH, "schema must be set"),
            });
        };
        AvroGenerator::new(schema, &spec.generators, spec.confluent_schema_id)
    }

    /// Sets the base time of random dates and timestamps, and the intended time of record 0 in
    /// [`AvroGenerator::generate`] and [`AvroGenerator::values`] (ms since the epoch).
    pub fn with_base_time_millis(mut self, base_millis: i64) -> Self {
        self.base_millis = base_millis;
        self
    }

    /// The parsed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Records `0..count`, intended one millisecond apart from the base time, encoded,
    /// reproducible from `seed`.
    pub fn generate(&self, seed: u64, count: usize) -> Result<Vec<Vec<u8>>, PayloadError> {
        (0..count as u64)
            .map(|index| {
                let mut out = Vec::with_capacity(64);
                self.encode_record(seed, RecordAt::nth(index, self.base_millis), &mut out)?;
                Ok(out)
            })
            .collect()
    }

    /// The values `generate` encodes, before encoding.
    pub fn values(&self, seed: u64, count: usize) -> Result<Vec<Value>, PayloadError> {
        (0..count as u64)
            .map(|index| self.record_value(seed, RecordAt::nth(index, self.base_millis)))
            .collect()
    }

    /// Appends the encoded value of the record at `at` to `out`.
    pub fn encode_record(
        &self,
        seed: u64,
        at: RecordAt,
        out: &mut Vec<u8>,
    ) -> Result<(), PayloadError> {
        let value = self.record_value(seed, at)?;
        self.encode_into(&value, out)
    }

    /// The value of the record at `at`.
    pub fn record_value(&self, seed: u64, at: RecordAt) -> Result<Value, PayloadError> {
        let mut run = Run {
            rng: record_rng(seed, at.index),
            seed,
            at,
            parts: 0,
            bytes: 0,
        };
        self.random(&self.schema, &None, Some(&self.tree), 0, &mut run)
    }

    /// Encodes one value as an Avro binary datum, framed when a Confluent schema id is set.
    ///
    /// Written here rather than with `apache_avro::to_avro_datum`, which writes map entries in
    /// `HashMap` order and so gives different bytes for the same value from run to run. Here map
    /// keys are written sorted. Tests check the bytes with apache-avro's reader and, for values
    /// without maps, against its writer.
    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, PayloadError> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(value, &mut out)?;
        Ok(out)
    }

    /// [`AvroGenerator::encode`], appending to `out`.
    pub fn encode_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), PayloadError> {
        if let Some(id) = self.confluent_schema_id {
            out.push(CONFLUENT_MAGIC);
            out.extend_from_slice(&id.to_be_bytes());
        }
        self.write(&self.schema, &None, value, 0, out)
            .map_err(|error| PayloadError::Encode {
                path: format!("{SPEC_PATH}.schema"),
                error,
            })
    }

    fn write(
        &self,
        schema: &Schema,
        ns: &Namespace,
        value: &Value,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ValueError> {
        if depth > 2 * MAX_DEPTH {
            return Err(ValueError::TooDeep {
                limit: 2 * MAX_DEPTH,
            });
        }
        match (schema, value) {
            (Schema::Ref { .. }, _) => {
                let (s, sns) = self.resolve(schema, ns, 0)?;
                return self.write(s, &sns, value, depth + 1, out);
            }
            (Schema::Null, Value::Null) => {}
            (Schema::Boolean, Value::Boolean(b)) => out.push(u8::from(*b)),
            (Schema::Int, Value::Int(n))
            | (Schema::Date, Value::Date(n))
            | (Schema::TimeMillis, Value::TimeMillis(n)) => zigzag(i64::from(*n), out),
            (Schema::Long, Value::Long(n))
            | (Schema::TimeMicros, Value::TimeMicros(n))
            | (Schema::TimestampMillis, Value::TimestampMillis(n))
            | (Schema::TimestampMicros, Value::TimestampMicros(n))
            | (Schema::TimestampNanos, Value::TimestampNanos(n))
            | (Schema::LocalTimestampMillis, Value::LocalTimestampMillis(n))
            | (Schema::LocalTimestampMicros, Value::LocalTimestampMicros(n))
            | (Schema::LocalTimestampNanos, Value::LocalTimestampNanos(n)) => zigzag(*n, out),
            (Schema::Float, Value::Float(x)) => out.extend_from_slice(&x.to_le_bytes()),
            (Schema::Double, Value::Double(x)) => out.extend_from_slice(&x.to_le_bytes()),
            (Schema::Bytes, Value::Bytes(b)) => length_prefixed(b, out),
            (Schema::String, Value::String(s)) => length_prefixed(s.as_bytes(), out),
            (Schema::Uuid, Value::Uuid(u)) => {
                let mut buf = [0u8; 36];
                length_prefixed(u.hyphenated().encode_lower(&mut buf).as_bytes(), out);
            }
            (Schema::Fixed(f), Value::Fixed(_, b)) if b.len() == f.size => out.extend_from_slice(b),
            (Schema::Enum(e), Value::Enum(i, _)) if (*i as usize) < e.symbols.len() => {
                zigzag(i64::from(*i), out)
            }
            (Schema::Decimal(d), Value::Decimal(x)) => write_decimal(d, x, out)?,
            (Schema::BigDecimal, Value::BigDecimal(_)) => {
                let b = apache_avro::to_avro_datum(&Schema::BigDecimal, value.clone()).map_err(
                    |e| ValueError::DecimalBytes {
                        kind: "big-decimal",
                        reason: e.to_string(),
                    },
                )?;
                out.extend_from_slice(&b);
            }
            (Schema::Duration, Value::Duration(d)) => {
                out.extend_from_slice(&<[u8; 12]>::from(*d));
            }
            _ => return self.write_nested(schema, ns, value, depth, out),
        }
        Ok(())
    }

    /// [`AvroGenerator::write`] for the schemas that hold others: arrays, maps, unions, records.
    fn write_nested(
        &self,
        schema: &Schema,
        ns: &Namespace,
        value: &Value,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ValueError> {
        match (schema, value) {
            (Schema::Array(a), Value::Array(items)) => {
                if !items.is_empty() {
                    zigzag(items.len() as i64, out);
                    for (i, item) in items.iter().enumerate() {
                        self.write(&a.items, ns, item, depth + 1, out)
                            .map_err(|e| e.at(Step::Item(i)))?;
                    }
                }
                out.push(0);
            }
            (Schema::Map(m), Value::Map(entries)) => {
                if !entries.is_empty() {
                    let mut sorted: Vec<(&String, &Value)> = entries.iter().collect();
                    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    zigzag(sorted.len() as i64, out);
                    for (k, v) in sorted {
                        length_prefixed(k.as_bytes(), out);
                        self.write(&m.types, ns, v, depth + 1, out)
                            .map_err(|e| e.at(Step::Entry(k.clone())))?;
                    }
                }
                out.push(0);
            }
            (Schema::Union(u), Value::Union(i, v)) => {
                let branch = u
                    .variants()
                    .get(*i as usize)
                    .ok_or(ValueError::NoUnionBranch { index: *i })?;
                zigzag(i64::from(*i), out);
                self.write(branch, ns, v, depth + 1, out)?;
            }
            (Schema::Record(r), Value::Record(fields)) => {
                self.write_record(r, ns, fields, depth, out)?
            }
            _ => {
                return Err(ValueError::Mismatch {
                    value: apache_avro::schema::SchemaKind::from(value),
                    schema: type_name(schema),
                });
            }
        }
        Ok(())
    }

    /// The fields of a record value in the schema's order (found by name when out of place).
    fn write_record(
        &self,
        r: &RecordSchema,
        ns: &Namespace,
        fields: &[(String, Value)],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ValueError> {
        let rns = r.name.fully_qualified_name(ns).namespace;
        for (pos, f) in r.fields.iter().enumerate() {
            let v = match fields.get(pos) {
                Some((n, v)) if *n == f.name => v,
                _ => fields
                    .iter()
                    .find(|(n, _)| *n == f.name)
                    .map(|(_, v)| v)
                    .ok_or_else(|| ValueError::NoFieldValue {
                        field: f.name.clone(),
                    })?,
            };
            self.write(&f.schema, &rns, v, depth + 1, out)
                .map_err(|e| e.at(Step::Field(f.name.clone())))?;
        }
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Compiling generators
    // ----------------------------------------------------------------------------------------

    fn add_rule(&mut self, name: &str, generator: &FieldGenerator) -> Result<(), PayloadError> {
        let gp = join_key(&format!("{SPEC_PATH}.generators"), name);
        let segments: Vec<&str> = name.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(PayloadError::invalid(
                &gp,
                "must be a field name, dotted for nested records (like user.age)",
            ));
        }
        let (field, ns) = self.field_at(&segments, &gp)?;
        let field = field.clone();
        let rule = self.compile(generator, &field, &ns, &gp)?;
        let id = self.rules.len();
        self.rules.push(rule);
        let mut node = &mut self.tree;
        for s in &segments {
            node = node.children.entry((*s).to_string()).or_default();
        }
        node.rule = Some(id);
        Ok(())
    }

    /// The schema of the field at `segments` and its enclosing namespace.
    fn field_at(&self, segments: &[&str], gp: &str) -> Result<(&Schema, Namespace), PayloadError> {
        let mut current = &self.schema;
        let mut ns: Namespace = None;
        for (i, seg) in segments.iter().enumerate() {
            let Some((record, record_ns)) = self.record_with(current, &ns, seg) else {
                let at = segments[..i].join(".");
                let what = if at.is_empty() {
                    "the schema".to_string()
                } else {
                    format!("field {at:?}")
                };
                let message = match self.record_with(current, &ns, "") {
                    Some((r, _)) => {
                        let fields: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
                        format!(
                            "{what} has no field {seg:?} (fields: {})",
                            fields.join(", ")
                        )
                    }
                    None => {
                        let kind = self
                            .resolve(current, &ns, 0)
                            .map_or_else(|_| "unknown".to_string(), |(s, _)| type_name(s));
                        format!("{what} is {kind}, not a record, so it has no field {seg:?}")
                    }
                };
                return Err(PayloadError::invalid(gp, message));
            };
            let Some(field) = record.lookup.get(*seg).and_then(|&i| record.fields.get(i)) else {
                return Err(PayloadError::invalid(gp, format!("no field {seg:?}")));
            };
            current = &field.schema;
            ns = record_ns;
        }
        Ok((current, ns))
    }

    /// The record `schema` is (or, for a union, its first record branch with `field`; any record
    /// when `field` is empty).
    fn record_with<'a>(
        &'a self,
        schema: &'a Schema,
        ns: &Namespace,
        field: &str,
    ) -> Option<(&'a RecordSchema, Namespace)> {
        let (schema, ns) = self.resolve(schema, ns, 0).ok()?;
        match schema {
            Schema::Record(r) => {
                let rns = r.name.fully_qualified_name(&ns).namespace;
                (field.is_empty() || r.lookup.contains_key(field)).then_some((r, rns))
            }
            Schema::Union(u) => {
                u.variants()
                    .iter()
                    .find_map(|v| match self.resolve(v, &ns, 0).ok()? {
                        (s @ Schema::Record(_), vns) => self.record_with(s, &vns, field),
                        _ => None,
                    })
            }
            _ => None,
        }
    }

    /// Follows references to the named schema (and the namespace to resolve its insides in).
    fn resolve<'a>(
        &'a self,
        schema: &'a Schema,
        ns: &Namespace,
        hops: usize,
    ) -> Result<(&'a Schema, Namespace), PayloadError> {
        match schema {
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(ns);
                if hops > MAX_DEPTH {
                    return Err(PayloadError::invalid(
                        format!("{SPEC_PATH}.schema"),
                        format!("the name {} refers to itself", full.fullname(None)),
                    ));
                }
                let target = self.names.get(&full).ok_or_else(|| {
                    PayloadError::invalid(
                        format!("{SPEC_PATH}.schema"),
                        format!("unknown type name {}", full.fullname(None)),
                    )
                })?;
                self.resolve(target, &full.namespace, hops + 1)
            }
            other => Ok((other, ns.clone())),
        }
    }

    fn compile(
        &self,
        generator: &FieldGenerator,
        field: &Schema,
        ns: &Namespace,
        gp: &str,
    ) -> Result<Rule, PayloadError> {
        let kind = match generator {
            FieldGenerator::Sequence(s) => RuleKind::Sequence { start: s.start },
            FieldGenerator::UniformInt(r) => {
                if r.min > r.max {
                    return Err(PayloadError::invalid(
                        format!("{gp}.uniformInt"),
                        format!("min must be at most max (got min {}, max {})", r.min, r.max),
                    ));
                }
                RuleKind::UniformInt {
                    min: r.min,
                    max: r.max,
                }
            }
            FieldGenerator::StringLength(r) => {
                let (min, max) = (r.min as usize, r.max as usize);
                if min > max {
                    return Err(PayloadError::invalid(
                        format!("{gp}.stringLength"),
                        format!("min must be at most max (got min {min}, max {max})"),
                    ));
                }
                if max > MAX_SIZE {
                    return Err(PayloadError::invalid(
                        format!("{gp}.stringLength.max"),
                        format!("must be at most {MAX_SIZE} (got {max})"),
                    ));
                }
                RuleKind::StringLength { min, max }
            }
            FieldGenerator::Uuid(_) => RuleKind::Uuid,
            FieldGenerator::TimestampMillis(_) => RuleKind::TimestampMillis,
            FieldGenerator::OneOf(list) => {
                let p = format!("{gp}.oneOf");
                if list.is_empty() {
                    return Err(PayloadError::invalid(p, "must list at least one value"));
                }
                let values = list
                    .iter()
                    .enumerate()
                    .map(|(i, j)| {
                        self.json_value(field, ns, j, 0)
                            .map_err(|error| PayloadError::Value {
                                path: format!("{p}[{i}]"),
                                error,
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                RuleKind::Choice(values)
            }
            FieldGenerator::Constant(j) => {
                let v = self
                    .json_value(field, ns, j, 0)
                    .map_err(|error| PayloadError::Value {
                        path: format!("{gp}.constant"),
                        error,
                    })?;
                RuleKind::Choice(vec![v])
            }
        };
        let mut rule = Rule {
            path: format!("{gp}.{}", kind.name()),
            kind,
            target: None,
            union_index: None,
        };
        if matches!(rule.kind, RuleKind::Choice(_)) {
            return Ok(rule);
        }
        let (resolved, rns) = self.resolve(field, ns, 0)?;
        let found = match resolved {
            Schema::Union(u) => u.variants().iter().enumerate().find_map(|(i, v)| {
                let (v, _) = self.resolve(v, &rns, 0).ok()?;
                let t = Target::of(v).filter(|t| rule.kind.fills(*t))?;
                Some((Some(u32::try_from(i).ok()?), t))
            }),
            other => Target::of(other)
                .filter(|t| rule.kind.fills(*t))
                .map(|t| (None, t)),
        };
        let Some((union_index, target)) = found else {
            return Err(PayloadError::invalid(
                gp,
                format!(
                    "{} cannot fill a field of type {}; it fills {}",
                    rule.kind.name(),
                    type_name(resolved),
                    rule.kind.fills_text()
                ),
            ));
        };
        if target.is_32_bit() {
            let range = i64::from(i32::MIN)..=i64::from(i32::MAX);
            let fits = match rule.kind {
                RuleKind::Sequence { start } => range.contains(&start),
                RuleKind::UniformInt { min, max } => range.contains(&min) && range.contains(&max),
                _ => true,
            };
            if !fits {
                return Err(PayloadError::invalid(
                    &rule.path,
                    format!(
                        "must stay within the 32-bit range of a {} field ({}..={})",
                        type_name(resolved),
                        i32::MIN,
                        i32::MAX
                    ),
                ));
            }
        }
        rule.target = Some(target);
        rule.union_index = union_index;
        Ok(rule)
    }

    /// Converts a JSON value from the spec to a value of `schema`.
    fn json_value(
        &self,
        schema: &Schema,
        ns: &Namespace,
        j: &serde_json::Value,
        depth: usize,
    ) -> Result<Value, ValueError> {
        if depth > MAX_DEPTH {
            return Err(ValueError::TooDeep { limit: MAX_DEPTH });
        }
        let (schema, ns) = self.resolve(schema, ns, 0)?;
        match schema {
            Schema::Array(a) => {
                let items = j
                    .as_array()
                    .ok_or_else(|| ValueError::expected(Expected::Array, j))?;
                Ok(Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| {
                            self.json_value(&a.items, &ns, x, depth + 1)
                                .map_err(|e| e.at(Step::Item(i)))
                        })
                        .collect::<Result<_, _>>()?,
                ))
            }
            Schema::Map(m) => {
                let entries = j
                    .as_object()
                    .ok_or_else(|| ValueError::expected(Expected::Object, j))?;
                Ok(Value::Map(
                    entries
                        .iter()
                        .map(|(k, x)| {
                            self.json_value(&m.types, &ns, x, depth + 1)
                                .map(|v| (k.clone(), v))
                                .map_err(|e| e.at(Step::Entry(k.clone())))
                        })
                        .collect::<Result<_, _>>()?,
                ))
            }
            Schema::Union(u) => self.json_union(u, &ns, j, depth),
            Schema::Record(r) => self.json_record(r, &ns, j, depth),
            Schema::Ref { .. } => Err(ValueError::Unresolved),
            other => json_plain(other, j),
        }
    }

    /// The first branch of the union `j` fits.
    fn json_union(
        &self,
        u: &UnionSchema,
        ns: &Namespace,
        j: &serde_json::Value,
        depth: usize,
    ) -> Result<Value, ValueError> {
        let mut reasons = Vec::new();
        for (i, v) in u.variants().iter().enumerate() {
            match self.json_value(v, ns, j, depth + 1) {
                Ok(value) => return Ok(Value::Union(ValueError::index(i)?, Box::new(value))),
                Err(e) => reasons.push(e),
            }
        }
        Err(ValueError::NoBranch { reasons })
    }

    /// A record from a JSON object: every field given or defaulted, no field it lacks.
    fn json_record(
        &self,
        r: &RecordSchema,
        ns: &Namespace,
        j: &serde_json::Value,
        depth: usize,
    ) -> Result<Value, ValueError> {
        let obj = j
            .as_object()
            .ok_or_else(|| ValueError::expected(Expected::Object, j))?;
        if let Some(extra) = obj.keys().find(|k| !r.lookup.contains_key(*k)) {
            return Err(ValueError::UnknownField {
                record: r.name.name.clone(),
                field: extra.clone(),
            });
        }
        let rns = r.name.fully_qualified_name(ns).namespace;
        let mut fields = Vec::with_capacity(r.fields.len());
        for f in &r.fields {
            let given = obj.get(&f.name).or(f.default.as_ref()).ok_or_else(|| {
                ValueError::MissingField {
                    record: r.name.name.clone(),
                    field: f.name.clone(),
                }
            })?;
            let v = self
                .json_value(&f.schema, &rns, given, depth + 1)
                .map_err(|e| e.at(Step::Field(f.name.clone())))?;
            fields.push((f.name.clone(), v));
        }
        Ok(Value::Record(fields))
    }

    // ----------------------------------------------------------------------------------------
    // Random values
    // ----------------------------------------------------------------------------------------

    fn random(
        &self,
        schema: &Schema,
        ns: &Namespace,
        tree: Option<&GenTree>,
        depth: usize,
        run: &mut Run,
    ) -> Result<Value, PayloadError> {
        if let Some(id) = tree.and_then(|t| t.rule) {
            return self.apply(id, run);
        }
        run.parts += 1;
        if depth > MAX_DEPTH {
            return Err(PayloadError::invalid(
                format!("{SPEC_PATH}.schema"),
                format!(
                    "values nest deeper than {MAX_DEPTH} levels; a recursive type needs a way to end (a union with null, an array or a map)"
                ),
            ));
        }
        if run.parts > MAX_PARTS {
            return Err(PayloadError::invalid(
                format!("{SPEC_PATH}.schema"),
                format!("one value needs more than {MAX_PARTS} parts"),
            ));
        }
        let short = depth >= SOFT_DEPTH || run.parts >= SOFT_PARTS;
        let rng = &mut run.rng;
        Ok(match schema {
            Schema::Array(a) => {
                let n = if short {
                    0
                } else {
                    rng.random_range(0..=MAX_ITEMS)
                };
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.random(&a.items, ns, None, depth + 1, run)?);
                }
                Value::Array(items)
            }
            Schema::Map(m) => {
                let n = if short {
                    0
                } else {
                    rng.random_range(0..=MAX_ITEMS)
                };
                let mut entries = HashMap::with_capacity(n);
                for _ in 0..n {
                    let k = alnum(&mut run.rng, 8);
                    let v = self.random(&m.types, ns, None, depth + 1, run)?;
                    entries.insert(k, v);
                }
                Value::Map(entries)
            }
            Schema::Union(u) => {
                let variants = u.variants();
                if variants.is_empty() {
                    return Err(PayloadError::invalid(
                        format!("{SPEC_PATH}.schema"),
                        "a union has no branches",
                    ));
                }
                let i = if short {
                    self.ending_branch(u, ns)
                } else {
                    rng.random_range(0..variants.len())
                };
                let branch = variants.get(i).unwrap_or(&Schema::Null);
                let v = self.random(branch, ns, tree, depth + 1, run)?;
                Value::Union(u32::try_from(i).unwrap_or(0), Box::new(v))
            }
            Schema::Record(r) => {
                let rns = r.name.fully_qualified_name(ns).namespace;
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let child = tree.and_then(|t| t.children.get(&f.name));
                    let v = self.random(&f.schema, &rns, child, depth + 1, run)?;
                    fields.push((f.name.clone(), v));
                }
                Value::Record(fields)
            }
            Schema::Ref { .. } => {
                let (target, tns) = self.resolve(schema, ns, 0)?;
                return self.random(target, &tns, tree, depth + 1, run);
            }
            other => return self.random_plain(other, run),
        })
    }

    /// A random value of a schema that holds no other schema.
    fn random_plain(&self, schema: &Schema, run: &mut Run) -> Result<Value, PayloadError> {
        let rng = &mut run.rng;
        Ok(match schema {
            Schema::Null => Value::Null,
            Schema::Boolean => Value::Boolean(rng.random()),
            Schema::Int => Value::Int(rng.random()),
            Schema::Long => Value::Long(rng.random()),
            Schema::Float => Value::Float(rng.random_range(-1.0e6f32..=1.0e6)),
            Schema::Double => Value::Double(rng.random_range(-1.0e6..=1.0e6)),
            Schema::Bytes => {
                let mut b = vec![0u8; rng.random_range(STRING_LEN.0..=STRING_LEN.1)];
                rng.fill_bytes(&mut b);
                Value::Bytes(b)
            }
            Schema::String => {
                let n = rng.random_range(STRING_LEN.0..=STRING_LEN.1);
                Value::String(alnum(rng, n))
            }
            Schema::Uuid => Value::Uuid(random_uuid(rng)),
            Schema::Date => {
                let ms = self.base_millis - rng.random_range(0..YEAR_MS);
                let days = ms.div_euclid(DAY_MS);
                Value::Date(i32::try_from(days).unwrap_or(0))
            }
            Schema::TimeMillis => Value::TimeMillis(rng.random_range(0..DAY_MS as i32)),
            Schema::TimeMicros => Value::TimeMicros(rng.random_range(0..DAY_MS * 1_000)),
            Schema::TimestampMillis => Value::TimestampMillis(self.random_instant(rng)),
            Schema::TimestampMicros => {
                Value::TimestampMicros(self.random_instant(rng).saturating_mul(1_000))
            }
            Schema::TimestampNanos => {
                Value::TimestampNanos(self.random_instant(rng).saturating_mul(1_000_000))
            }
            Schema::LocalTimestampMillis => Value::LocalTimestampMillis(self.random_instant(rng)),
            Schema::LocalTimestampMicros => {
                Value::LocalTimestampMicros(self.random_instant(rng).saturating_mul(1_000))
            }
            Schema::LocalTimestampNanos => {
                Value::LocalTimestampNanos(self.random_instant(rng).saturating_mul(1_000_000))
            }
            Schema::Duration => Value::Duration(Duration::new(
                Months::new(rng.random_range(0..=24)),
                Days::new(rng.random_range(0..=31)),
                Millis::new(rng.random_range(0..DAY_MS as u32)),
            )),
            Schema::Decimal(d) => {
                let unscaled = random_decimal(d, rng)?;
                Value::Decimal(Decimal::from(
                    decimal_bytes(unscaled, d).map_err(schema_value_error)?,
                ))
            }
            Schema::BigDecimal => {
                let unscaled: i64 = rng.random_range(-999_999_999..=999_999_999);
                let scale = rng.random_range(0..=4u32);
                let text = format_decimal(i128::from(unscaled), scale as usize);
                Value::BigDecimal(text.parse::<BigDecimal>().map_err(|e| {
                    PayloadError::invalid(
                        format!("{SPEC_PATH}.schema"),
                        format!("big-decimal {text}: {e}"),
                    )
                })?)
            }
            Schema::Enum(e) => {
                if e.symbols.is_empty() {
                    return Err(PayloadError::invalid(
                        format!("{SPEC_PATH}.schema"),
                        format!("enum {} has no symbols", e.name.name),
                    ));
                }
                let i = rng.random_range(0..e.symbols.len());
                Value::Enum(
                    u32::try_from(i).unwrap_or(0),
                    e.symbols.get(i).cloned().unwrap_or_default(),
                )
            }
            Schema::Fixed(f) => {
                run.bytes = run.bytes.saturating_add(f.size);
                if run.bytes > MAX_SIZE {
                    return Err(too_large());
                }
                let mut b = vec![0u8; f.size];
                rng.fill_bytes(&mut b);
                Value::Fixed(f.size, b)
            }
            other => {
                return Err(PayloadError::invalid(
                    format!("{SPEC_PATH}.schema"),
                    format!("no random values for {}", type_name(other)),
                ));
            }
        })
    }

    /// The branch that ends soonest: `null`, else a scalar, else an array or map (made empty).
    fn ending_branch(&self, u: &UnionSchema, ns: &Namespace) -> usize {
        let rank = |s: &Schema| -> u8 {
            match self.resolve(s, ns, 0).map(|(s, _)| s) {
                Ok(Schema::Null) => 0,
                Ok(Schema::Record(_) | Schema::Union(_)) | Err(_) => 3,
                Ok(Schema::Array(_) | Schema::Map(_)) => 2,
                Ok(_) => 1,
            }
        };
        u.variants()
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| rank(s))
            .map_or(0, |(i, _)| i)
    }

    fn random_instant(&self, rng: &mut SmallRng) -> i64 {
        self.base_millis
            .saturating_sub(rng.random_range(0..YEAR_MS))
    }

    fn apply(&self, id: usize, run: &mut Run) -> Result<Value, PayloadError> {
        let Some(rule) = self.rules.get(id) else {
            return Err(PayloadError::invalid(SPEC_PATH, "unknown generator"));
        };
        let out_of_range = || {
            PayloadError::invalid(
                &rule.path,
                format!("record {} leaves the range of the field", run.at.index),
            )
        };
        let target = rule.target.unwrap_or(Target::String);
        let value = match &rule.kind {
            RuleKind::Choice(values) => {
                let i = run.rng.random_range(0..values.len().max(1));
                return values.get(i).cloned().ok_or_else(out_of_range);
            }
            RuleKind::Sequence { start } => i64::try_from(run.at.index)
                .ok()
                .and_then(|index| start.checked_add(index))
                .and_then(|n| target.integer(n))
                .ok_or_else(out_of_range)?,
            RuleKind::UniformInt { min, max } => target
                .integer(run.rng.random_range(*min..=*max))
                .ok_or_else(out_of_range)?,
            RuleKind::Uuid => {
                let u = record_uuid(run.seed, id as u64, run.at.index);
                match target {
                    Target::Uuid => Value::Uuid(u),
                    _ => Value::String(u.to_string()),
                }
            }
            RuleKind::TimestampMillis => target
                .millis(run.at.intended_millis)
                .ok_or_else(out_of_range)?,
            RuleKind::StringLength { min, max } => {
                let n = run.rng.random_range(*min..=*max);
                run.bytes = run.bytes.saturating_add(n);
                if run.bytes > MAX_SIZE {
                    return Err(too_large());
                }
                let s = alnum(&mut run.rng, n);
                match target {
                    Target::Bytes => Value::Bytes(s.into_bytes()),
                    _ => Value::String(s),
                }
            }
        };
        Ok(match rule.union_index {
            Some(i) => Value::Union(i, Box::new(value)),
            None => value,
        })
    }
}

/// A value of a schema that holds no other schema, from JSON.
fn json_plain(schema: &Schema, j: &serde_json::Value) -> Result<Value, ValueError> {
    use serde_json::Value as J;
    let int = |lo: i64, hi: i64| -> Result<i64, ValueError> {
        j.as_i64()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| ValueError::expected(Expected::Integer { lo, hi }, j))
    };
    let number = || {
        j.as_f64()
            .ok_or_else(|| ValueError::expected(Expected::Number, j))
    };
    let i32_range = (i64::from(i32::MIN), i64::from(i32::MAX));
    Ok(match schema {
        Schema::Null => match j {
            J::Null => Value::Null,
            _ => return Err(ValueError::expected(Expected::Null, j)),
        },
        Schema::Boolean => Value::Boolean(
            j.as_bool()
                .ok_or_else(|| ValueError::expected(Expected::Boolean, j))?,
        ),
        Schema::Int => Value::Int(int(i32_range.0, i32_range.1)? as i32),
        Schema::Long => Value::Long(int(i64::MIN, i64::MAX)?),
        Schema::Float => Value::Float(number()? as f32),
        Schema::Double => Value::Double(number()?),
        Schema::Bytes => Value::Bytes(json_str(j)?.as_bytes().to_vec()),
        Schema::String => Value::String(json_str(j)?.to_string()),
        Schema::Uuid => Value::Uuid(json_str(j)?.parse().map_err(|error| ValueError::NotUuid {
            got: j.clone(),
            error,
        })?),
        Schema::Date => Value::Date(int(i32_range.0, i32_range.1)? as i32),
        Schema::TimeMillis => Value::TimeMillis(int(0, DAY_MS - 1)? as i32),
        Schema::TimeMicros => Value::TimeMicros(int(0, DAY_MS * 1_000 - 1)?),
        Schema::TimestampMillis => Value::TimestampMillis(int(i64::MIN, i64::MAX)?),
        Schema::TimestampMicros => Value::TimestampMicros(int(i64::MIN, i64::MAX)?),
        Schema::TimestampNanos => Value::TimestampNanos(int(i64::MIN, i64::MAX)?),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(int(i64::MIN, i64::MAX)?),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(int(i64::MIN, i64::MAX)?),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(int(i64::MIN, i64::MAX)?),
        other => return json_named(other, j),
    })
}

/// The JSON string, for string, bytes, uuid, enum and fixed fields.
fn json_str(j: &serde_json::Value) -> Result<&str, ValueError> {
    j.as_str()
        .ok_or_else(|| ValueError::expected(Expected::String, j))
}

/// The text of a JSON number or string, for decimal and big-decimal fields.
fn json_decimal_text(j: &serde_json::Value) -> Result<String, ValueError> {
    match j {
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::String(s) => Ok(s.clone()),
        _ => Err(ValueError::expected(Expected::Decimal, j)),
    }
}

/// A value of a named or logical schema (enum, fixed, decimal, duration), from JSON.
fn json_named(schema: &Schema, j: &serde_json::Value) -> Result<Value, ValueError> {
    Ok(match schema {
        Schema::Enum(e) => {
            let s = json_str(j)?;
            let i =
                e.symbols
                    .iter()
                    .position(|x| x == s)
                    .ok_or_else(|| ValueError::NotASymbol {
                        got: j.clone(),
                        name: e.name.name.clone(),
                        symbols: e.symbols.clone(),
                    })?;
            Value::Enum(ValueError::index(i)?, s.to_string())
        }
        Schema::Fixed(f) => {
            let s = json_str(j)?;
            if s.len() != f.size {
                return Err(ValueError::FixedSize {
                    name: f.name.name.clone(),
                    size: f.size,
                    got: s.len(),
                });
            }
            Value::Fixed(f.size, s.as_bytes().to_vec())
        }
        Schema::Decimal(d) => {
            let unscaled = parse_decimal(&json_decimal_text(j)?, d.scale, d.precision)?;
            Value::Decimal(Decimal::from(decimal_bytes(unscaled, d)?))
        }
        Schema::BigDecimal => {
            Value::BigDecimal(json_decimal_text(j)?.parse::<BigDecimal>().map_err(|e| {
                ValueError::NotBigDecimal {
                    got: j.clone(),
                    reason: e.to_string(),
                }
            })?)
        }
        Schema::Duration => json_duration(j)?,
        other => {
            return Err(ValueError::NoJsonForm {
                kind: type_name(other),
            });
        }
    })
}

/// A duration from `{months, days, millis}`, each an unsigned 32-bit integer.
fn json_duration(j: &serde_json::Value) -> Result<Value, ValueError> {
    let part = |k: &str| -> Result<u32, ValueError> {
        j.get(k)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ValueError::expected(Expected::Duration, j))
    };
    Ok(Value::Duration(Duration::new(
        Months::new(part("months")?),
        Days::new(part("days")?),
        Millis::new(part("millis")?),
    )))
}

fn too_large() -> PayloadError {
    PayloadError::invalid(
        format!("{SPEC_PATH}.schema"),
        format!("one value would be larger than {MAX_SIZE} bytes (the record limit)"),
    )
}

/// Avro's zig-zag variable-length integer.
fn zigzag(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7F {
        out.push(0x80 | (z & 0x7F) as u8);
        z >>= 7;
    }
    out.push(z as u8);
}

fn length_prefixed(b: &[u8], out: &mut Vec<u8>) {
    zigzag(b.len() as i64, out);
    out.extend_from_slice(b);
}

fn type_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => format!("record {}", r.name.name),
        Schema::Enum(e) => format!("enum {}", e.name.name),
        Schema::Fixed(f) => format!("fixed {}", f.name.name),
        Schema::Union(_) => "union".to_string(),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

/// Random alphanumeric text of `n` characters.
pub(crate) fn alnum(rng: &mut SmallRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(ALNUM[rng.random_range(0..ALNUM.len())]))
        .collect()
}

/// A random version-4 UUID from the seeded generator.
pub(crate) fn random_uuid(rng: &mut SmallRng) -> uuid::Uuid {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// The largest unscaled value the decimal holds: `precision` digits (at most 38) and, on a
/// fixed, what its size holds in two's complement.
fn decimal_bound(d: &DecimalSchema) -> Result<i128, ValueError> {
    let digits = u32::try_from(d.precision.min(38)).unwrap_or(38);
    let mut bound = 10i128.pow(digits) - 1;
    match d.inner.as_ref() {
        Schema::Bytes => {}
        Schema::Fixed(f) => {
            if f.size == 0 {
                return Err(ValueError::DecimalOnEmptyFixed {
                    fixed: f.name.name.clone(),
                });
            }
            if f.size < 16 {
                bound = bound.min((1i128 << (8 * f.size - 1)) - 1);
            }
        }
        other => {
            return Err(ValueError::DecimalOn {
                kind: type_name(other),
            });
        }
    }
    Ok(bound)
}

/// A decimal the schema itself cannot hold.
fn schema_value_error(error: ValueError) -> PayloadError {
    PayloadError::Value {
        path: format!("{SPEC_PATH}.schema"),
        error,
    }
}

fn random_decimal(d: &DecimalSchema, rng: &mut SmallRng) -> Result<i128, PayloadError> {
    let bound = decimal_bound(d).map_err(schema_value_error)?;
    Ok(rng.random_range(-bound..=bound))
}

/// The two's-complement big-endian bytes of an unscaled decimal: minimal for bytes, sign-extended
/// to the size for fixed.
fn decimal_bytes(unscaled: i128, d: &DecimalSchema) -> Result<Vec<u8>, ValueError> {
    let bound = decimal_bound(d)?;
    if unscaled.unsigned_abs() > bound.unsigned_abs() {
        return Err(ValueError::DecimalRange {
            unscaled,
            precision: d.precision,
            scale: d.scale,
        });
    }
    let full = unscaled.to_be_bytes();
    let negative = unscaled < 0;
    let sign = if negative { 0xFF } else { 0x00 };
    // Drop leading sign bytes while the next byte keeps the sign bit.
    let mut start = 0;
    while start + 1 < full.len()
        && full[start] == sign
        && ((full[start + 1] & 0x80) != 0) == negative
    {
        start += 1;
    }
    let minimal = &full[start..];
    Ok(match d.inner.as_ref() {
        Schema::Fixed(f) => {
            let mut out = vec![sign; f.size.saturating_sub(minimal.len())];
            out.extend_from_slice(minimal);
            out
        }
        _ => minimal.to_vec(),
    })
}

/// A decimal value's bytes: length-prefixed on bytes, as they are on a fixed of their size.
fn write_decimal(d: &DecimalSchema, x: &Decimal, out: &mut Vec<u8>) -> Result<(), ValueError> {
    let b = <Vec<u8>>::try_from(x).map_err(|e| ValueError::DecimalBytes {
        kind: "decimal",
        reason: e.to_string(),
    })?;
    match d.inner.as_ref() {
        Schema::Fixed(f) if b.len() == f.size => out.extend_from_slice(&b),
        Schema::Bytes => length_prefixed(&b, out),
        other => {
            return Err(ValueError::DecimalWidth {
                len: b.len(),
                kind: type_name(other),
            });
        }
    }
    Ok(())
}

/// `-12.345` from unscaled `-12345` and scale 3.
fn format_decimal(unscaled: i128, scale: usize) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let mut out = String::new();
    if unscaled < 0 {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        let _ = write!(out, "{int}.{frac}");
    } else {
        let _ = write!(out, "0.{digits:0>scale$}");
    }
    out
}

/// Parses plain decimal text (`-12.5`) into its unscaled value at `scale`, within `precision`.
fn parse_decimal(raw: &str, scale: usize, precision: usize) -> Result<i128, ValueError> {
    let bad = || ValueError::DecimalText {
        raw: raw.to_string(),
    };
    let (negative, body) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let frac = frac.trim_end_matches('0');
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.len() > scale {
        return Err(ValueError::DecimalPlaces {
            raw: raw.to_string(),
            scale,
        });
    }
    let digits = format!("{int}{frac:0<scale$}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > precision.min(38) {
        return Err(ValueError::DecimalDigits {
            raw: raw.to_string(),
            precision,
        });
    }
    let magnitude: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad())?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_round_trips_through_unscaled_values() {
        assert_eq!(parse_decimal("-12.5", 2, 10), Ok(-1250));
        assert_eq!(parse_decimal("0.07", 2, 3), Ok(7));
        assert_eq!(format_decimal(-1250, 2), "-12.50");
        assert_eq!(format_decimal(7, 3), "0.007");
        assert_eq!(
            parse_decimal("1.234", 2, 10),
            Err(ValueError::DecimalPlaces {
                raw: "1.234".into(),
                scale: 2
            })
        );
        assert_eq!(
            parse_decimal("12345", 0, 4),
            Err(ValueError::DecimalDigits {
                raw: "12345".into(),
                precision: 4
            })
        );
        let text = |raw: &str| Err(ValueError::DecimalText { raw: raw.into() });
        assert_eq!(parse_decimal("1e5", 0, 10), text("1e5"));
        assert_eq!(parse_decimal("-", 0, 10), text("-"));
    }

    #[test]
    fn a_decimal_too_wide_for_its_fixed_says_what_it_holds() {
        let fixed = |size| DecimalSchema {
            precision: 10,
            scale: 2,
            inner: Box::new(Schema::Fixed(apache_avro::schema::FixedSchema {
                name: Name::new("Money").unwrap_or_else(|e| panic!("{e}")),
                aliases: None,
                doc: None,
                size,
                default: None,
                attributes: BTreeMap::new(),
            })),
        };
        let e = decimal_bytes(40_000, &fixed(2));
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err("400.00 does not fit the decimal (precision 10, scale 2)".to_string())
        );
        assert_eq!(
            decimal_bytes(1, &fixed(0)),
            Err(ValueError::DecimalOnEmptyFixed {
                fixed: "Money".into()
            })
        );
    }

    #[test]
    fn decimal_bytes_are_minimal_twos_complement_or_sign_extended_to_the_fixed_size() {
        let bytes_schema = DecimalSchema {
            precision: 10,
            scale: 2,
            inner: Box::new(Schema::Bytes),
        };
        assert_eq!(decimal_bytes(-1, &bytes_schema), Ok(vec![0xFF]));
        assert_eq!(decimal_bytes(128, &bytes_schema), Ok(vec![0x00, 0x80]));
        assert_eq!(decimal_bytes(-129, &bytes_schema), Ok(vec![0xFF, 0x7F]));
        assert_eq!(decimal_bytes(0, &bytes_schema), Ok(vec![0x00]));
    }

    #[test]
    fn confluent_frames_carry_the_schema_id() {
        assert_eq!(confluent_schema_id(&[0, 0, 0, 1, 2, 9]), Some(258));
        assert_eq!(confluent_schema_id(&[1, 0, 0, 1, 2, 9]), None);
        assert_eq!(confluent_schema_id(&[0, 0, 0]), None);
    }

    const ORDER: &str = r#"{"type": "record", "name": "Order", "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "near", "type": "int"},
        {"name": "createdAt", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;

    /// The `near` field's sequence starts at `near`.
    fn order(near: i64) -> AvroGenerator {
        let gens: BTreeMap<String, FieldGenerator> = serde_json::from_value(serde_json::json!({
            "id": {"sequence": {"start": 1}},
            "customer": {"uuid": {}},
            "near": {"sequence": {"start": near}},
            "createdAt": {"timestampMillis": {}},
        }))
        .unwrap_or_default();
        match AvroGenerator::new(ORDER, &gens, None) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        }
    }

    fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
        match v {
            Value::Record(fields) => fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        }
    }

    #[test]
    fn sequence_uuid_and_timestamp_come_from_the_record_not_from_its_place_in_a_pool() {
        let g = order(0);
        let value = |index: u64, intended_millis: i64| {
            g.record_value(
                3,
                RecordAt {
                    index,
                    intended_millis,
                },
            )
        };
        let Ok(v) = value(10, 1_800_000_000_123) else {
            panic!("record 10 is made");
        };
        assert_eq!(field(&v, "id"), &Value::Long(11));
        assert_eq!(
            field(&v, "createdAt"),
            &Value::TimestampMillis(1_800_000_000_123)
        );
        // Record 4 096 is not record 0 again (a pool of 4 096 values repeated there).
        let (Ok(a), Ok(b)) = (value(0, 5), value(4_096, 5)) else {
            panic!("records are made");
        };
        assert_ne!(field(&a, "customer"), field(&b, "customer"));
        // A record is the same whoever makes it, and whatever was made before.
        assert_eq!(value(7, 5), value(7, 5));
        let customers: std::collections::HashSet<String> = (0..20_000)
            .filter_map(
                |j| match value(j, 5).map(|v| field(&v, "customer").clone()) {
                    Ok(Value::String(s)) => Some(s),
                    _ => None,
                },
            )
            .collect();
        assert_eq!(customers.len(), 20_000, "uuids are fresh per record");
    }

    const TAGGED: &str = r#"{"type": "record", "name": "Tagged", "fields": [
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "size", "type": ["null", "int"]}]}"#;

    fn tagged_error(generator: serde_json::Value) -> PayloadError {
        let gens: BTreeMap<String, FieldGenerator> =
            serde_json::from_value(generator).unwrap_or_default();
        match AvroGenerator::new(TAGGED, &gens, None) {
            Ok(_) => panic!("the generator is refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_constant_that_breaks_its_field_names_the_place_inside_the_value_and_the_rule() {
        let e = tagged_error(serde_json::json!({"tags": {"constant": ["a", 5]}}));
        assert_eq!(
            e.to_string(),
            "spec.workload.records.value.avro.generators.tags.constant: [1]: expected a string, got 5"
        );
        let PayloadError::Value { error, .. } = e else {
            panic!("a value error: {e:?}");
        };
        assert_eq!(
            error,
            ValueError::In {
                at: Step::Item(1),
                error: Box::new(ValueError::Expected {
                    expected: Expected::String,
                    got: serde_json::json!(5)
                })
            }
        );
        let e = tagged_error(serde_json::json!({"size": {"constant": "x"}}));
        assert_eq!(
            e.to_string(),
            "spec.workload.records.value.avro.generators.size.constant: fits no branch of the union \
             (expected null, got \"x\"; expected an integer in -2147483648..=2147483647, got \"x\")"
        );
    }

    #[test]
    fn a_value_that_disagrees_with_the_schema_does_not_encode_and_says_where() {
        let g = order(0);
        let Ok(Value::Record(mut fields)) = g.record_value(1, RecordAt::nth(0, 0)) else {
            panic!("record 0 is made");
        };
        fields[1].1 = Value::Int(7);
        let Err(e) = g.encode(&Value::Record(fields)) else {
            panic!("an int for a string field does not encode");
        };
        assert_eq!(
            e.to_string(),
            "spec.workload.records.value.avro.schema: a generated value did not encode: customer: a Int value for a string schema"
        );
    }

    #[test]
    fn a_sequence_past_an_int_fields_range_fails_that_record_only() {
        let g = order(i64::from(i32::MAX) - 10);
        assert!(g.record_value(1, RecordAt::nth(10, 0)).is_ok());
        let Err(e) = g.record_value(1, RecordAt::nth(11, 0)) else {
            panic!("record 11 passes i32::MAX");
        };
        assert!(e.to_string().contains("record 11 leaves the range"), "{e}");
    }
}
