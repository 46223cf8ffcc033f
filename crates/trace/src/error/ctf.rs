//! What can go wrong reading a CTF trace: its metadata (packetized, TSDL text, CTF 2 JSON, and
//! what both describe), its packets and events, and the LTTng index files beside its streams.
//!
//! The offset of the [`TraceError`](super::TraceError) holding a kind says where: in the
//! metadata text for metadata kinds (a TSDL error also gives its line and column, a CTF 2 error
//! the start of its record), in the stream file for packet and event kinds, in the index file
//! for [`IndexError`]s.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CtfError {
    // Packetized metadata.
    /// A metadata packet header (37 bytes) does not fit in what is left of the file.
    MetadataPacketTruncated {
        available: u64,
    },
    /// A metadata packet does not start with the packetized-metadata magic number.
    MetadataPacketBadMagic {
        found: u32,
    },
    /// A metadata packet is compressed, encrypted or checksummed: the scheme numbers found.
    MetadataPacketUnsupported {
        compression: u8,
        encryption: u8,
        checksum: u8,
    },
    /// A metadata packet's sizes (in bits) are inconsistent or go past the end of the file
    /// (`available`: bytes left from the packet's start).
    MetadataPacketBadSize {
        content_size_bits: u64,
        packet_size_bits: u64,
        available: u64,
    },
    // Metadata text.
    /// TSDL (CTF 1.8) text that does not parse, at a line and column of the text.
    Tsdl {
        line: u32,
        column: u32,
        error: TsdlError,
    },
    /// A CTF 2 metadata record that does not parse; `field_class` names the record's
    /// property whose field class is wrong, when the failure is inside one.
    Ctf2 {
        field_class: Option<&'static str>,
        error: Ctf2Error,
    },
    /// A CTF version other than 1.8 and 2.
    UnsupportedVersion {
        major: u64,
        minor: u64,
    },

    // What the metadata describes.
    /// An event class names a stream class the metadata does not describe.
    EventOfUnknownStreamClass {
        event: String,
        stream_class: u64,
    },
    /// Two event classes of a stream class have the same id.
    DuplicateEventClass {
        id: u64,
        stream_class: u64,
    },
    /// A root scope (packet header, packet context, event header, contexts, payload) is not a
    /// structure.
    ScopeNotStructure {
        scope: &'static str,
    },
    /// A stream class or timestamp maps to a clock the metadata does not describe.
    UnknownClock {
        name: String,
    },
    /// A field location (sequence length, variant or optional selector) names a field of a
    /// scope that is decoded later.
    LocationInLaterScope {
        location: String,
    },
    /// A field location names no field.
    UnresolvedLocation {
        location: String,
    },
    /// A field location names a field that is not an integer.
    LocationNotInteger {
        location: String,
    },
    /// A sequence or string length is a signed integer.
    SignedLength {
        location: String,
    },
    /// A variant selector is neither an integer nor an enumeration.
    SelectorNotInteger {
        location: String,
    },
    /// A TSDL variant selector, which chooses options by label, is not an enumeration.
    SelectorNotEnumeration {
        location: String,
    },
    /// More fields referred to by others than the reader keeps values for.
    TooManyFieldReferences {
        count: u32,
    },

    // Packets and events.
    /// A packet header's magic number is not 0xC1FC1FC1.
    BadPacketMagic {
        found: u64,
    },
    /// A packet header names a stream class the metadata does not describe.
    UnknownStreamClass {
        id: u64,
    },
    /// A packet header names no stream class, and the metadata describes several.
    NoStreamClassId {
        stream_classes: usize,
    },
    /// A packet's sizes (bits) are zero, not whole bytes, or the content exceeds the packet.
    BadPacketSize {
        packet_size_bits: u64,
        content_size_bits: u64,
    },
    /// A packet goes past the end of its stream file (`file_size`: bytes).
    PacketBeyondFile {
        packet_size_bits: u64,
        file_size: u64,
    },
    /// A packet's header and context are larger than its content.
    PacketContentTooSmall {
        header_bits: u64,
        content_size_bits: u64,
    },
    /// An event's class id is not one of its stream class's (`None`: the header has no id,
    /// and the stream class has no single event class).
    UnknownEventClass {
        stream_class: u64,
        id: Option<u64>,
    },
    /// An event that takes no bits at all (it would repeat forever).
    EmptyEvent,
    /// A field that cannot be decoded, in a packet's or an event's scope.
    Decode {
        scope: DecodeScope,
        error: DecodeError,
    },

    // LTTng index files (`index/*.idx`): never an error of the trace, a warning that the index
    // was set aside.
    Index(IndexError),
}

