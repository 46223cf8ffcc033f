//! What a VM and its host share, in the terminal report: the steal of its vCPUs and the
//! verdict on it, the host memory it holds, and for the host, how its pCPUs were shared and
//! whether its memory was traced at all.

use std::io::Write;

use virtflow_model::{Host, Vm};

use super::{ns, paragraph, wrap};

/// The VM's steal (with its verdict) and memory lines.
pub fn render_vm(vm: &Vm, memory_traced: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let oc = &vm.overcommit;
    if oc.steal_ns > 0 {
        let text = format!(
            "steal: {:.1}% of its vCPUs' time ({}): {} while the host had more runnable vCPUs \
             than pCPUs, {} while a pCPU was idle",
            100.0 * oc.steal_share,
            ns(oc.steal_ns),
            ns(oc.while_overcommitted_ns),
            ns(oc.while_cpu_idle_ns)
        );
        wrap(out, "  ", "         ", &text)?;
    }
    if !oc.verdict.is_empty() {
        paragraph(out, "  ", &oc.verdict)?;
    }
    let m = &vm.memory;
    if memory_traced && (m.allocated_bytes > 0 || m.freed_bytes > 0) {
        let ksm = if m.ksm_merged_pages > 0 {
            format!("; {} of its pages merged by KSM", m.ksm_merged_pages)
        } else {
            String::new()
        };
        let text = format!(
            "host memory: {} held at the end of what it allocated in the trace (allocated {}, \
             freed {}; at most {}){ksm}",
            signed_bytes(m.net_bytes),
            bytes(m.allocated_bytes as i64),
            bytes(m.freed_bytes as i64),
            bytes(m.peak_bytes)
        );
        wrap(out, "  ", "               ", &text)?;
    }
    Ok(())
}

/// The host's sharing of its pCPUs and its memory, after its VMs.
pub fn render_host(host: &Host, label: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let oc = &host.overcommit;
    if oc.pcpus > 0 {
        let span = (host.end_ns - host.start_ns).max(1) as f64;
        let text = format!(
            "{label}: {} pCPUs; runnable vCPUs {:.2} on average, at most {}; more runnable vCPUs \
             than pCPUs for {} ({:.1}% of the trace)",
            oc.pcpus,
            oc.mean_runnable,
            oc.max_runnable,
            ns(oc.overcommitted_ns),
            100.0 * oc.overcommitted_ns as f64 / span
        );
        writeln!(out)?;
        wrap(out, "", "  ", &text)?;
        if !oc.verdict.is_empty() {
            paragraph(out, "  ", &oc.verdict)?;
        }
    }
    let m = &host.memory;
    if m.traced {
        let ksm = if m.ksm_merged_pages > 0 {
            format!("; {} pages merged by KSM", m.ksm_merged_pages)
        } else {
            String::new()
        };
        let text = format!(
            "host memory: allocated {}, freed {} of it and {} allocated before the trace; {} \
             held at the end of what was allocated in the trace{ksm}",
            bytes(m.allocated_bytes as i64),
            bytes(m.freed_bytes as i64),
            bytes(m.freed_unowned_bytes as i64),
            signed_bytes(m.net_bytes)
        );
        wrap(out, "  ", "               ", &text)?;
    } else {
        wrap(
            out,
            "  ",
            "               ",
            "host memory: not traced — the trace has no page allocation events (`virtflow record \
             --memory` records them)",
        )?;
    }
    Ok(())
}

/// Bytes in binary units, as `free` and `/proc/meminfo` readers expect.
fn bytes(b: i64) -> String {
    let f = b.unsigned_abs() as f64;
    let sign = if b < 0 { "-" } else { "" };
    if f >= (1u64 << 30) as f64 {
        format!("{sign}{:.2} GiB", f / (1u64 << 30) as f64)
    } else if f >= (1u64 << 20) as f64 {
        format!("{sign}{:.1} MiB", f / (1u64 << 20) as f64)
    } else if f >= 1024.0 {
        format!("{sign}{:.1} KiB", f / 1024.0)
    } else {
        format!("{sign}{} B", b.unsigned_abs())
    }
}

/// A change of memory held: `+103.9 MiB`, `-4.0 KiB`.
fn signed_bytes(b: i64) -> String {
    if b > 0 {
        format!("+{}", bytes(b))
    } else {
        bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(4096), "4.0 KiB");
        assert_eq!(bytes(108_945_408), "103.9 MiB");
        assert_eq!(signed_bytes(108_945_408), "+103.9 MiB");
        assert_eq!(signed_bytes(-4096), "-4.0 KiB");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
    }
}
