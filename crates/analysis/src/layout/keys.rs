//! Message keys: what pairs a packet sent by one host with its reception by another.
//!
//! The research tracer's `inet_sock_local_*` carry the TCP fields as fields of their own; LTTng's
//! `net_dev_queue` and `netif_receive_skb` carry the packet's headers as one compound field
//! (`network_header`: variants selecting IPv4 or IPv6, then TCP or UDP), read here with a
//! visitor that keeps three integers and allocates nothing, and lets the reader step over the
//! other members — building the compound as a value cost more than the rest of the event.

use virtflow_trace::{EventSource, FieldId, FieldVisitor};

use super::typed::MessageKey;
use super::vocabulary::KeyFields;

/// The message key of a packet event, from where its class carries it.
pub(super) fn message_key<S: EventSource + ?Sized>(src: &S, key: KeyFields) -> Option<MessageKey> {
    match key {
        KeyFields::None => None,
        KeyFields::Tcp {
            seq,
            ack_seq,
            flags,
        } => Some(MessageKey::Tcp {
            seq: src.u64(seq)? as u32,
            ack_seq: src.u64(ack_seq)? as u32,
            flags: src.u64(flags)? as u16,
        }),
        KeyFields::Stub(f) => Some(MessageKey::Stub(src.u64(f)?)),
        KeyFields::TcpBelow(f, device) => {
            if device
                .and_then(|d| src.str(d))
                .is_some_and(is_virtual_device)
            {
                return None;
            }
            tcp_below(src, f)
        }
    }
}

/// Devices that carry packets inside one machine — a VM's tap, bridges, veth pairs, the
/// loopback. A packet between hosts passes them too, before or after the wire, with the same
/// TCP header: taken as message ends, they would pair a host's forwarding with the other
/// host's, so only the other devices' packets are messages between hosts.
pub fn is_virtual_device(name: &str) -> bool {
    const VIRTUAL: &[&str] = &[
        "tap", "vnet", "macvtap", "veth", "virbr", "docker", "br", "lo", "tun", "vhost", "cni",
        "flannel", "cali", "vxlan", "genev", "ovs",
    ];
    VIRTUAL.iter().any(|p| name.starts_with(p))
}

/// The TCP header in field `field` of the current event: the innermost structure that holds
/// `seq`, `ack_seq` and `flags`, below the variants that select the protocols.
fn tcp_below<S: EventSource + ?Sized>(src: &S, field: FieldId) -> Option<MessageKey> {
    let mut v = TcpFinder {
        field,
        inside: false,
        frames: [Frame::default(); MAX_DEPTH],
        depth: 0,
        member: Member::Other,
        found: None,
    };
    src.visit_field(field, &mut v).ok()?;
    v.found
}

/// Structures nested deeper than this are not looked into (LTTng's headers nest three deep).
const MAX_DEPTH: usize = 8;

#[derive(Clone, Copy, Default)]
struct Frame {
    seq: Option<u64>,
    ack_seq: Option<u64>,
    flags: Option<u64>,
}

#[derive(Clone, Copy)]
enum Member {
    Seq,
    AckSeq,
    Flags,
    Other,
}

struct TcpFinder {
    field: FieldId,
    /// Whether the values coming belong to `field`.
    inside: bool,
    frames: [Frame; MAX_DEPTH],
    /// Structures open (the frame of the innermost is `frames[depth - 1]`).
    depth: usize,
    member: Member,
    found: Option<MessageKey>,
}

impl TcpFinder {
    fn integer(&mut self, v: u64) {
        if !self.inside || self.depth == 0 || self.depth > MAX_DEPTH {
            return;
        }
        let frame = &mut self.frames[self.depth - 1];
        match self.member {
            Member::Seq => frame.seq = Some(v),
            Member::AckSeq => frame.ack_seq = Some(v),
            Member::Flags => frame.flags = Some(v),
            Member::Other => {}
        }
        self.member = Member::Other;
    }
}

impl FieldVisitor for TcpFinder {
    fn field(&mut self, id: FieldId) {
        self.inside = id == self.field;
        self.depth = 0;
    }
    fn bool(&mut self, _: bool) {}
    fn uint(&mut self, v: u64) {
        self.integer(v);
    }
    fn int(&mut self, v: i64) {
        self.integer(v as u64);
    }
    fn float(&mut self, _: f64) {}
    fn str(&mut self, _: &[u8]) {}
    fn bytes(&mut self, _: &[u8]) {}
    fn none(&mut self) {}
    fn enumeration(&mut self, _: &mut dyn Iterator<Item = &str>) {}
    fn variant(&mut self, _: &str) {}
    fn begin_struct(&mut self) {
        if self.inside {
            if self.depth < MAX_DEPTH {
                self.frames[self.depth] = Frame::default();
            }
            self.depth += 1;
        }
    }
    fn wants_member(&mut self, name: &str) -> bool {
        // The reader steps over the addresses, ports and lengths around them.
        matches!(name, "seq" | "ack_seq" | "flags")
    }
    fn member(&mut self, name: &str) {
        self.member = match name {
            "seq" => Member::Seq,
            "ack_seq" => Member::AckSeq,
            "flags" => Member::Flags,
            _ => Member::Other,
        };
    }
    fn end_struct(&mut self) {
        if !self.inside || self.depth == 0 {
            return;
        }
        if self.depth <= MAX_DEPTH && self.found.is_none() {
            let f = self.frames[self.depth - 1];
            if let (Some(seq), Some(ack_seq), Some(flags)) = (f.seq, f.ack_seq, f.flags) {
                self.found = Some(MessageKey::Tcp {
                    seq: seq as u32,
                    ack_seq: ack_seq as u32,
                    flags: flags as u16,
                });
            }
        }
        self.depth -= 1;
    }
    fn begin_array(&mut self, _: u64) {}
    fn end_array(&mut self) {}
    fn field_uint(&mut self, id: FieldId, _: u64) {
        self.field(id);
    }
    fn field_int(&mut self, id: FieldId, _: i64) {
        self.field(id);
    }
    fn field_str(&mut self, id: FieldId, _: &[u8]) {
        self.field(id);
    }
}
