//! Turns what a metadata front end parsed into a checked [`TraceClass`]: byte orders, roles,
//! clocks, and field locations (variant selectors, sequence lengths) resolved to value slots.

use crate::types::*;
use std::collections::HashSet;
use std::path::Path;
use virtflow_trace::error::CtfError;
use virtflow_trace::TraceError;

const ROOT_ORDER: [Root; 6] = [
    Root::PacketHeader,
    Root::PacketContext,
    Root::EventHeader,
    Root::StreamEventContext,
    Root::EventContext,
    Root::Payload,
];

#[allow(clippy::too_many_arguments)]
pub fn build(
    file: &Path,
    bo: Option<ByteOrder>,
    packet_header: Option<Ty>,
    streams: Vec<(u64, Option<Ty>, Option<Ty>, Option<Ty>, u64)>,
    events: Vec<(u64, EventClassDef)>,
    clocks: Vec<Clock>,
    env: Vec<(String, String)>,
    roles_by_name: bool,
) -> Result<TraceClass, TraceError> {
    let n = events.len();
    build_from(
        file,
        bo,
        packet_header,
        streams,
        n,
        events,
        clocks,
        env,
        roles_by_name,
    )
}

/// [`build`], with the event classes (and their stream class ids) from an iterator, and how
/// many there are.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_from(
    file: &Path,
    bo: Option<ByteOrder>,
    packet_header: Option<Ty>,
    streams: Vec<(u64, Option<Ty>, Option<Ty>, Option<Ty>, u64)>,
    n_events: usize,
    events: impl IntoIterator<Item = (u64, EventClassDef)>,
    clocks: Vec<Clock>,
    env: Vec<(String, String)>,
    roles_by_name: bool,
) -> Result<TraceClass, TraceError> {
    let err = |kind: CtfError| TraceError::new(file, 0, kind);
    let err_at = |off: u64, kind: CtfError| TraceError::new(file, off, kind);
    let bo = bo.unwrap_or(ByteOrder::Le);
    let mut tc = TraceClass {
        bo,
        packet_header: packet_header.unwrap_or_else(Ty::empty_struct),
        streams: Vec::new(),
        clocks,
        env,
        nslots: 0,
    };
    for (id, pc, eh, ec, meta_offset) in streams {
        tc.streams.push(StreamClassDef {
            meta_offset,
            id,
            packet_context: pc.unwrap_or_else(Ty::empty_struct),
            event_header: eh.unwrap_or_else(Ty::empty_struct),
            event_context: ec.unwrap_or_else(Ty::empty_struct),
            events: Vec::new(),
            clock: None,
        });
    }
    if tc.streams.is_empty() {
        tc.streams.push(StreamClassDef {
            meta_offset: 0,
            id: 0,
            packet_context: Ty::empty_struct(),
            event_header: Ty::empty_struct(),
            event_context: Ty::empty_struct(),
            events: Vec::new(),
            clock: None,
        });
    }
    // Event classes to their stream classes; ids seen per stream class, to find duplicates
    // among the hundreds of classes of a kernel trace without comparing every pair.
    let mut ids: Vec<Seen> = vec![Seen::default(); tc.streams.len()];
    if let [s] = tc.streams.as_mut_slice() {
        s.events.reserve_exact(n_events);
    }
    for (sid, e) in events {
        let Some(si) = tc.streams.iter().position(|s| s.id == sid) else {
            return Err(err_at(
                e.meta_offset,
                CtfError::EventOfUnknownStreamClass {
                    event: e.name,
                    stream_class: sid,
                },
            ));
        };
        if !ids[si].insert(e.id) {
            return Err(err_at(
                e.meta_offset,
                CtfError::DuplicateEventClass {
                    id: e.id,
                    stream_class: sid,
                },
            ));
        }
        tc.streams[si].events.push(e);
    }
    // Every root scope must be a structure.
    let check_struct = |t: &Ty, scope: &'static str| -> Result<(), TraceError> {
        if t.as_struct().is_none() {
            return Err(err(CtfError::ScopeNotStructure { scope }));
        }
        Ok(())
    };
    check_struct(&tc.packet_header, "packet header")?;
    for s in &tc.streams {
        check_struct(&s.packet_context, "packet context")?;
        check_struct(&s.event_header, "event header")?;
        check_struct(&s.event_context, "event context")?;
        for e in &s.events {
            check_struct(&e.context, "event context")?;
            check_struct(&e.payload, "event payload")?;
        }
    }
    // Byte orders.
    let fix_bo = |t: &mut Ty| {
        t.for_each_bo(&mut |b| {
            if *b == ByteOrder::Native {
                *b = bo
            }
        })
    };
    fix_bo(&mut tc.packet_header);
    for s in &mut tc.streams {
        fix_bo(&mut s.packet_context);
        fix_bo(&mut s.event_header);
        fix_bo(&mut s.event_context);
        for e in &mut s.events {
            fix_bo(&mut e.context);
            fix_bo(&mut e.payload);
        }
    }
    // Roles from names (TSDL).
    if roles_by_name {
        set_top_roles(
            &mut tc.packet_header,
            &[
                ("magic", Role::Magic),
                ("stream_id", Role::StreamClassId),
                ("stream_instance_id", Role::StreamId),
            ],
        );
        for s in &mut tc.streams {
            set_top_roles(
                &mut s.packet_context,
                &[
                    ("timestamp_begin", Role::PacketBeginTs),
                    ("timestamp_end", Role::PacketEndTs),
                    ("content_size", Role::ContentSize),
                    ("packet_size", Role::PacketSize),
                    ("events_discarded", Role::EventsDiscarded),
                    ("packet_seq_num", Role::PacketSeqNum),
                ],
            );
            set_deep_roles(&mut s.event_header);
        }
    }
    // Clocks: stream default clock = the clock of a mapped timestamp, else the only clock.
    let only_clock = if tc.clocks.len() == 1 {
        Some(tc.clocks[0].name.clone())
    } else {
        None
    };
    for s in &mut tc.streams {
        let mut found: Option<String> = s.clock.clone();
        let mut f = |i: &mut IntTy| {
            if matches!(
                i.role,
                Role::Timestamp | Role::PacketBeginTs | Role::PacketEndTs
            ) {
                if let Some(c) = &i.clock {
                    found.get_or_insert(c.clone());
                }
            }
        };
        s.event_header.for_each_int(&mut f);
        s.packet_context.for_each_int(&mut f);
        let clock = found.or_else(|| only_clock.clone());
        let mut g = |i: &mut IntTy| {
            if matches!(
                i.role,
                Role::Timestamp | Role::PacketBeginTs | Role::PacketEndTs
            ) && i.clock.is_none()
            {
                i.clock = clock.clone();
            }
        };
        s.event_header.for_each_int(&mut g);
        s.packet_context.for_each_int(&mut g);
        s.clock = clock;
    }
    for s in &tc.streams {
        if let Some(c) = &s.clock {
            if !tc.clocks.iter().any(|k| &k.name == c) {
                return Err(err(CtfError::UnknownClock { name: c.clone() }));
            }
        }
    }
    // Alignments.
    tc.packet_header.normalise_align();
    for s in &mut tc.streams {
        s.packet_context.normalise_align();
        s.event_header.normalise_align();
        s.event_context.normalise_align();
        for e in &mut s.events {
            e.context.normalise_align();
            e.payload.normalise_align();
        }
    }
    // Field locations.
    let mut nslots: u32 = 0;
    let mut empty4 = Ty::empty_struct();
    let mut empty5 = Ty::empty_struct();
    let ph = &mut tc.packet_header;
    for s in &mut tc.streams {
        let StreamClassDef {
            packet_context,
            event_header,
            event_context,
            events,
            meta_offset,
            ..
        } = s;
        let soff = *meta_offset;
        {
            let mut roots: [&mut Ty; 6] = [
                &mut *ph,
                packet_context,
                event_header,
                event_context,
                &mut empty4,
                &mut empty5,
            ];
            for r in 0..4 {
                resolve_root(&mut roots, r, &mut nslots).map_err(|m| err_at(soff, m))?;
            }
        }
        for e in events.iter_mut() {
            let EventClassDef {
                context,
                payload,
                meta_offset,
                ..
            } = e;
            let eoff = *meta_offset;
            let mut roots: [&mut Ty; 6] = [
                &mut *ph,
                packet_context,
                event_header,
                event_context,
                context,
                payload,
            ];
            for r in 4..6 {
                resolve_root(&mut roots, r, &mut nslots).map_err(|m| err_at(eoff, m))?;
            }
        }
    }
    if nslots > u16::MAX as u32 {
        return Err(err(CtfError::TooManyFieldReferences { count: nslots }));
    }
    tc.nslots = nslots as u16;
    Ok(tc)
}

