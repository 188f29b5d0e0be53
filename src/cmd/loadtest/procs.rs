//! CPU time and resident memory of the stack's processes, read from
//! `/proc`: the `tradewind aggregate` members, the load test's own
//! simulator, the Kafka broker (`java … kafka.Kafka`) and the ClickHouse
//! server. A process counts when its command line says what it is and it
//! listens on a port the load test talks to for that part (a member's
//! metrics port, a broker's port, ClickHouse's HTTP port), read in the
//! process's own network namespace; so other stacks on the same host are
//! left out. Under docker compose the load test runs in the host's PID
//! namespace (`pid: host`), so the containers' processes are seen too.
//! CPU time is in clock ticks of 1/100 s, Linux's `USER_HZ` on every
//! architecture Tradewind builds for.

use std::collections::BTreeMap;

const TICKS_PER_SECOND: f64 = 100.0;

/// One process at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcSample {
    pub pid: u32,
    pub role: &'static str,
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

/// What a process did over a step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcUsage {
    pub role: &'static str,
    pub pid: u32,
    /// CPU cores busy on average (1.0 = one core all the time).
    pub cores: f64,
    pub rss_max_bytes: u64,
}

/// The parts of the stack under test: the ports each part listens on, and
/// the simulator the load test is running now.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub ports: Vec<(&'static str, Vec<u16>)>,
    pub simulator: Option<u32>,
}

impl Stack {
    fn owns(&self, pid: u32, role: &str) -> bool {
        if role == "simulator" {
            return self.simulator == Some(pid);
        }
        let ports: Vec<u16> = self
            .ports
            .iter()
            .filter(|(r, _)| *r == role)
            .flat_map(|(_, p)| p.iter().copied())
            .collect();
        !ports.is_empty() && listens_on(pid, &ports)
    }
}

/// The stack's processes now.
pub fn sample(stack: &Stack) -> Vec<ProcSample> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| read(pid, stack))
        .collect()
}

fn read(pid: u32, stack: &Stack) -> Option<ProcSample> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&str> = cmdline
        .split(|&b| b == 0)
        .filter_map(|a| std::str::from_utf8(a).ok())
        .collect();
    let role = role(&args)?;
    if !stack.owns(pid, role) {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        pid,
        role,
        cpu_seconds: cpu_ticks(&stat)? as f64 / TICKS_PER_SECOND,
        rss_bytes: rss_kib(&status)? * 1024,
    })
}

/// Which part of the stack a command line is, if any.
fn role(args: &[&str]) -> Option<&'static str> {
    let exe = args.first()?.rsplit('/').next()?;
    let has = |word: &str| args.iter().skip(1).any(|a| *a == word);
    if exe == "tradewind" && has("aggregate") {
        Some("aggregator")
    } else if exe == "tradewind" && has("simulate") {
        Some("simulator")
    } else if exe == "java" && has("kafka.Kafka") {
        Some("kafka")
    } else if exe.starts_with("clickhouse") && (exe == "clickhouse-server" || has("server")) {
        Some("clickhouse")
    } else {
        None
    }
}

/// Whether `pid` listens on one of `ports`: a LISTEN socket on the port in
/// the process's network namespace that is one of its open files. Where
/// its open files cannot be read (another user's process in a container),
/// a listener in its namespace is enough: a container's namespace holds
/// its own processes only.
fn listens_on(pid: u32, ports: &[u16]) -> bool {
    let mut listeners = Vec::new();
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            listeners.extend(listening(&text).filter(|(port, _)| ports.contains(port)));
        }
    }
    if listeners.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return true;
    };
    let sockets: Vec<u64> = fds
        .flatten()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    listeners.iter().any(|(_, inode)| sockets.contains(inode))
}

/// `(port, inode)` of every LISTEN socket in a `/proc/net/tcp` table.
fn listening(table: &str) -> impl Iterator<Item = (u16, u64)> + '_ {
    table.lines().skip(1).filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(3) != Some(&"0A") {
            return None;
        }
        let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
        Some((port, f.get(9)?.parse().ok()?))
    })
}