/// Where in a packet a field failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeScope {
    PacketHeader,
    PacketContext,
    EventHeader,
    /// The event's body: stream event context, event context or payload.
    Event,
}

/// A field the bytes of a packet cannot hold (the decoder's failures: small, and cheap to
/// return on its hot paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The alignment padding before a field goes past the end of the packet content.
    PaddingBeyondContent,
    /// A field of `bits` bits goes past the end of the packet content.
    FieldBeyondContent { bits: u64 },
    /// A field of `bits` bits goes past the end of the file.
    FieldBeyondFile { bits: u64 },
    /// A LEB128 integer that is truncated or longer than 64 bits.
    BadLeb128,
    /// A NUL-terminated string starts past the end of the packet content.
    StringBeyondContent,
    /// A NUL-terminated string has no NUL before the end of the packet content.
    UnterminatedString,
    /// A length whose size in bits does not fit in 64 bits.
    LengthTooLarge { length: u64 },
    /// A sequence or string length read from a signed field is negative.
    NegativeLength { length: i64 },
    /// A variant selector's value is in no option's range.
    SelectorMatchesNoOption { value: IntValue },
    /// An array of `elements` elements cannot fit in the rest of the packet content.
    ArrayBeyondContent { elements: u64 },
    /// Types nested deeper than the decoder follows (64 levels).
    NestedTooDeeply,
    /// A length or selector the metadata did not resolve to a field (a reader defect).
    UnresolvedLocation,
}

/// The value of an integer field, signed or not (a selector's, a length's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntValue {
    Unsigned(u64),
    Signed(i64),
}

impl IntValue {
    /// The value of a field of at most 64 bits held wider: negative ones are signed.
    pub fn of(v: i128) -> IntValue {
        if v < 0 {
            IntValue::Signed(v as i64)
        } else {
            IntValue::Unsigned(v as u64)
        }
    }
}

impl fmt::Display for IntValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntValue::Unsigned(v) => v.fmt(f),
            IntValue::Signed(v) => v.fmt(f),
        }
    }
}

/// TSDL text that does not parse (the line and column are in [`CtfError::Tsdl`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TsdlError {
    /// Text larger than the lexer's 32-bit offsets (bytes).
    TooLarge {
        size: u64,
    },
    // Lexical.
    UnexpectedCharacter {
        found: char,
    },
    UnterminatedComment,
    UnterminatedString,
    BadIntegerLiteral,
    /// A character literal that is not one character.
    BadCharacterLiteral,
    /// A `\x` escape without hexadecimal digits.
    BadEscape,
    UnknownEscape {
        found: char,
    },
    // Syntax.
    /// What the grammar expects here, and the token found (as the text shows it, or "the
    /// end of the text").
    Syntax {
        expected: &'static str,
        found: String,
    },
    // Declarations.
    /// A type name (`kind`: "type", "struct", "variant" or "enum") never declared.
    UnknownType {
        kind: &'static str,
        name: String,
    },
    /// An `enum` without a container type, and no `int` type declared to serve as one.
    EnumWithoutContainer,
    EnumContainerNotInteger,
    /// An integer size outside 1 to 64 bits (a literal beyond 64 bits saturates).
    UnsupportedIntegerSize {
        size: i64,
    },
    /// A floating point number other than 32 or 64 bits (`exp_dig + mant_dig`).
    UnsupportedFloatSize {
        size: u32,
    },
    /// An alignment that is not a power of two from 1 to 2^20 bits (a literal beyond 64 bits
    /// saturates).
    BadAlignment {
        align: i64,
    },
    IntegerWithoutSize,
    BadByteOrder {
        found: String,
    },
    DuplicateField {
        name: String,
    },
    DuplicateStreamClass {
        id: u64,
    },
    /// A `trace`, `stream`, `event` or `clock` attribute whose value is out of range or of
    /// the wrong type.
    BadAttributeValue {
        attribute: &'static str,
        found: String,
    },
    /// Types nested deeper than the parser follows (64 levels).
    NestedTooDeeply,
}