fn set_top_roles(t: &mut Ty, names: &[(&str, Role)]) {
    if let Some(s) = t.as_struct_mut() {
        for (n, ty) in &mut s.fields {
            if let (Some((_, r)), Ty::Int(i)) = (names.iter().find(|(k, _)| k == n), ty) {
                i.role = *r;
            }
        }
    }
}

fn set_deep_roles(t: &mut Ty) {
    match t {
        Ty::Struct(s) => {
            for (n, ty) in &mut s.fields {
                match (n.as_str(), &mut *ty) {
                    ("id", Ty::Int(i)) => i.role = Role::EventClassId,
                    ("timestamp", Ty::Int(i)) => i.role = Role::Timestamp,
                    _ => set_deep_roles(ty),
                }
            }
        }
        Ty::Variant(v) => v.options.iter_mut().for_each(|(_, t)| set_deep_roles(t)),
        _ => {}
    }
}

enum SiteKind {
    Len,
    Tag,
    Sel,
}

/// Every field location in a tree: (index path of the referring type, the path, kind).
fn sites(t: &Ty, path: &mut Vec<usize>, out: &mut Vec<(Vec<usize>, FieldPath, SiteKind)>) {
    match t {
        Ty::Str(Len::Dyn(Loc::Path(p)), _) | Ty::Blob(Len::Dyn(Loc::Path(p))) => {
            out.push((path.clone(), p.clone(), SiteKind::Len))
        }
        Ty::Array { elem, len, .. } => {
            if let Len::Dyn(Loc::Path(p)) = len {
                out.push((path.clone(), p.clone(), SiteKind::Len));
            }
            path.push(0);
            sites(elem, path, out);
            path.pop();
        }
        Ty::Struct(s) => {
            for (i, (_, f)) in s.fields.iter().enumerate() {
                path.push(i);
                sites(f, path, out);
                path.pop();
            }
        }
        Ty::Variant(v) => {
            if let Loc::Path(p) = &v.tag {
                out.push((path.clone(), p.clone(), SiteKind::Tag));
            }
            for (i, (_, f)) in v.options.iter().enumerate() {
                path.push(i);
                sites(f, path, out);
                path.pop();
            }
        }
        Ty::Optional { sel, ty, .. } => {
            if let Loc::Path(p) = sel {
                out.push((path.clone(), p.clone(), SiteKind::Sel));
            }
            path.push(0);
            sites(ty, path, out);
            path.pop();
        }
        _ => {}
    }
}

