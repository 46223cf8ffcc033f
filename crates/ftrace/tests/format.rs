//! The tracefs `format` parser on real format texts: literal ones from a Linux 6.1 host, and
//! every format carried by the real `.dat` files, as `trace-cmd dump --events` prints them.

mod common;

use virtflow_ftrace::format::{
    parse_format, parse_header_page, FieldLayout, FormatError, FormatErrorKind,
};
use virtflow_ftrace::record::{event_class, field_kind};
use virtflow_trace::{FieldKind, Scope};

const SCHED_SWITCH: &str = "name: sched_switch
ID: 372
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:int prev_prio;\toffset:28;\tsize:4;\tsigned:1;
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;
\tfield:char next_comm[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;
\tfield:int next_prio;\toffset:60;\tsize:4;\tsigned:1;

print fmt: \"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d\", REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & ((((0x00000000 | 0x00000001) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & 3, \"|\", { 0x00000001, \"S\" }) : \"R\", REC->prev_state & 4 ? \"+\" : \"\", REC->next_comm, REC->next_pid, REC->next_prio
";

const KVM_EMULATE_INSN: &str = "name: kvm_emulate_insn
ID: 1431
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__u64 rip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:__u32 csbase;\toffset:16;\tsize:4;\tsigned:0;
\tfield:__u8 len;\toffset:20;\tsize:1;\tsigned:0;
\tfield:__u8 insn[15];\toffset:21;\tsize:15;\tsigned:0;
\tfield:__u8 flags;\toffset:36;\tsize:1;\tsigned:0;
\tfield:__u8 failed;\toffset:37;\tsize:1;\tsigned:0;

print fmt: \"%x:%llx:%s (%s)%s\", REC->csbase, REC->rip, __print_hex(REC->insn, REC->len), \"\", \"\"
";

const PRINT: &str = "name: print
ID: 5
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;
\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:1;

print fmt: \"%ps: %s\", (void *)REC->ip, REC->buf
";

/// `__data_loc` strings and arrays, a pointer, and a `__rel_loc` (Linux 6.0+ syntax).
const DYNAMIC: &str = "name: block_rq_issue
ID: 1190
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:dev_t dev;\toffset:8;\tsize:4;\tsigned:0;
\tfield:sector_t sector;\toffset:16;\tsize:8;\tsigned:0;
\tfield:char rwbs[8];\toffset:32;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] comm;\toffset:40;\tsize:4;\tsigned:0;
\tfield:__data_loc u8[] cmd;\toffset:44;\tsize:4;\tsigned:0;
\tfield:__rel_loc u32[] ids;\toffset:48;\tsize:4;\tsigned:0;
\tfield:const void * skbaddr;\toffset:56;\tsize:8;\tsigned:0;

print fmt: \"%d,%d\", 0, 0
";

#[test]
fn sched_switch_fields() {
    let f = parse_format("sched", SCHED_SWITCH).unwrap();
    assert_eq!(
        (f.system.as_str(), f.name.as_str(), f.id),
        ("sched", "sched_switch", 372)
    );
    assert_eq!(f.fields.len(), 11);
    assert!(f.fields[..4].iter().all(|x| x.common));
    assert!(f.fields[4..].iter().all(|x| !x.common));
    let prev_comm = f.field("prev_comm").unwrap();
    assert_eq!((prev_comm.offset, prev_comm.size), (8, 16));
    assert_eq!(prev_comm.layout, FieldLayout::CharArray);
    let prev_state = f.field("prev_state").unwrap();
    assert_eq!(prev_state.type_name, "long");
    assert!(prev_state.signed);
    assert_eq!(prev_state.layout, FieldLayout::Integer);
    assert_eq!(field_kind(prev_state), FieldKind::Int);
    assert_eq!(field_kind(f.field("common_type").unwrap()), FieldKind::UInt);
    assert!(f.print_fmt.starts_with("\"prev_comm=%s"));
    assert_eq!(f.fixed_size(), 64);
    let class = event_class(&f);
    assert_eq!(class.fields[3].scope, Scope::Common);
    assert_eq!(class.fields[4].scope, Scope::Payload);
    assert_eq!(class.fields[4].kind, FieldKind::Str);
}

