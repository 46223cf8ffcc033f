//! The stub traces of Trace Compass's tests, written from their tables and read back event by
//! event: timestamps, names, field values, CPUs and host names.

mod common;

use common::{assert_reads_as_table, rows, scratch, Row};
use virtflow_trace::{EventSource, FieldKind};
use virtflow_xmlstub::testing::traces;
use virtflow_xmlstub::XmlSource;

fn open(trace: &virtflow_xmlstub::testing::StubTrace, test: &str) -> XmlSource {
    let path = trace
        .write_in(scratch(&format!("{test}-{}", trace.file_name)))
        .unwrap();
    XmlSource::open(path).unwrap()
}

fn names(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.name.as_str()).collect()
}

fn times(rows: &[Row]) -> Vec<i64> {
    rows.iter().map(|r| r.ts).collect()
}

/// Every table, written as a file and read back: the same events, values and CPUs, the file
/// name as host, no warning.
#[test]
fn every_trace_reads_back_as_its_table() {
    let dir = scratch("all");
    for trace in traces::all() {
        let mut source = XmlSource::open(trace.write_in(&dir).unwrap()).unwrap();
        assert_eq!(source.hostname().as_deref(), Some(trace.file_name));
        let read = rows(&mut source);
        assert_reads_as_table(&trace, &read);
        let stats = source.stats();
        assert_eq!(stats.events, trace.events.len() as u64);
        assert_eq!(stats.warnings, Vec::<String>::new(), "{}", trace.file_name);
        assert_eq!(stats.unknown_events, 0);
    }
}

/// The event matching stubs (client.xml, server.xml): ten packets on CPU 1 whose `msgid` pairs
/// them; the hosts are the file names.
#[test]
fn network_client_and_server() {
    let mut client = open(&traces::network_client(), "net");
    let mut server = open(&traces::network_server(), "net");
    assert_eq!(client.hostname().as_deref(), Some("client.xml"));
    assert_eq!(server.hostname().as_deref(), Some("server.xml"));
    let c = rows(&mut client);
    let s = rows(&mut server);
    assert_eq!(times(&c), [15, 20, 25, 30, 100, 105, 110, 115]);
    assert_eq!(times(&s), [50, 70]);
    let sent = "packet_sent";
    let recv = "packet_received";
    assert_eq!(names(&c), [sent, recv, recv, sent, recv, sent, sent, recv]);
    assert_eq!(names(&s), [recv, sent]);
    let msgid = |rows: &[Row]| rows.iter().map(|r| r.int("msgid")).collect::<Vec<_>>();
    assert_eq!(msgid(&c), [1, 1, 1, 1, 2, 2, 2, 2]);
    assert_eq!(msgid(&s), [1, 2]);
    let interfaces: Vec<_> = c.iter().map(|r| r.string("interface")).collect();
    assert_eq!(
        interfaces,
        ["eth0", "veth2345", "docker0", "ens3", "ens3", "docker0", "veth2345", "eth0"]
    );
    assert_eq!(s[0].string("interface"), "eno1");
    assert!(c.iter().chain(&s).all(|r| r.cpu == 1 && r.int("cpu") == 1));
    // Classes in first-seen order, each with the union of its fields.
    let classes: Vec<_> = client.classes().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(classes, [sent, recv]);
    let fields: Vec<_> = client.classes()[0]
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    assert_eq!(
        fields,
        [
            ("cpu", FieldKind::Int),
            ("interface", FieldKind::Str),
            ("msgid", FieldKind::Int)
        ]
    );
}

/// sched_only.xml: four switches between tids 1 and 2 on CPU 0, the second with prev_state 3.
#[test]
fn sched_only() {
    let mut source = open(&traces::sched_only(), "sched");
    let r = rows(&mut source);
    assert_eq!(times(&r), [10, 20, 30, 40]);
    assert!(r.iter().all(|e| e.name == "sched_switch" && e.cpu == 0));
    let switches: Vec<_> = r
        .iter()
        .map(|e| (e.int("prev_tid"), e.int("prev_state"), e.int("next_tid")))
        .collect();
    assert_eq!(switches, [(1, 0, 2), (2, 3, 1), (1, 0, 2), (2, 0, 1)]);
    assert_eq!(r[1].string("prev_comm"), "proc2");
    assert_eq!(r[1].string("next_comm"), "proc1");
    let class = &source.classes()[0];
    let fields: Vec<_> = class.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        fields,
        [
            "cpu",
            "prev_comm",
            "prev_tid",
            "prev_prio",
            "prev_state",
            "next_comm",
            "next_tid",
            "next_prio"
        ]
    );
}