/// Follows names from a type down through structures (and variant options by name).
fn descend(t: &Ty, names: &[String], out: &mut Vec<usize>) -> bool {
    let Some((first, rest)) = names.split_first() else {
        return true;
    };
    let list = match t {
        Ty::Struct(s) => &s.fields,
        Ty::Variant(v) => &v.options,
        Ty::Array { elem, .. } => {
            out.push(0);
            return descend(elem, names, out);
        }
        _ => return false,
    };
    match find_name(list, first) {
        Some(i) => {
            out.push(i);
            descend(&list[i].1, rest, out)
        }
        None => false,
    }
}

fn find_name(list: &[(String, Ty)], name: &str) -> Option<usize> {
    list.iter()
        .position(|(n, _)| n == name)
        .or_else(|| {
            list.iter()
                .position(|(n, _)| n.strip_prefix('_') == Some(name))
        })
        .or_else(|| {
            list.iter()
                .position(|(n, _)| name.strip_prefix('_') == Some(n.as_str()))
        })
}

/// Event class ids seen in a stream class: a bit for each small one, a set for the others.
#[derive(Clone, Default)]
struct Seen {
    bits: Vec<u64>,
    others: HashSet<u64>,
}

impl Seen {
    /// Whether `id` is new.
    fn insert(&mut self, id: u64) -> bool {
        if id >= 1 << 16 {
            return self.others.insert(id);
        }
        let (w, bit) = ((id / 64) as usize, 1u64 << (id % 64));
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        let new = self.bits[w] & bit == 0;
        self.bits[w] |= bit;
        new
    }
}