/// A CTF 2 metadata record that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ctf2Error {
    /// A record that is not JSON: serde_json's position in the record and its words.
    BadJson {
        line: usize,
        column: usize,
        message: String,
    },
    RecordWithoutType,
    /// The first record is of another type than `preamble`.
    FirstRecordNotPreamble {
        found: String,
    },
    /// No record at all.
    NoPreamble,
    /// An object lacks a property it must have.
    MissingProperty {
        object: &'static str,
        property: &'static str,
    },
    /// A property's value is of another JSON type, or out of range (`found`: its JSON text,
    /// cut).
    WrongType {
        property: &'static str,
        expected: &'static str,
        found: Box<str>,
    },
    UnknownFieldClassType {
        found: String,
    },
    UnknownAlias {
        name: String,
    },
    /// An alignment that is not a power of two from 1 to 2^20 bits.
    BadAlignment {
        align: u64,
    },
    BadByteOrder {
        found: String,
    },
    /// An integer length outside 1 to 64 bits.
    UnsupportedIntegerLength {
        length: u64,
    },
    /// A floating point number other than 32 or 64 bits.
    UnsupportedFloatLength {
        length: u64,
    },
    DuplicateMember {
        name: String,
    },
    /// A field location that is neither a path array nor an object with a path of names
    /// (`found`: its JSON text, cut).
    BadFieldLocation {
        found: String,
    },
    UnknownLocationOrigin {
        origin: String,
    },
    /// An integer range that is not a pair of integers (`found`: its JSON text, cut).
    BadIntegerRange {
        found: String,
    },
    /// A clock offset whose seconds do not fit in 64-bit nanoseconds.
    ClockOffsetOutOfRange {
        seconds: i64,
    },
    /// Field classes nested deeper than the parser follows (100 levels, aliases included).
    NestedTooDeeply,
}

/// An LTTng index file that cannot be trusted: the reader sets it aside, with a warning, and
/// finds the packets by scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexError {
    /// The file is shorter than its 16-byte header.
    TruncatedHeader {
        size: u64,
    },
    BadMagic {
        found: u32,
    },
    UnsupportedVersion {
        major: u32,
        minor: u32,
    },
    /// Entries declared shorter than the version's (bytes).
    EntriesTooShort {
        entry_size: u32,
        needed: u32,
    },
    /// The file ends inside an entry (`left`: bytes of it present).
    TruncatedEntry {
        left: u64,
    },
    /// A packet does not start where the previous one ends (byte offsets).
    PacketsNotContiguous {
        offset: u64,
        expected: u64,
    },
    /// An entry's sizes (bits) or timestamps contradict each other.
    InconsistentEntry {
        packet_size_bits: u64,
        content_size_bits: u64,
        ts_begin: u64,
        ts_end: u64,
    },
    /// A packet ends past the end of the stream file (bytes).
    PacketBeyondFile {
        end: u64,
        file_size: u64,
    },
    /// A packet begins before the previous one.
    OutOfTimeOrder {
        ts_begin: u64,
        previous: u64,
    },
    /// The packets do not cover the whole stream file (bytes).
    IncompleteCoverage {
        covered: u64,
        file_size: u64,
    },
}