/// utime + stime: fields 14 and 15 of `/proc/<pid>/stat`, counted after
/// the command name, which may itself hold spaces and parentheses.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Per process seen in at least two samples: average cores between its
/// first and last sample, and its highest RSS.
pub fn usage(samples: &[(f64, Vec<ProcSample>)]) -> Vec<ProcUsage> {
    /// A process's first and last `(time, CPU seconds)` and highest RSS.
    struct Seen {
        first: (f64, f64),
        last: (f64, f64),
        rss: u64,
    }
    let mut seen: BTreeMap<(u32, &'static str), Seen> = BTreeMap::new();
    for (t, procs) in samples {
        for p in procs {
            let e = seen.entry((p.pid, p.role)).or_insert(Seen {
                first: (*t, p.cpu_seconds),
                last: (*t, p.cpu_seconds),
                rss: 0,
            });
            e.last = (*t, p.cpu_seconds);
            e.rss = e.rss.max(p.rss_bytes);
        }
    }
    let mut out: Vec<ProcUsage> = seen
        .into_iter()
        .filter(|(_, s)| s.last.0 > s.first.0)
        .map(|((pid, role), s)| ProcUsage {
            role,
            pid,
            cores: (s.last.1 - s.first.1).max(0.0) / (s.last.0 - s.first.0),
            rss_max_bytes: s.rss,
        })
        .collect();
    out.sort_by_key(|u| (u.role, u.pid));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_the_command_line() {
        assert_eq!(
            role(&["/usr/local/bin/tradewind", "aggregate"]),
            Some("aggregator")
        );
        assert_eq!(
            role(&[
                "target/release/tradewind",
                "--config",
                "x.toml",
                "simulate",
                "--realtime"
            ]),
            Some("simulator")
        );
        assert_eq!(
            role(&["java", "-Xmx1g", "-cp", "jars/*", "kafka.Kafka", "p"]),
            Some("kafka")
        );
        assert_eq!(
            role(&["/usr/bin/clickhouse-server", "--config-file=x"]),
            Some("clickhouse")
        );
        assert_eq!(
            role(&["/usr/bin/clickhouse", "server", "--config"]),
            Some("clickhouse")
        );
        assert_eq!(role(&["/usr/bin/clickhouse", "client"]), None);
        assert_eq!(role(&["tradewind", "loadtest"]), None);
        assert_eq!(role(&[]), None);
    }

    #[test]
    fn listeners_come_from_the_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:24E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2384 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
";
        let l: Vec<(u16, u64)> = listening(table).collect();
        assert_eq!(l, vec![(9448, 4242)]);
    }

    #[test]
    fn this_test_process_is_no_part_of_any_stack() {
        let me = std::process::id();
        let stack = Stack {
            ports: vec![("aggregator", vec![1])],
            simulator: Some(me),
        };
        assert!(stack.owns(me, "simulator"));
        assert!(!stack.owns(me, "aggregator"));
        assert!(!stack.owns(me, "kafka"));
    }

    #[test]
    fn cpu_and_rss_parse_even_with_odd_command_names() {
        let stat = "42 (java (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 30 0 1 2 3";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(rss_kib("Name:\tjava\nVmRSS:\t  123456 kB\n"), Some(123_456));
    }

    #[test]
    fn usage_averages_cores_over_the_samples() {
        let s = |t: f64, cpu: f64, rss: u64| {
            (
                t,
                vec![ProcSample {
                    pid: 7,
                    role: "aggregator",
                    cpu_seconds: cpu,
                    rss_bytes: rss,
                }],
            )
        };
        let u = usage(&[s(0.0, 10.0, 5), s(2.0, 11.0, 9), s(4.0, 13.0, 7)]);
        assert_eq!(u.len(), 1);
        assert!((u[0].cores - 0.75).abs() < 1e-9);
        assert_eq!(u[0].rss_max_bytes, 9);
    }
}