/// Whether a type refers to a field (sequence length, variant selector, optional's
/// selector) by its name.
fn has_paths(t: &Ty) -> bool {
    match t {
        Ty::Str(Len::Dyn(Loc::Path(_)), _) | Ty::Blob(Len::Dyn(Loc::Path(_))) => true,
        Ty::Array { elem, len, .. } => matches!(len, Len::Dyn(Loc::Path(_))) || has_paths(elem),
        Ty::Struct(s) => s.fields.iter().any(|(_, f)| has_paths(f)),
        Ty::Variant(v) => {
            matches!(v.tag, Loc::Path(_)) || v.options.iter().any(|(_, f)| has_paths(f))
        }
        Ty::Optional { sel, ty, .. } => matches!(sel, Loc::Path(_)) || has_paths(ty),
        _ => false,
    }
}

fn resolve_root(roots: &mut [&mut Ty; 6], r: usize, nslots: &mut u32) -> Result<(), CtfError> {
    // Most roots refer to nothing: they are passed over without collecting anything.
    if !has_paths(roots[r]) {
        return Ok(());
    }
    let mut list = Vec::new();
    sites(roots[r], &mut Vec::new(), &mut list);
    for (site, fp, kind) in list {
        // Find the target: (root index, index path).
        let mut target: Option<(usize, Vec<usize>)> = None;
        if let Some(root) = fp.root {
            let ri = ROOT_ORDER.iter().position(|x| *x == root).unwrap();
            if ri > r {
                return Err(CtfError::LocationInLaterScope {
                    location: fp.parts.join("."),
                });
            }
            let mut p = Vec::new();
            if descend(roots[ri], &fp.parts, &mut p) {
                target = Some((ri, p));
            }
        } else if !fp.parts.is_empty() {
            // Lexical scoping: innermost enclosing structure first.
            for d in (0..=site.len()).rev() {
                let Some(anc) = roots[r].at(&site[..d]) else {
                    continue;
                };
                if let Ty::Struct(s) = anc {
                    let limit = if d < site.len() {
                        site[d]
                    } else {
                        s.fields.len()
                    };
                    if let Some(i) = find_name(&s.fields[..limit.min(s.fields.len())], &fp.parts[0])
                    {
                        let mut p = site[..d].to_vec();
                        p.push(i);
                        if descend(&s.fields[i].1, &fp.parts[1..], &mut p) {
                            target = Some((r, p));
                            break;
                        }
                    }
                }
            }
            if target.is_none() {
                for ri in (0..r).rev() {
                    let mut p = Vec::new();
                    if descend(roots[ri], &fp.parts, &mut p) {
                        target = Some((ri, p));
                        break;
                    }
                }
            }
        }
        let name = fp.parts.join(".");
        let Some((tr, tp)) = target else {
            return Err(CtfError::UnresolvedLocation { location: name });
        };
        let node = roots[tr].at_mut(&tp).unwrap();
        let Ty::Int(it) = node else {
            return Err(CtfError::LocationNotInteger { location: name });
        };
        match kind {
            SiteKind::Len if it.signed => {
                return Err(CtfError::SignedLength { location: name });
            }
            SiteKind::Tag if it.mappings.is_none() && it.kind != IntKind::Plain => {
                return Err(CtfError::SelectorNotInteger { location: name });
            }
            _ => {}
        }
        let slot = match it.slot {
            Some(s) => s,
            None => {
                let s = *nslots as u16;
                *nslots += 1;
                it.slot = Some(s);
                s
            }
        };
        let mappings = it.mappings.clone();
        let site_node = roots[r].at_mut(&site).unwrap();
        match site_node {
            Ty::Str(Len::Dyn(l), _)
            | Ty::Blob(Len::Dyn(l))
            | Ty::Array {
                len: Len::Dyn(l), ..
            } => *l = Loc::Slot(slot),
            Ty::Variant(v) => {
                v.tag = Loc::Slot(slot);
                if v.by_label {
                    let Some(maps) = mappings else {
                        return Err(CtfError::SelectorNotEnumeration { location: name });
                    };
                    v.ranges.clear();
                    for (oi, (oname, _)) in v.options.iter().enumerate() {
                        let m = maps
                            .iter()
                            .find(|m| &m.name == oname)
                            .or_else(|| {
                                maps.iter()
                                    .find(|m| m.name.strip_prefix('_') == Some(oname.as_str()))
                            })
                            .or_else(|| {
                                maps.iter()
                                    .find(|m| oname.strip_prefix('_') == Some(m.name.as_str()))
                            });
                        if let Some(m) = m {
                            for &(lo, hi) in &m.ranges {
                                v.ranges.push((lo, hi, oi));
                            }
                        }
                    }
                }
            }
            Ty::Optional { sel, .. } => *sel = Loc::Slot(slot),
            _ => {}
        }
    }
    Ok(())
}
