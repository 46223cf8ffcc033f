//! CTF 1.8 metadata: the TSDL lexer and a parser that compiles straight to [`crate::types`].
//!
//! Metadata of a kernel trace declares hundreds of event classes, so opening a trace is mostly
//! this parser. It lexes a few dozen tokens at a time (a token is a kind and a span of the
//! text: names borrow the text), applies attributes as it reads them instead of collecting
//! them, takes an `integer { … }` whose exact text it has read before from a small cache
//! instead of reading it again (a kernel trace declares thousands with a handful of texts),
//! and allocates only what the resulting types own.

mod blocks;
mod lexer;
mod parser;
mod scopes;
mod values;

use crate::types::*;
use blocks::Collected;
use lexer::{Lexer, K};
use parser::Parser;
use std::path::Path;
use virtflow_trace::TraceError;

pub use lexer::{lex, LexError, Tok};

/// Parses TSDL text into a trace class. `file` names the metadata file in errors.
pub fn parse(text: &str, file: &Path) -> Result<TraceClass, TraceError> {
    let lex_err = |(off, e): LexError| parser::tsdl_error(file, text, off, e);
    let mut p = Parser::new(Lexer::new(text).map_err(lex_err)?, file);
    let mut c = Collected::default();
    let r = p.parse_top(&mut c);
    // A lexical error anywhere in the text is the error, even past a syntax error.
    if r.is_err() {
        while p.lx.err.is_none() && p.lx.scan().k != K::Eof {}
    }
    if let Some(e) = p.lx.err.take() {
        return Err(lex_err(e));
    }
    r?;
    drop(p);
    crate::resolve::build_from(
        file,
        c.bo,
        c.packet_header,
        c.streams,
        c.events.iter().map(Vec::len).sum(),
        c.events.into_iter().flatten(),
        c.clocks,
        c.env,
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtflow_trace::error::{CtfError, TsdlError};
    use virtflow_trace::ErrorKind;

    const META: &str = r#"/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
typealias integer { size = 64; align = 8; signed = false; map = clock.monotonic.value; } := uint64_clock_t;
typealias integer { size = 32; align = 8; signed = true; } := int;
trace { major = 1; minor = 8; byte_order = be;
  packet.header := struct { uint32_t magic; uint8_t uuid[16]; uint32_t stream_id; };
};
env { hostname = "h"; domain = "kernel"; };
clock { name = monotonic; freq = 1000; offset_s = 10; offset = 500; };
stream { id = 0;
  event.header := struct { enum : uint8_t { compact = 0 ... 30, extended = 31 } id;
     variant <id> { struct { uint32_t timestamp; } compact; struct { uint32_t id; uint64_clock_t timestamp; } extended; } v; };
  packet.context := struct { uint64_clock_t timestamp_begin; uint32_t content_size; uint32_t packet_size; uint32_t cpu_id; };
};
event { name = "e"; id = 3; stream_id = 0;
  fields := struct { uint32_t len; string s; integer { size = 4; signed = true; byte_order = le; } x[len];
     enum e2 : uint8_t { A, B = 5, C = 7 ... 9 } tag; variant <tag> { int A; string B; struct { uint8_t q; } C; } v;
     uint8_t arr[2][3]; integer { size = 8; encoding = UTF8; } chars[4]; } align(32);
};
"#;

    #[test]
    fn parser() {
        let tc = parse(META, Path::new("metadata")).unwrap();
        assert_eq!(tc.bo, ByteOrder::Be);
        assert_eq!(tc.clocks[0].freq, 1000);
        assert_eq!(tc.clocks[0].to_ns(500), 10_000_000_000 + 1_000_000_000);
        assert_eq!(tc.env[0], ("hostname".into(), "h".into()));
        let s = &tc.streams[0];
        let e = &s.events[0];
        assert_eq!(e.name, "e");
        assert_eq!(e.id, 3);
        let st = e.payload.as_struct().unwrap();
        assert_eq!(st.min_align, 32);
        let names: Vec<&str> = st.fields.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["len", "s", "x", "tag", "v", "arr", "chars"]);
        // The sequence refers to `len` through a slot.
        let Ty::Int(len) = &st.fields[0].1 else {
            panic!()
        };
        let Ty::Array {
            len: Len::Dyn(Loc::Slot(sl)),
            elem,
            ..
        } = &st.fields[2].1
        else {
            panic!()
        };
        assert_eq!(len.slot, Some(*sl));
        let Ty::Int(x) = &**elem else { panic!() };
        assert!(x.signed && x.size == 4 && x.bo == ByteOrder::Le);
        let Ty::Variant(v) = &st.fields[4].1 else {
            panic!()
        };
        assert!(matches!(v.tag, Loc::Slot(_)));
        assert!(v.ranges.contains(&(7, 9, 2)));
        assert!(matches!(&st.fields[6].1, Ty::Str(Len::Static(4), false)));
        let Ty::Array {
            elem,
            len: Len::Static(2),
            ..
        } = &st.fields[5].1
        else {
            panic!()
        };
        assert!(matches!(
            &**elem,
            Ty::Array {
                len: Len::Static(3),
                ..
            }
        ));
        // Roles.
        let Ty::Int(b) = &s.packet_context.as_struct().unwrap().fields[0].1 else {
            panic!()
        };
        assert_eq!(b.role, Role::PacketBeginTs);
        assert_eq!(b.bo, ByteOrder::Be);
    }

    /// The kind of a TSDL error, with its line and column.
    fn tsdl(e: &TraceError) -> (u32, u32, &TsdlError) {
        match &e.kind {
            ErrorKind::Ctf(CtfError::Tsdl {
                line,
                column,
                error,
            }) => (*line, *column, error),
            k => panic!("not a TSDL error: {k:?}"),
        }
    }

    #[test]
    fn errors_have_offsets() {
        let text = "trace { major = 1; minor = 8; byte_order = le; };\nstruct { int x; };";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert_eq!(e.offset, text.find("int x").unwrap() as u64, "{e}");
        let unknown = TsdlError::UnknownType {
            kind: "type",
            name: "int".into(),
        };
        assert_eq!(tsdl(&e), (2, 10, &unknown));
        let text =
            "typealias integer { size = 8; } := u8;\nevent { fields := struct { u8 a[b]; }; };";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert_eq!(e.offset, text.find("event").unwrap() as u64, "{e}");
        assert_eq!(
            e.kind,
            ErrorKind::Ctf(CtfError::UnresolvedLocation {
                location: "b".into()
            })
        );
        let text = "trace { major = 1; minor = 8; byte_order = le; } garbage";
        let e = parse(text, Path::new("m")).unwrap_err();
        let unknown = TsdlError::UnknownType {
            kind: "type",
            name: "garbage".into(),
        };
        assert_eq!(tsdl(&e), (1, 50, &unknown));
        assert_eq!(
            e.to_string(),
            "m: at byte 49: TSDL line 1, column 50: unknown type `garbage`"
        );
    }

    /// The version a trace block gives, and the syntax expected where it is not.
    #[test]
    fn versions_and_syntax_errors() {
        let text = "trace { major = 1; minor = 9; };";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert_eq!(e.offset, text.find("minor").unwrap() as u64);
        assert_eq!(
            e.kind,
            ErrorKind::Ctf(CtfError::UnsupportedVersion { major: 1, minor: 9 })
        );
        let text = "typealias integer { size = 8; } := u8;\nstruct s { u8 a; u8 b }";
        let e = parse(text, Path::new("m")).unwrap_err();
        let expected = TsdlError::Syntax {
            expected: "`;`",
            found: "`}`".into(),
        };
        assert_eq!(tsdl(&e), (2, 23, &expected));
        let text = "typealias integer { size = 65; } := u65;";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert!(matches!(
            tsdl(&e).2,
            TsdlError::UnsupportedIntegerSize { size: 65 }
        ));
        let text = "clock { name = c; freq = 0; };";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert_eq!(e.offset, text.find("freq").unwrap() as u64);
        let bad = TsdlError::BadAttributeValue {
            attribute: "freq",
            found: "`0`".into(),
        };
        assert_eq!(tsdl(&e), (1, 19, &bad));
    }

    /// The text is lexed as it is parsed, but a lexical error anywhere is still the error
    /// of the whole text, even after a syntax error.
    #[test]
    fn lexical_error_comes_first() {
        let text = "event { name = ; };\n#";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert_eq!(e.offset, text.find('#').unwrap() as u64, "{e}");
        assert_eq!(
            tsdl(&e),
            (2, 1, &TsdlError::UnexpectedCharacter { found: '#' })
        );
    }

    /// A value missing at the end of the text is reported at the last token.
    #[test]
    fn missing_value_at_the_end() {
        let text = "event { name =";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert_eq!(e.offset, text.find('=').unwrap() as u64, "{e}");
        let expected = TsdlError::Syntax {
            expected: "a value",
            found: "the end of the text".into(),
        };
        assert_eq!(tsdl(&e), (1, 14, &expected));
    }

    /// Duplicate event class ids are found whatever their size.
    #[test]
    fn duplicate_event_ids() {
        for id in [3u64, 70_000, 1 << 40] {
            let text =
                format!("event {{ name = a; id = {id}; }};\nevent {{ name = b; id = {id}; }};");
            let e = parse(&text, Path::new("m")).unwrap_err();
            assert_eq!(e.offset, text.rfind("event").unwrap() as u64, "{e}");
            assert_eq!(
                e.kind,
                ErrorKind::Ctf(CtfError::DuplicateEventClass {
                    id,
                    stream_class: 0
                })
            );
        }
    }

    /// An `integer { … }` whose text was read before is taken from a cache: the same metadata
    /// with every integer written differently (other blanks at the same places, so that
    /// offsets do not move and nothing comes from the cache) gives the same trace class.
    #[test]
    fn cached_integers_are_the_integers_read() {
        const BLANKS: [&str; 5] = [" ", "\t", "\n", "\r", "\x0c"];
        let meta = |vary: bool| {
            let mut k = 0;
            let mut int = |attrs: &str| {
                let (a, b) = if vary {
                    (BLANKS[k % 5], BLANKS[k / 5 % 5])
                } else {
                    (" ", " ")
                };
                k += 1;
                format!("integer {{{a}{attrs}{b}}}")
            };
            let u8a = "size = 8; align = 8; signed = false;";
            let clk = "size = 64; align = 8; signed = false; map = clock.c.value;";
            let chr = "size = 8; align = 8; encoding = UTF8; s = \"}\";";
            let tag = "size = 5; align = 1; signed = false;";
            let mut t = String::from("trace { major = 1; minor = 8; byte_order = le; };\n");
            t += "clock { name = c; };\n";
            t += &format!("typealias {} := u8;\n", int(u8a));
            t += &format!("typealias {} := clk;\n", int(clk));
            t += &format!(
                "stream {{ event.header := struct {{ enum : {} {{ a = 0 ... 30, b = 31 }} id; \
                 {} timestamp; }}; packet.context := struct {{ {} content_size; \
                 {} packet_size; }}; }};\n",
                int(tag),
                int(clk),
                int(clk),
                int(clk)
            );
            for e in 0..4 {
                t += &format!(
                    "event {{ name = \"e{e}\"; id = {e}; fields := struct {{ {} len; {} s[len]; \
                     {} c[16]; u8 d; {} x; }}; }};\n",
                    int(u8a),
                    int(chr),
                    int(chr),
                    int(u8a)
                );
            }
            assert!(k <= 25, "blanks repeat");
            t
        };
        let (same, varied) = (meta(false), meta(true));
        assert_eq!(same.len(), varied.len());
        assert_ne!(same, varied);
        let a = parse(&same, Path::new("m")).unwrap();
        let b = parse(&varied, Path::new("m")).unwrap();
        assert_eq!(a.streams[0].events.len(), 4);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