impl fmt::Display for CtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CtfError::*;
        match self {
            MetadataPacketTruncated { available } => write!(
                f,
                "truncated metadata packet header ({available} bytes left, 37 needed)"
            ),
            MetadataPacketBadMagic { found } => write!(
                f,
                "bad metadata packet magic {found:#x} (0x75d11d57 expected)"
            ),
            MetadataPacketUnsupported {
                compression,
                encryption,
                checksum,
            } => write!(
                f,
                "compressed, encrypted or checksummed metadata packets are not supported \
                 (compression scheme {compression}, encryption {encryption}, checksum {checksum})"
            ),
            MetadataPacketBadSize {
                content_size_bits,
                packet_size_bits,
                available,
            } => write!(
                f,
                "bad metadata packet size: {packet_size_bits} bits, content {content_size_bits} \
                 bits ({available} bytes left in the file)"
            ),
            Tsdl {
                line,
                column,
                error,
            } => write!(f, "TSDL line {line}, column {column}: {error}"),
            Ctf2 {
                field_class: Some(p),
                error,
            } => write!(f, "CTF 2 metadata: {p}: {error}"),
            Ctf2 {
                field_class: None,
                error,
            } => write!(f, "CTF 2 metadata: {error}"),
            UnsupportedVersion { major, minor } => write!(
                f,
                "unsupported CTF version {major}.{minor} (1.8 and 2 are read)"
            ),
            EventOfUnknownStreamClass {
                event,
                stream_class,
            } => write!(
                f,
                "event `{event}` refers to unknown stream class {stream_class}"
            ),
            DuplicateEventClass { id, stream_class } => write!(
                f,
                "duplicate event class id {id} in stream class {stream_class}"
            ),
            ScopeNotStructure { scope } => write!(f, "{scope} is not a structure"),
            UnknownClock { name } => write!(f, "unknown clock `{name}`"),
            LocationInLaterScope { location } => {
                write!(f, "field location `{location}` refers to a later scope")
            }
            UnresolvedLocation { location } => {
                write!(f, "cannot resolve field location `{location}`")
            }
            LocationNotInteger { location } => {
                write!(f, "field location `{location}` does not name an integer")
            }
            SignedLength { location } => {
                write!(f, "length field `{location}` is a signed integer")
            }
            SelectorNotInteger { location } => {
                write!(f, "variant selector `{location}` is not an integer")
            }
            SelectorNotEnumeration { location } => {
                write!(f, "variant selector `{location}` is not an enumeration")
            }
            TooManyFieldReferences { count } => {
                write!(f, "too many field references ({count}, at most 65535)")
            }
            BadPacketMagic { found } => write!(
                f,
                "bad packet magic number {found:#x} (0xc1fc1fc1 expected)"
            ),
            UnknownStreamClass { id } => write!(f, "unknown stream class id {id}"),
            NoStreamClassId { stream_classes } => write!(
                f,
                "packet header names no stream class and there are {stream_classes}"
            ),
            BadPacketSize {
                packet_size_bits,
                content_size_bits,
            } => write!(
                f,
                "bad packet size: {packet_size_bits} bits, content {content_size_bits} bits"
            ),
            PacketBeyondFile {
                packet_size_bits,
                file_size,
            } => write!(
                f,
                "packet of {} bytes goes past the end of the file ({file_size} bytes)",
                packet_size_bits / 8
            ),
            PacketContentTooSmall {
                header_bits,
                content_size_bits,
            } => write!(
                f,
                "packet header and context ({header_bits} bits) are larger than the packet \
                 content ({content_size_bits} bits)"
            ),
            UnknownEventClass {
                stream_class,
                id: Some(id),
            } => write!(
                f,
                "unknown event class id {id} (stream class {stream_class})"
            ),
            UnknownEventClass {
                stream_class,
                id: None,
            } => write!(
                f,
                "event header without a class id, and stream class {stream_class} has not \
                 exactly one event class"
            ),
            EmptyEvent => f.write_str("event of size zero"),
            Decode { scope, error } => write!(f, "{scope}: {error}"),
            Index(e) => write!(f, "index: {e}"),
        }
    }
}

impl fmt::Display for DecodeScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeScope::PacketHeader => "packet header",
            DecodeScope::PacketContext => "packet context",
            DecodeScope::EventHeader => "event header",
            DecodeScope::Event => "event",
        })
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        match self {
            PaddingBeyondContent => {
                f.write_str("alignment padding goes past the end of the packet content")
            }
            FieldBeyondContent { bits } => write!(
                f,
                "field of {bits} bits goes past the end of the packet content"
            ),
            FieldBeyondFile { bits } => {
                write!(f, "field of {bits} bits goes past the end of the file")
            }
            BadLeb128 => f.write_str("bad or truncated LEB128 integer"),
            StringBeyondContent => f.write_str("string starts past the end of the packet content"),
            UnterminatedString => f.write_str("unterminated string"),
            LengthTooLarge { length } => write!(f, "length {length} is too large"),
            NegativeLength { length } => write!(f, "negative length {length}"),
            SelectorMatchesNoOption { value } => {
                write!(f, "variant selector value {value} selects no option")
            }
            ArrayBeyondContent { elements } => write!(
                f,
                "array of {elements} elements goes past the end of the packet content"
            ),
            NestedTooDeeply => f.write_str("types nested too deeply"),
            UnresolvedLocation => f.write_str("a field location the metadata did not resolve"),
        }
    }
}