#[test]
fn arrays_pointers_and_dynamic_fields() {
    let f = parse_format("kvm", KVM_EMULATE_INSN).unwrap();
    assert_eq!(
        f.field("insn").unwrap().layout,
        FieldLayout::Array { elem_size: 1 }
    );
    assert_eq!(field_kind(f.field("insn").unwrap()), FieldKind::Compound);
    let f = parse_format("ftrace", PRINT).unwrap();
    let buf = f.field("buf").unwrap();
    assert_eq!((buf.size, buf.layout), (0, FieldLayout::CharArray));
    let f = parse_format("block", DYNAMIC).unwrap();
    assert_eq!(
        f.field("comm").unwrap().layout,
        FieldLayout::Dynamic {
            relative: false,
            is_string: true,
            elem_size: 1
        }
    );
    assert_eq!(
        f.field("cmd").unwrap().layout,
        FieldLayout::Dynamic {
            relative: false,
            is_string: false,
            elem_size: 1
        }
    );
    assert_eq!(
        f.field("ids").unwrap().layout,
        FieldLayout::Dynamic {
            relative: true,
            is_string: false,
            elem_size: 4
        }
    );
    let skb = f.field("skbaddr").unwrap();
    assert_eq!(skb.type_name, "const void *");
    assert_eq!(skb.layout, FieldLayout::Integer);
    assert_eq!(f.field("rwbs").unwrap().layout, FieldLayout::CharArray);
}

#[test]
fn malformed_formats_are_errors_with_a_line() {
    let kind = |text: &str| parse_format("x", text).unwrap_err();
    assert_eq!(
        kind("ID: 3\nformat:\n"),
        FormatError {
            line: 1,
            kind: FormatErrorKind::NoName
        }
    );
    assert_eq!(kind("name: a\nformat:\n").kind, FormatErrorKind::NoId);
    let e = kind("name: a\nID: 1\nformat:\n\tfield:int;\toffset:0;\tsize:4;\n");
    assert_eq!(e.line, 4);
    assert_eq!(
        e.kind,
        FormatErrorKind::NoFieldName {
            declaration: "int".into()
        }
    );
    let e = kind("name: a\nID: 1\nformat:\n\tfield:int a;\toffset:zero;\tsize:4;\n");
    assert_eq!(e.line, 4);
    assert_eq!(
        e.kind,
        FormatErrorKind::BadNumber {
            found: "zero".into()
        }
    );
    assert_eq!(e.to_string(), "format line 4: bad number \"zero\"");
    assert_eq!(
        kind("name: a\nID: x1\n"),
        FormatError {
            line: 2,
            kind: FormatErrorKind::BadEventId { found: "x1".into() }
        }
    );
    let e = kind("name: a\nID: 1\nformat:\n\tfield:int a;\tsize:4;\n");
    assert_eq!(e.kind, FormatErrorKind::MissingFieldPart { what: "offset" });
}

#[test]
fn header_page_description() {
    let text = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;
";
    let h = parse_header_page(text).unwrap();
    assert_eq!((h.commit_offset, h.commit_size), (8, 8));
    assert_eq!((h.data_offset, h.data_size), (16, 4080));
    assert_eq!(
        parse_header_page("field: u64 timestamp; offset:0; size:8;")
            .unwrap_err()
            .kind,
        FormatErrorKind::HeaderPageFieldMissing { name: "commit" }
    );
}

/// Every format of every real `.dat`, as trace-cmd prints them, parses, with one field per
/// `field:` line and the common fields first.
#[test]
fn every_format_in_the_real_traces_parses() {
    for path in common::real_dat_files() {
        let text = common::trace_cmd(&["dump", "--events", path.to_str().unwrap()]);
        let mut formats = 0;
        for block in text.split("\nname: ").skip(1) {
            let block = format!("name: {block}");
            // The block ends at its `print fmt:` line.
            let end = block
                .find("\nprint fmt:")
                .and_then(|p| block[p + 1..].find('\n').map(|q| p + 1 + q))
                .unwrap_or(block.len());
            let block = &block[..end];
            let f = parse_format("any", block)
                .unwrap_or_else(|e| panic!("{}: {e}\n{block}", path.display()));
            let field_lines = block
                .lines()
                .filter(|l| l.trim_start().starts_with("field"))
                .count();
            assert_eq!(f.fields.len(), field_lines, "{block}");
            assert_eq!(
                f.fields.iter().filter(|x| x.common).count(),
                4,
                "{}",
                f.name
            );
            assert!(f.fields.iter().take(4).all(|x| x.common));
            formats += 1;
        }
        assert!(formats > 100, "{}: only {formats} formats", path.display());
        let source = virtflow_ftrace::DatSource::open(&path).unwrap();
        assert!(
            source.meta().warnings.is_empty(),
            "{:?}",
            source.meta().warnings
        );
        assert!(source.meta().formats.len() >= formats);
    }
}
