//! The stub traces of Trace Compass's tests, as tables of events.
//!
//! Each function gives one trace — file name (its host name) and events, with the fields and
//! types those traces use — so that an analysis can check itself against the expectations
//! Trace Compass's tests assert on them: event matching and synchronisation (the network
//! stubs, the VM stubs), the execution graph and critical path (`sched_only`, the simple
//! network and network exchange stubs), kernel memory usage, the Qemu/KVM virtual machine
//! model. The events are facts of those traces, written here as tables.
//!
//! All of them declare the `cpu` aspect and give every event a `cpu` field (`int`). The kernel
//! events use Trace Compass's default kernel layout names: `sched_switch` (`prev_comm`,
//! `prev_tid`, `prev_prio`, `prev_state`, `next_comm`, `next_tid`, `next_prio`, all `long`
//! but the names), `sched_wakeup` (`comm`, `tid` `long`, `prio` and `target_cpu` `int`),
//! `softirq_*` (`vec` `long`), `irq_handler_entry`/`exit` (`irq` `long`, `name`, `ret` `int`);
//! the network stubs `packet_sent`/`packet_received` with an `int` `msgid`.

use super::{StubEvent, StubTrace};

/// A thread as `sched_switch` names it: command, tid, priority.
type Thread = (&'static str, i64, i64);

fn switch(ts: i64, cpu: i32, prev: Thread, prev_state: i64, next: Thread) -> StubEvent {
    StubEvent::new(ts, "sched_switch")
        .cpu(cpu)
        .string("prev_comm", prev.0)
        .long("prev_tid", prev.1)
        .long("prev_prio", prev.2)
        .long("prev_state", prev_state)
        .string("next_comm", next.0)
        .long("next_tid", next.1)
        .long("next_prio", next.2)
}

fn wakeup(ts: i64, cpu: i32, thread: Thread) -> StubEvent {
    StubEvent::new(ts, "sched_wakeup")
        .cpu(cpu)
        .string("comm", thread.0)
        .long("tid", thread.1)
        .int("prio", thread.2 as i32)
        .int("target_cpu", 0)
}

fn softirq(ts: i64, cpu: i32, name: &str, vec: i64) -> StubEvent {
    StubEvent::new(ts, name).cpu(cpu).long("vec", vec)
}

fn irq_entry(ts: i64, cpu: i32, irq: i64, name: &str) -> StubEvent {
    StubEvent::new(ts, "irq_handler_entry")
        .cpu(cpu)
        .long("irq", irq)
        .string("name", name)
}

fn irq_exit(ts: i64, cpu: i32, irq: i64, ret: i32) -> StubEvent {
    StubEvent::new(ts, "irq_handler_exit")
        .cpu(cpu)
        .long("irq", irq)
        .int("ret", ret)
}

fn packet(ts: i64, cpu: i32, name: &str, msgid: i32) -> StubEvent {
    StubEvent::new(ts, name).cpu(cpu).int("msgid", msgid)
}

/// An event with no field but its CPU (`do_IRQ_entry`, `netif_receive_skb_internal_entry`…).
fn bare(ts: i64, cpu: i32, name: &str) -> StubEvent {
    StubEvent::new(ts, name).cpu(cpu)
}

/// The statedump of the wifi card's interrupt, which the graph does not use.
fn statedump_wifi(ts: i64, cpu: i32) -> StubEvent {
    StubEvent::new(ts, "statedump_interrupt")
        .cpu(cpu)
        .int("irq", 5)
        .string("name", "mywifi")
        .string("action", "wifi")
        .long("thread", 50)
}

fn read_entry(ts: i64, cpu: i32) -> StubEvent {
    StubEvent::new(ts, "syscall_entry_read")
        .cpu(cpu)
        .int("fd", 10)
        .int("count", 30)
}

fn read_exit(ts: i64, cpu: i32) -> StubEvent {
    StubEvent::new(ts, "syscall_exit_read")
        .cpu(cpu)
        .int("ret", 10)
}

fn network(ts: i64, name: &str, interface: &str, msgid: i32) -> StubEvent {
    StubEvent::new(ts, name)
        .cpu(1)
        .string("interface", interface)
        .int("msgid", msgid)
}

/// `client.xml` of the event matching test: packets through several interfaces of one host,
/// all on CPU 1. With [`network_server`], Trace Compass matches exactly 4 pairs by `msgid`:
/// client@15→client@20, client@30→server@50, server@70→client@100, client@105→client@115.
pub fn network_client() -> StubTrace {
    StubTrace {
        file_name: "client.xml",
        events: vec![
            network(15, "packet_sent", "eth0", 1),
            network(20, "packet_received", "veth2345", 1),
            network(25, "packet_received", "docker0", 1),
            network(30, "packet_sent", "ens3", 1),
            network(100, "packet_received", "ens3", 2),
            network(105, "packet_sent", "docker0", 2),
            network(110, "packet_sent", "veth2345", 2),
            network(115, "packet_received", "eth0", 2),
        ],
    }
}

/// `server.xml` of the event matching test (see [`network_client`]).
pub fn network_server() -> StubTrace {
    StubTrace {
        file_name: "server.xml",
        events: vec![
            network(50, "packet_received", "eno1", 1),
            network(70, "packet_sent", "eno1", 2),
        ],
    }
}

/// `sched_only.xml`: two threads taking turns on CPU 0. Expected execution graph: tid 1
/// 10 -PREEMPTED-> 20 -RUNNING-> 30 -PREEMPTED-> 40, tid 2 10 -RUNNING-> 20 -BLOCKED-> 30
/// -RUNNING-> 40, no vertical edge.
pub fn sched_only() -> StubTrace {
    const P1: Thread = ("proc1", 1, 20);
    const P2: Thread = ("proc2", 2, 20);
    StubTrace {
        file_name: "sched_only.xml",
        events: vec![
            switch(10, 0, P1, 0, P2),
            switch(20, 0, P2, 3, P1),
            switch(30, 0, P1, 0, P2),
            switch(40, 0, P2, 0, P1),
        ],
    }
}

const CLIENT: Thread = ("client", 200, 20);
const OTHER_200: Thread = ("other", 201, 20);
const DEP_CLIENT: Thread = ("depClient", 202, 20);
const SERVER: Thread = ("server", 100, 20);
const OTHER_100: Thread = ("other", 101, 20);

/// `simple_network_client.xml`, CPU 0: the client (200) sends message 1, blocks, is woken by
/// the reception of message 2 in a NET_RX softirq, then wakes `depClient` (202).
pub fn simple_network_client() -> StubTrace {
    StubTrace {
        file_name: "simple_network_client.xml",
        events: vec![
            statedump_wifi(5, 0),
            switch(7, 0, DEP_CLIENT, 1, OTHER_200),
            switch(10, 0, OTHER_200, 0, CLIENT),
            packet(13, 0, "packet_sent", 1),
            switch(15, 0, CLIENT, 1, OTHER_200),
            irq_entry(50, 0, 5, "mywifi"),
            softirq(52, 0, "softirq_raise", 3),
            irq_exit(53, 0, 5, 2),
            softirq(60, 0, "softirq_entry", 3),
            packet(65, 0, "packet_received", 2),
            wakeup(70, 0, CLIENT),
            softirq(72, 0, "softirq_exit", 3),
            switch(75, 0, OTHER_200, 0, CLIENT),
            read_entry(80, 0),
            read_exit(83, 0),
            wakeup(90, 0, DEP_CLIENT),
            switch(95, 0, CLIENT, 0, DEP_CLIENT),
        ],
    }
}

/// `simple_network_server.xml`, CPU 1: the server (100) is woken by message 1 in a NET_RX
/// softirq and answers with message 2.
pub fn simple_network_server() -> StubTrace {
    StubTrace {
        file_name: "simple_network_server.xml",
        events: vec![
            switch(5, 1, SERVER, 1, OTHER_100),
            irq_entry(20, 1, 15, "eth0"),
            softirq(22, 1, "softirq_raise", 3),
            irq_exit(25, 1, 15, 1),
            softirq(30, 1, "softirq_entry", 3),
            packet(33, 1, "packet_received", 1),
            wakeup(35, 1, SERVER),
            softirq(38, 1, "softirq_exit", 3),
            switch(40, 1, OTHER_100, 0, SERVER),
            packet(45, 1, "packet_sent", 2),
            switch(55, 1, SERVER, 1, OTHER_100),
        ],
    }
}

/// `network_exchange_eth.xml`, CPU 1: [`simple_network_server`] with the interrupt and packet
/// reception wrapped in `do_IRQ_entry`/`return` and
/// `netif_receive_skb_internal_entry`/`return`.
pub fn network_exchange_eth() -> StubTrace {
    StubTrace {
        file_name: "network_exchange_eth.xml",
        events: vec![
            switch(5, 1, SERVER, 1, OTHER_100),
            bare(18, 1, "do_IRQ_entry"),
            irq_entry(20, 1, 15, "eth0"),
            softirq(22, 1, "softirq_raise", 3),
            irq_exit(25, 1, 15, 1),
            softirq(30, 1, "softirq_entry", 3),
            bare(31, 1, "netif_receive_skb_internal_entry"),
            packet(33, 1, "packet_received", 1),
            wakeup(35, 1, SERVER),
            bare(36, 1, "netif_receive_skb_internal_return"),
            softirq(38, 1, "softirq_exit", 3),
            bare(39, 1, "do_IRQ_return"),
            switch(40, 1, OTHER_100, 0, SERVER),
            packet(45, 1, "packet_sent", 2),
            switch(55, 1, SERVER, 1, OTHER_100),
        ],
    }
}

/// `network_exchange_wifi.xml`, CPU 0: the client's answer arrives through a threaded
/// interrupt handler, `irq/30-handler` (tid 50, priority −51), which receives the packet in
/// task context and wakes the client.
pub fn network_exchange_wifi() -> StubTrace {
    const HANDLER: Thread = ("irq/30-handler", 50, -51);
    StubTrace {
        file_name: "network_exchange_wifi.xml",
        events: vec![
            statedump_wifi(5, 0),
            switch(10, 0, OTHER_200, 0, CLIENT),
            packet(13, 0, "packet_sent", 1),
            switch(15, 0, CLIENT, 1, OTHER_200),
            bare(48, 0, "do_IRQ_entry"),
            irq_entry(50, 0, 5, "mywifi"),
            irq_exit(53, 0, 5, 2),
            wakeup(55, 0, HANDLER),
            bare(58, 0, "do_IRQ_return"),
            switch(60, 0, OTHER_200, 0, HANDLER),
            bare(62, 0, "netif_receive_skb_internal_entry"),
            packet(65, 0, "packet_received", 2),
            wakeup(70, 0, CLIENT),
            bare(72, 0, "netif_receive_skb_internal_return"),
            switch(75, 0, HANDLER, 1, CLIENT),
            read_entry(80, 0),
        ],
    }
}

/// `KernelMemoryAnalysis_testTrace.xml`: page allocations and frees with their `order`
/// (`long`) and a `tid` field that is a string and that Trace Compass does not use. There is
/// no `sched_switch`, so every page is charged to "other": 4096, 0, −4096, 12288, 8192, 4096,
/// 8192, 12288 bytes after each event.
pub fn kernel_memory() -> StubTrace {
    let page = |ts: i64, name: &str, cpu: i32, tid: &str, order: i64| {
        StubEvent::new(ts, name)
            .cpu(cpu)
            .string("tid", tid)
            .long("order", order)
    };
    const ALLOC: &str = "kmem_mm_page_alloc";
    const FREE: &str = "kmem_mm_page_free";
    StubTrace {
        file_name: "KernelMemoryAnalysis_testTrace.xml",
        events: vec![
            page(1, ALLOC, 0, "proc1", 0),
            page(2, FREE, 1, "proc2", 0),
            page(3, FREE, 1, "proc1", 0),
            page(17, ALLOC, 0, "proc3", 2),
            page(22, FREE, 1, "proc4", 0),
            page(28, FREE, 1, "proc2", 0),
            page(29, ALLOC, 0, "proc4", 0),
            page(30, ALLOC, 0, "proc3", 0),
        ],
    }
}

/// The `vm_uid` of the guest of the OneQemuKvm traces.
pub const ONE_QEMU_KVM_VM_UID: i64 = 123456;

fn vmsync(ts: i64, name: &str, cnt: i32) -> StubEvent {
    StubEvent::new(ts, name)
        .cpu(0)
        .int("cnt", cnt)
        .long("vm_uid", ONE_QEMU_KVM_VM_UID)
}

/// `host.xml` of the OneQemuKvm virtual machine test, CPU 0: host thread 31 (`qemucpu1`) runs
/// vCPU 0 of the guest, alternating with thread 30 (`any`); `kvm_exit` with reason 32 (as an
/// `int`; the incubator's copy has a `long`); host halves of the `vmsync` exchanges.
pub fn one_qemu_kvm_host() -> StubTrace {
    const ANY: Thread = ("any", 30, 20);
    const VCPU: Thread = ("qemucpu1", 31, 20);
    let entry = |ts| StubEvent::new(ts, "kvm_entry").cpu(0).long("vcpu_id", 0);
    let exit = |ts| {
        StubEvent::new(ts, "kvm_exit")
            .cpu(0)
            .int("exit_reason", 32)
            .long("guest_rip", 123456)
            .int("isa", 1)
            .long("info1", 654654)
            .long("info2", 456789)
    };
    StubTrace {
        file_name: "host.xml",
        events: vec![
            switch(1, 0, ANY, 0, VCPU),
            entry(5),
            exit(45),
            vmsync(50, "vmsync_gh_host", 1),
            vmsync(55, "vmsync_hg_host", 2),
            entry(60),
            exit(95),
            switch(100, 0, VCPU, 0, ANY),
            switch(150, 0, ANY, 0, VCPU),
            entry(155),
            exit(195),
            vmsync(200, "vmsync_gh_host", 3),
            vmsync(205, "vmsync_hg_host", 4),
            entry(210),
            exit(245),
            vmsync(250, "vmsync_gh_host", 5),
            vmsync(255, "vmsync_hg_host", 6),
            entry(260),
            exit(295),
            switch(300, 0, VCPU, 0, ANY),
            switch(350, 0, ANY, 0, VCPU),
            entry(355),
        ],
    }
}

/// `guest.xml` of the OneQemuKvm virtual machine test, CPU 0 (vCPU 0): guest threads 130
/// (`any`) and 131 (`any2`) taking turns, and the guest halves of the `vmsync` exchanges.
pub fn one_qemu_kvm_guest() -> StubTrace {
    const ANY: Thread = ("any", 130, 20);
    const ANY2: Thread = ("any2", 131, 20);
    StubTrace {
        file_name: "guest.xml",
        events: vec![
            switch(10, 0, ANY, 0, ANY2),
            switch(35, 0, ANY2, 0, ANY),
            vmsync(40, "vmsync_gh_guest", 1),
            vmsync(65, "vmsync_hg_guest", 2),
            switch(75, 0, ANY, 0, ANY2),
            switch(175, 0, ANY2, 0, ANY),
            vmsync(190, "vmsync_gh_guest", 3),
            vmsync(215, "vmsync_hg_guest", 4),
            switch(225, 0, ANY, 0, ANY2),
            vmsync(240, "vmsync_gh_guest", 5),
            vmsync(265, "vmsync_hg_guest", 6),
            switch(275, 0, ANY2, 0, ANY),
            switch(375, 0, ANY, 0, ANY2),
        ],
    }
}

/// Every trace above, for tests that go through all of them.
pub fn all() -> Vec<StubTrace> {
    vec![
        network_client(),
        network_server(),
        sched_only(),
        simple_network_client(),
        simple_network_server(),
        network_exchange_eth(),
        network_exchange_wifi(),
        kernel_memory(),
        one_qemu_kvm_host(),
        one_qemu_kvm_guest(),
    ]
}
