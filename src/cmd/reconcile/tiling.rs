//! The ledger's promise for one source partition, checked without I/O:
//! its rows tile the partition's offsets from the low watermark with no
//! gap or overlap (rows may start below it: records counted before
//! retention deleted them), each row's `seen` equals its offset range, they reach
//! the high watermark, and the group's committed offset is not past the
//! end. Also sums what the rows say was aggregated and rejected.

use clickhouse::Row;
use serde::Deserialize;

/// One ledger row, as `reconcile_ledger_spans.sql` reads it.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct LedgerSpan {
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub seen: u64,
    pub aggregated: u64,
    pub rejected: u64,
}

/// A source partition: its offsets on the broker and the group's commit.
#[derive(Debug, Clone, Copy)]
pub struct Partition<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// Low and high watermarks: the first offset and one past the last.
    pub low: i64,
    pub high: i64,
    pub committed: Option<i64>,
}

/// What a partition's ledger rows add up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub aggregated: u64,
    pub rejected: u64,
}

/// Checks `spans` (this partition's rows, in offset order) against `p`;
/// returns the tally and every difference found.
pub fn check(p: Partition<'_>, spans: &[&LedgerSpan]) -> (Tally, Vec<String>) {
    let Partition {
        topic, partition, ..
    } = p;
    let mut problems = Vec::new();
    let mut tally = Tally::default();
    // Rows may begin below the log start: retention deleted records the
    // ledger had already counted.
    let mut next = spans.first().map_or(p.low, |s| s.first_offset.min(p.low));
    for s in spans {
        if s.first_offset != next {
            problems.push(format!(
                "{topic}[{partition}]: ledger jumps from offset {next} to {}",
                s.first_offset
            ));
        }
        if s.seen as i64 != s.last_offset - s.first_offset + 1 {
            problems.push(format!(
                "{topic}[{partition}]: ledger row {}..={} says seen {}",
                s.first_offset, s.last_offset, s.seen
            ));
        }
        next = s.last_offset + 1;
        tally.aggregated += s.aggregated;
        tally.rejected += s.rejected;
    }
    if next != p.high {
        problems.push(format!(
            "{topic}[{partition}]: ledger covers offsets up to {} but the partition ends at {} ({} records not yet accounted)",
            next - 1,
            p.high - 1,
            p.high - next
        ));
    }
    if let Some(c) = p.committed.filter(|c| *c > p.high) {
        problems.push(format!(
            "{topic}[{partition}]: committed offset {c} is past the end {}",
            p.high
        ));
    }
    (tally, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(first: i64, last: i64, seen: u64, aggregated: u64) -> LedgerSpan {
        LedgerSpan {
            partition: 0,
            first_offset: first,
            last_offset: last,
            seen,
            aggregated,
            rejected: seen - aggregated,
        }
    }

    fn part(low: i64, high: i64, committed: Option<i64>) -> Partition<'static> {
        Partition {
            topic: "t",
            partition: 0,
            low,
            high,
            committed,
        }
    }

    #[test]
    fn rows_that_tile_the_partition_add_up() {
        let rows = [span(5, 9, 5, 4), span(10, 19, 10, 10)];
        let refs: Vec<&LedgerSpan> = rows.iter().collect();
        let (tally, problems) = check(part(5, 20, Some(12)), &refs);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            tally,
            Tally {
                aggregated: 14,
                rejected: 1
            }
        );
    }

    #[test]
    fn gaps_overlaps_wrong_counts_short_ledgers_and_bad_commits_are_named() {
        let rows = [span(0, 9, 10, 10), span(8, 12, 5, 5), span(14, 15, 3, 3)];
        let refs: Vec<&LedgerSpan> = rows.iter().collect();
        let (_, problems) = check(part(0, 20, Some(21)), &refs);
        assert_eq!(
            problems,
            [
                "t[0]: ledger jumps from offset 10 to 8",
                "t[0]: ledger jumps from offset 13 to 14",
                "t[0]: ledger row 14..=15 says seen 3",
                "t[0]: ledger covers offsets up to 15 but the partition ends at 19 (4 records not yet accounted)",
                "t[0]: committed offset 21 is past the end 20",
            ]
        );
    }

    #[test]
    fn rows_of_records_retention_deleted_still_count_but_a_gap_after_the_log_start_does_not() {
        let rows = [span(0, 9, 10, 10), span(10, 19, 10, 10)];
        let refs: Vec<&LedgerSpan> = rows.iter().collect();
        let (tally, problems) = check(part(12, 20, Some(20)), &refs);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(tally.aggregated, 20);
        let late = [span(14, 19, 6, 6)];
        let refs: Vec<&LedgerSpan> = late.iter().collect();
        let (_, problems) = check(part(12, 20, Some(20)), &refs);
        assert_eq!(problems, ["t[0]: ledger jumps from offset 12 to 14"]);
    }

    #[test]
    fn an_empty_partition_needs_no_rows() {
        let (tally, problems) = check(part(7, 7, None), &[]);
        assert!(problems.is_empty());
        assert_eq!(tally, Tally::default());
    }
}
