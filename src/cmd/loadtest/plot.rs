//! The load test's pictures, drawn with plotters as SVG: throughput, lag
//! and latency against the offered load, one point per step, with the
//! highest sustainable rate marked so the knee of the curve shows at a
//! glance.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::step::StepResult;

type Plot = Result<(), Box<dyn Error>>;

const SIZE: (u32, u32) = (900, 520);

/// Writes `throughput.svg`, `lag.svg` and `latency.svg` into `dir`.
pub fn draw_all(dir: &Path, steps: &[StepResult], best: Option<f64>, p99_target: f64) -> Plot {
    throughput(&dir.join("throughput.svg"), steps, best)?;
    lag(&dir.join("lag.svg"), steps, best)?;
    latency(&dir.join("latency.svg"), steps, best, p99_target)?;
    Ok(())
}

fn x_max(steps: &[StepResult]) -> f64 {
    steps
        .iter()
        .map(|s| s.target_rate.max(s.offered_rate))
        .fold(1.0, f64::max)
        * 1.05
}

/// One line with its points (by rising load) and a legend entry.
fn series<
    'a,
    DB: DrawingBackend + 'a,
    Y: plotters::coord::ranged1d::ValueFormatter<f64> + Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    mut points: Vec<(f64, f64)>,
    color: RGBColor,
    label: &str,
) -> Plot
where
    DB::ErrorType: 'static,
{
    // Refinement steps run after the planned ones; the line follows the load.
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    chart.draw_series(
        points
            .into_iter()
            .map(|p| Circle::new(p, 4, color.filled())),
    )?;
    Ok(())
}

/// A dashed vertical marker at the highest sustainable rate.
fn knee<
    'a,
    DB: DrawingBackend + 'a,
    Y: plotters::coord::ranged1d::ValueFormatter<f64> + Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    best: Option<f64>,
    (y0, y1): (f64, f64),
) -> Plot
where
    DB::ErrorType: 'static,
{
    if let Some(x) = best {
        let style = ShapeStyle::from(&GREEN).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(vec![(x, y0), (x, y1)], 8, 6, style))?
            .label(format!("highest sustainable: {}/s", thousands(x)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    Ok(())
}

fn throughput(path: &Path, steps: &[StepResult], best: Option<f64>) -> Plot {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let xm = x_max(steps);
    let ym = steps
        .iter()
        .map(|s| s.offered_rate.max(s.processed_rate))
        .fold(xm, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption("Throughput against offered load", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..xm, 0f64..ym)?;
    chart
        .configure_mesh()
        .x_desc("offered load (records/s)")
        .y_desc("records/s")
        .x_label_formatter(&|v| thousands(*v))
        .y_label_formatter(&|v| thousands(*v))
        .draw()?;
    let ideal = ShapeStyle::from(&BLACK.mix(0.3)).stroke_width(1);
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, 0.0), (xm, xm)],
            6,
            6,
            ideal,
        ))?
        .label("keeping up (y = x)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ideal));
    let at = |f: fn(&StepResult) -> f64| steps.iter().map(|s| (s.offered_rate, f(s))).collect();
    series(
        &mut chart,
        at(|s| s.offered_rate),
        BLUE,
        "offered (simulator)",
    )?;
    series(
        &mut chart,
        at(|s| s.processed_rate),
        RED,
        "processed (aggregators)",
    )?;
    knee(&mut chart, best, (0.0, ym))?;
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

fn lag(path: &Path, steps: &[StepResult], best: Option<f64>) -> Plot {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let ym = steps.iter().map(|s| s.lag_max).fold(10.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("Consumer lag against offered load", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max(steps), 0f64..ym)?;
    chart
        .configure_mesh()
        .x_desc("offered load (records/s)")
        .y_desc("records written, not yet through")
        .x_label_formatter(&|v| thousands(*v))
        .y_label_formatter(&|v| thousands(*v))
        .draw()?;
    let at = |f: fn(&StepResult) -> f64| steps.iter().map(|s| (s.offered_rate, f(s))).collect();
    series(
        &mut chart,
        at(|s| s.lag_max),
        RED,
        "highest lag in the step",
    )?;
    series(&mut chart, at(|s| s.lag_end), BLUE, "lag at the step's end")?;
    knee(&mut chart, best, (0.0, ym))?;
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

fn latency(path: &Path, steps: &[StepResult], best: Option<f64>, target: f64) -> Plot {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let all = steps.iter().flat_map(|s| {
        [
            s.pipeline.p50,
            s.pipeline.p99,
            s.pipeline.p999,
            s.end_to_end.p99,
        ]
        .into_iter()
        .flatten()
    });
    let (lo, hi) = all.fold((target, target), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = ((lo / 2.0).max(0.001), hi * 2.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency against offered load", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max(steps), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered load (records/s)")
        .y_desc("seconds (log scale)")
        .x_label_formatter(&|v| thousands(*v))
        .draw()?;
    type Pick = fn(&StepResult) -> Option<f64>;
    let lines: [(Pick, RGBColor, &str); 4] = [
        (|s| s.pipeline.p50, BLUE, "p50 record time → ClickHouse ack"),
        (|s| s.pipeline.p99, RED, "p99 record time → ClickHouse ack"),
        (
            |s| s.pipeline.p999,
            MAGENTA,
            "p99.9 record time → ClickHouse ack",
        ),
        (|s| s.end_to_end.p99, CYAN, "p99 event time → queryable"),
    ];
    for (pick, color, label) in lines {
        let points: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|s| pick(s).map(|v| (s.offered_rate, v.max(lo))))
            .collect();
        series(&mut chart, points, color, label)?;
    }
    let style = ShapeStyle::from(&BLACK).stroke_width(1);
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, target), (x_max(steps), target)],
            8,
            6,
            style,
        ))?
        .label(format!("p99 target: {target} s"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    knee(&mut chart, best, (lo, hi))?;
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

fn legend<
    'a,
    DB: DrawingBackend + 'a,
    Y: plotters::coord::ranged1d::ValueFormatter<f64> + Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
) -> Plot
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// `123456.7` as `123,457`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-12_000.0), "-12,000");
    }
}
