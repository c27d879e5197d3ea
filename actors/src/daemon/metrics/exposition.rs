//! The two exposition formats `/metrics` answers in: OpenMetrics (what the
//! registry renders, and what Prometheus asks for first) and the classic
//! Prometheus text format 0.0.4 (for a plain `curl`, and for
//! `promtool check metrics`), chosen from the request's `Accept` header.

/// The content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the Prometheus text format.
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

impl Format {
    /// OpenMetrics when the client lists it as acceptable (with a nonzero
    /// quality), the Prometheus text format otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let wants = accept.unwrap_or("").split(',').any(|part| {
            let mut it = part.split(';').map(str::trim);
            let media = it.next().unwrap_or("");
            let zero = it.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !zero
        });
        if wants {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::Text => TEXT,
        }
    }

    /// `openmetrics` (as rendered) in this format.
    pub fn render(self, openmetrics: &str) -> String {
        match self {
            Format::OpenMetrics => openmetrics.to_string(),
            Format::Text => openmetrics_to_text(openmetrics),
        }
    }
}

/// OpenMetrics text → Prometheus text 0.0.4: a counter family is named
/// with its `_total` suffix in `# HELP`/`# TYPE` (its samples already
/// carry it), and `# UNIT` and `# EOF` are dropped. Samples are unchanged.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| *kind == "counter")
        .map(|(name, _)| name)
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta.and_then(|(p, rest)| {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters.contains(name).then_some((p, name, tail))
        }) {
            Some((p, name, tail)) => {
                out.push_str(p);
                out.push_str(name);
                out.push_str("_total ");
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The series of each counter and gauge family sorted (the registry keeps
/// labelled series in a hash map, so their order would change from one
/// rendering to the next); histogram lines stay in order (`le` ascending).
pub fn sort_series(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 1);
    let mut series: Vec<&str> = Vec::new();
    let mut sortable = false;
    let flush = |series: &mut Vec<&str>, sortable: bool, out: &mut String| {
        if sortable {
            series.sort_unstable();
        }
        for l in series.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for line in openmetrics.lines() {
        if line.starts_with('#') {
            flush(&mut series, sortable, &mut out);
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                sortable = rest.ends_with(" counter") || rest.ends_with(" gauge");
            }
            out.push_str(line);
            out.push('\n');
        } else {
            series.push(line);
        }
    }
    flush(&mut series, sortable, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_and_openmetrics_markers_dropped() {
        let om = "# HELP a_things Things.\n# TYPE a_things counter\na_things_total 3\n\
                  # HELP b_s B.\n# TYPE b_s histogram\n# UNIT b_s seconds\nb_s_count 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP a_things_total Things.\n# TYPE a_things_total counter\na_things_total 3\n\
             # HELP b_s B.\n# TYPE b_s histogram\nb_s_count 1\n"
        );
    }

    #[test]
    fn counter_and_gauge_series_are_sorted_histogram_lines_kept() {
        let om = "# TYPE c counter\nc_total{a=\"y\"} 1\nc_total{a=\"x\"} 2\n\
                  # TYPE h histogram\nh_sum 1\nh_count 1\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 1\n# EOF\n";
        assert_eq!(
            sort_series(om),
            "# TYPE c counter\nc_total{a=\"x\"} 2\nc_total{a=\"y\"} 1\n\
             # TYPE h histogram\nh_sum 1\nh_count 1\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 1\n# EOF\n"
        );
    }

    #[test]
    fn openmetrics_only_when_the_client_accepts_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
    }
}