/// simple_network_client.xml and simple_network_server.xml, the two hosts of the distributed
/// critical path test: the interrupt, softirq, packet and wake-up events the graph reads.
#[test]
fn simple_network_client_and_server() {
    let mut client = open(&traces::simple_network_client(), "simple");
    let mut server = open(&traces::simple_network_server(), "simple");
    assert_eq!(
        client.hostname().as_deref(),
        Some("simple_network_client.xml")
    );
    assert_eq!(
        server.hostname().as_deref(),
        Some("simple_network_server.xml")
    );
    let c = rows(&mut client);
    let s = rows(&mut server);
    assert_eq!(c.len(), 17);
    assert_eq!(s.len(), 11);
    assert!(c.iter().all(|r| r.cpu == 0));
    assert!(s.iter().all(|r| r.cpu == 1));
    assert_eq!(
        times(&c),
        [5, 7, 10, 13, 15, 50, 52, 53, 60, 65, 70, 72, 75, 80, 83, 90, 95]
    );
    assert_eq!(times(&s), [5, 20, 22, 25, 30, 33, 35, 38, 40, 45, 55]);
    let at = |rows: &[Row], ts| rows.iter().find(|r| r.ts == ts).unwrap().clone();
    assert_eq!(at(&c, 13).name, "packet_sent");
    assert_eq!(at(&c, 13).int("msgid"), 1);
    assert_eq!(at(&c, 50).name, "irq_handler_entry");
    assert_eq!(at(&c, 50).int("irq"), 5);
    assert_eq!(at(&c, 50).string("name"), "mywifi");
    assert_eq!(at(&c, 60).name, "softirq_entry");
    assert_eq!(at(&c, 60).int("vec"), 3);
    assert_eq!(at(&c, 65).name, "packet_received");
    assert_eq!(at(&c, 65).int("msgid"), 2);
    assert_eq!(at(&c, 70).name, "sched_wakeup");
    assert_eq!(at(&c, 70).int("tid"), 200);
    assert_eq!(at(&c, 70).string("comm"), "client");
    assert_eq!(at(&c, 90).int("tid"), 202);
    assert_eq!(at(&c, 5).name, "statedump_interrupt");
    assert_eq!(at(&s, 33).name, "packet_received");
    assert_eq!(at(&s, 33).int("msgid"), 1);
    assert_eq!(at(&s, 35).int("tid"), 100);
    assert_eq!(at(&s, 45).name, "packet_sent");
    assert_eq!(at(&s, 45).int("msgid"), 2);
    let switch = |r: &Row| (r.int("prev_tid"), r.int("prev_state"), r.int("next_tid"));
    let switches: Vec<_> = s
        .iter()
        .filter(|r| r.name == "sched_switch")
        .map(switch)
        .collect();
    assert_eq!(switches, [(100, 1, 101), (101, 0, 100), (100, 1, 101)]);
}

/// network_exchange_wifi.xml: the threaded handler with priority −51.
#[test]
fn network_exchange_wifi() {
    let r = rows(&mut open(&traces::network_exchange_wifi(), "wifi"));
    assert_eq!(r.len(), 16);
    let wake = r.iter().find(|e| e.ts == 55).unwrap();
    assert_eq!(
        (wake.name.as_str(), wake.int("tid"), wake.int("prio")),
        ("sched_wakeup", 50, -51)
    );
    let switch = r.iter().find(|e| e.ts == 60).unwrap();
    assert_eq!(switch.string("next_comm"), "irq/30-handler");
    assert_eq!(switch.int("next_prio"), -51);
    let names: Vec<_> = r.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"do_IRQ_entry") && names.contains(&"netif_receive_skb_internal_entry"));
}