impl fmt::Display for TsdlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TsdlError::*;
        match self {
            TooLarge { size } => write!(f, "metadata of {size} bytes, larger than 4 GiB"),
            UnexpectedCharacter { found } => write!(f, "unexpected character {found:?}"),
            UnterminatedComment => f.write_str("unterminated comment"),
            UnterminatedString => f.write_str("unterminated string"),
            BadIntegerLiteral => f.write_str("bad integer literal"),
            BadCharacterLiteral => f.write_str("bad character literal"),
            BadEscape => f.write_str("bad escape sequence"),
            UnknownEscape { found } => write!(f, "unknown escape sequence \\{found}"),
            Syntax { expected, found } => write!(f, "expected {expected}, found {found}"),
            UnknownType { kind, name } => write!(f, "unknown {kind} `{name}`"),
            EnumWithoutContainer => {
                f.write_str("enum without container type, and no `int` type declared")
            }
            EnumContainerNotInteger => f.write_str("enum container is not an integer"),
            UnsupportedIntegerSize { size } => {
                write!(f, "unsupported integer size {size} (1 to 64 bits are read)")
            }
            UnsupportedFloatSize { size } => write!(
                f,
                "unsupported floating point size {size} (32 and 64 bits are read)"
            ),
            BadAlignment { align } => {
                write!(f, "bad alignment {align} (a power of two up to 2^20 bits)")
            }
            IntegerWithoutSize => f.write_str("integer without size"),
            BadByteOrder { found } => write!(f, "bad byte_order {found}"),
            DuplicateField { name } => write!(f, "duplicate field {name}"),
            DuplicateStreamClass { id } => write!(f, "duplicate stream id {id}"),
            BadAttributeValue { attribute, found } => {
                write!(f, "bad value for `{attribute}`: {found}")
            }
            NestedTooDeeply => f.write_str("types nested too deeply"),
        }
    }
}

