//! The TTFT chart, drawn as SVG by hand: one line per path, p50 solid and
//! p99 dashed, over the concurrency levels, on a log time axis.

use std::fmt::Write as _;

/// One path's TTFT percentiles (ms) at each concurrency level.
pub struct Series {
    pub label: String,
    pub p50: Vec<f64>,
    pub p99: Vec<f64>,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 4] = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b"];

/// The chart for `levels` (concurrency) and the series over them.
pub fn ttft_svg(title: &str, levels: &[usize], series: &[Series]) -> String {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.p50.iter().chain(&s.p99))
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    // With nothing to draw, an empty 1 ms – 1 s frame.
    let low = values
        .iter()
        .copied()
        .reduce(f64::min)
        .unwrap_or(1.0)
        .max(0.01);
    let high = values
        .iter()
        .copied()
        .reduce(f64::max)
        .unwrap_or(1000.0)
        .max(low * 10.0);
    let (decade_low, decade_high) = (low.log10().floor(), high.log10().ceil());
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: f64| TOP + plot_h * (1.0 - (v.log10() - decade_low) / (decade_high - decade_low));
    let x = |i: usize| {
        if levels.len() == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (levels.len() - 1) as f64
        }
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        LEFT,
        escape(title)
    );
    // Horizontal grid: one line per decade.
    let mut decade = decade_low;
    while decade <= decade_high {
        let value = 10_f64.powf(decade);
        let line_y = y(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{line_y:.1}" y2="{line_y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 8.0,
            line_y + 4.0,
            format_ms(value)
        );
        decade += 1.0;
    }
    for (i, level) in levels.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{level}</text>"#,
            x(i),
            TOP + plot_h + 20.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">concurrent streams</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle">time to first token (log)</text>"#,
        TOP + plot_h / 2.0
    );
    for (index, one) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        for (values, dash) in [(&one.p50, ""), (&one.p99, r#" stroke-dasharray="6 4""#)] {
            let points: Vec<String> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite() && **v > 0.0)
                .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
                points.join(" ")
            );
            for point in &points {
                let (px, py) = point.split_once(',').unwrap_or_default();
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>"#
                );
            }
        }
        let legend_y = TOP + 10.0 + index as f64 * 22.0;
        let legend_x = WIDTH - RIGHT + 20.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{legend_x}" x2="{}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            legend_x + 24.0,
            legend_x + 30.0,
            legend_y + 4.0,
            escape(&one.label)
        );
    }
    let note_y = TOP + 10.0 + series.len() as f64 * 22.0 + 10.0;
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{note_y}" fill="#555">solid: p50, dashed: p99</text>"##,
        WIDTH - RIGHT + 20.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn format_ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.0} s", value / 1000.0)
    } else if value >= 1.0 {
        format!("{value:.0} ms")
    } else {
        format!("{value} ms")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_chart_is_still_a_chart() {
        let svg = ttft_svg("TTFT", &[1], &[]);
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 0);
    }

    #[test]
    fn the_chart_has_a_line_per_percentile_and_path() {
        let svg = ttft_svg(
            "TTFT",
            &[1, 100],
            &[Series {
                label: "direct".into(),
                p50: vec![20.0, 21.0],
                p99: vec![22.0, 40.0],
            }],
        );
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">direct<"));
    }
}