/// The kernel memory stub: allocations and frees whose `order` gives the size; its events give
/// back, page by page, the running totals Trace Compass's test expects of "other".
#[test]
fn kernel_memory() {
    let r = rows(&mut open(&traces::kernel_memory(), "memory"));
    assert_eq!(times(&r), [1, 2, 3, 17, 22, 28, 29, 30]);
    let cpus: Vec<_> = r.iter().map(|e| e.cpu).collect();
    assert_eq!(cpus, [0, 1, 1, 0, 1, 1, 0, 0]);
    assert_eq!(r[3].int("order"), 2);
    // The tid field is a string here; it is read as one, and is no integer.
    assert_eq!(r[0].string("tid"), "proc1");
    let mut total = 0i64;
    let totals: Vec<_> = r
        .iter()
        .map(|e| {
            let bytes = 4096i64 << e.int("order");
            total += if e.name == "kmem_mm_page_alloc" {
                bytes
            } else {
                -bytes
            };
            total
        })
        .collect();
    assert_eq!(totals, [4096, 0, -4096, 12288, 8192, 4096, 8192, 12288]);
}

/// The OneQemuKvm host and guest: KVM entries and exits of vCPU 0, and the vmsync messages
/// whose (vm_uid, cnt) pair the guest's halves with the host's.
#[test]
fn one_qemu_kvm_host_and_guest() {
    let mut host = open(&traces::one_qemu_kvm_host(), "vm");
    let mut guest = open(&traces::one_qemu_kvm_guest(), "vm");
    assert_eq!(host.hostname().as_deref(), Some("host.xml"));
    assert_eq!(guest.hostname().as_deref(), Some("guest.xml"));
    let h = rows(&mut host);
    let g = rows(&mut guest);
    assert_eq!((h.len(), g.len()), (22, 13));
    let of = |rows: &[Row], name: &str| -> Vec<i64> {
        rows.iter()
            .filter(|r| r.name == name)
            .map(|r| r.ts)
            .collect()
    };
    assert_eq!(of(&h, "kvm_entry"), [5, 60, 155, 210, 260, 355]);
    assert_eq!(of(&h, "kvm_exit"), [45, 95, 195, 245, 295]);
    assert_eq!(of(&h, "vmsync_gh_host"), [50, 200, 250]);
    assert_eq!(of(&h, "vmsync_hg_host"), [55, 205, 255]);
    assert_eq!(of(&g, "vmsync_gh_guest"), [40, 190, 240]);
    assert_eq!(of(&g, "vmsync_hg_guest"), [65, 215, 265]);
    let exit = h.iter().find(|r| r.name == "kvm_exit").unwrap();
    assert_eq!(exit.int("exit_reason"), 32);
    assert_eq!(exit.int("guest_rip"), 123456);
    assert!(h
        .iter()
        .filter(|r| r.name == "kvm_entry")
        .all(|r| r.int("vcpu_id") == 0));
    let sync = |rows: &[Row], prefix: &str| -> Vec<(i64, i64)> {
        rows.iter()
            .filter(|r| r.name.starts_with(prefix))
            .map(|r| (r.int("vm_uid"), r.int("cnt")))
            .collect()
    };
    assert_eq!(
        sync(&g, "vmsync_"),
        (1..=6)
            .map(|c| (traces::ONE_QEMU_KVM_VM_UID, c))
            .collect::<Vec<_>>()
    );
    assert_eq!(sync(&h, "vmsync_").len(), 6);
    // Every event of both is on CPU 0, and no two timestamps of the pair coincide.
    assert!(h.iter().chain(&g).all(|r| r.cpu == 0));
    let mut all: Vec<_> = times(&h).into_iter().chain(times(&g)).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 35);
    // Guest switches: threads 130 and 131 taking turns.
    let next: Vec<_> = g
        .iter()
        .filter(|r| r.name == "sched_switch")
        .map(|r| r.int("next_tid"))
        .collect();
    assert_eq!(next, [131, 130, 131, 130, 131, 130, 131]);
}