impl fmt::Display for Ctf2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Ctf2Error::*;
        match self {
            BadJson {
                line,
                column,
                message,
            } => write!(
                f,
                "bad JSON at line {line}, column {column} of the record: {message}"
            ),
            RecordWithoutType => f.write_str("record without type"),
            FirstRecordNotPreamble { found } => {
                write!(f, "the first record is a {found:?}, not a preamble")
            }
            NoPreamble => f.write_str("no preamble"),
            MissingProperty { object, property } => {
                write!(f, "{object} without `{property}`")
            }
            WrongType {
                property,
                expected,
                found,
            } => write!(f, "`{property}` is {found}, not {expected}"),
            UnknownFieldClassType { found } => write!(f, "unknown field class type `{found}`"),
            UnknownAlias { name } => write!(f, "unknown field class alias `{name}`"),
            BadAlignment { align } => {
                write!(f, "bad alignment {align} (a power of two up to 2^20 bits)")
            }
            BadByteOrder { found } => write!(f, "bad byte order `{found}`"),
            UnsupportedIntegerLength { length } => write!(
                f,
                "unsupported integer length {length} (1 to 64 bits are read)"
            ),
            UnsupportedFloatLength { length } => write!(
                f,
                "unsupported floating point length {length} (32 and 64 bits are read)"
            ),
            DuplicateMember { name } => write!(f, "duplicate member `{name}`"),
            BadFieldLocation { found } => write!(f, "bad field location {found}"),
            UnknownLocationOrigin { origin } => {
                write!(f, "unknown field location origin `{origin}`")
            }
            BadIntegerRange { found } => write!(f, "bad integer range {found}"),
            ClockOffsetOutOfRange { seconds } => {
                write!(f, "clock offset of {seconds} s out of range")
            }
            NestedTooDeeply => f.write_str("field classes nested too deeply"),
        }
    }
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use IndexError::*;
        match self {
            TruncatedHeader { size } => {
                write!(f, "truncated index header ({size} bytes, 16 needed)")
            }
            BadMagic { found } => write!(f, "bad index magic {found:#x} (0xc1f1dcc1 expected)"),
            UnsupportedVersion { major, minor } => {
                write!(f, "unsupported index version {major}.{minor}")
            }
            EntriesTooShort { entry_size, needed } => write!(
                f,
                "index entries of {entry_size} bytes are too short ({needed} needed)"
            ),
            TruncatedEntry { left } => {
                write!(f, "truncated index entry ({left} bytes of it)")
            }
            PacketsNotContiguous { offset, expected } => write!(
                f,
                "packet at byte {offset} where the previous one ends at {expected}"
            ),
            InconsistentEntry {
                packet_size_bits,
                content_size_bits,
                ts_begin,
                ts_end,
            } => write!(
                f,
                "inconsistent packet sizes or timestamps (size {packet_size_bits} bits, \
                 content {content_size_bits} bits, from {ts_begin} to {ts_end})"
            ),
            PacketBeyondFile { end, file_size } => write!(
                f,
                "packet ending at byte {end} goes past the end of the stream file \
                 ({file_size} bytes)"
            ),
            OutOfTimeOrder { ts_begin, previous } => write!(
                f,
                "packets out of time order (one begins at {ts_begin}, the previous at {previous})"
            ),
            IncompleteCoverage { covered, file_size } => {
                write!(f, "packets cover {covered} of the file's {file_size} bytes")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TraceError;

    /// The decoder returns its failures on its hot paths: they stay two words. The kinds of
    /// the whole reader keep a [`TraceError`] well below 128 bytes, where clippy finds results
    /// carrying it too large.
    #[test]
    fn errors_are_small() {
        assert!(std::mem::size_of::<DecodeError>() <= 16);
        assert!(std::mem::size_of::<Result<(), DecodeError>>() <= 16);
        assert!(std::mem::size_of::<CtfError>() <= 72);
    }

    /// What a user reads: the file, the byte, then the kind's sentence.
    #[test]
    fn kinds_read_as_sentences() {
        let e = TraceError::new(
            "trace/channel0_3",
            8192,
            CtfError::PacketBeyondFile {
                packet_size_bits: 4096 * 8,
                file_size: 10000,
            },
        );
        assert_eq!(
            e.to_string(),
            "trace/channel0_3: at byte 8192: packet of 4096 bytes goes past the end of the file \
             (10000 bytes)"
        );
        let e = TraceError::new(
            "trace/metadata",
            461,
            CtfError::Tsdl {
                line: 12,
                column: 17,
                error: TsdlError::Syntax {
                    expected: "`;`",
                    found: "`*`".into(),
                },
            },
        );
        assert_eq!(
            e.to_string(),
            "trace/metadata: at byte 461: TSDL line 12, column 17: expected `;`, found `*`"
        );
        let e = TraceError::new(
            "trace/stream_0",
            70,
            CtfError::Decode {
                scope: DecodeScope::Event,
                error: DecodeError::SelectorMatchesNoOption {
                    value: IntValue::Signed(-3),
                },
            },
        );
        assert_eq!(
            e.to_string(),
            "trace/stream_0: at byte 70: event: variant selector value -3 selects no option"
        );
        let e = TraceError::new(
            "trace/metadata",
            0,
            CtfError::Ctf2 {
                field_class: Some("payload-field-class"),
                error: Ctf2Error::UnknownAlias { name: "u33".into() },
            },
        );
        assert_eq!(
            e.to_string(),
            "trace/metadata: at byte 0: CTF 2 metadata: payload-field-class: unknown field \
             class alias `u33`"
        );
        let e = TraceError::new(
            "trace/metadata",
            192,
            CtfError::UnsupportedVersion { major: 2, minor: 0 },
        );
        assert_eq!(
            e.to_string(),
            "trace/metadata: at byte 192: unsupported CTF version 2.0 (1.8 and 2 are read)"
        );
    }
}
